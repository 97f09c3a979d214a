// synth-v1: parenchyma. A power-law field (beta = 3 by default) shaped into a glandular fraction by a soft
// threshold; the threshold level is solved per image (bisection) so that the mean glandular fraction inside the
// breast (pectoral muscle excluded) equals the density category's target.
#include <algorithm>
#include <cmath>

#include "data/synth_internal.h"

namespace massmap::data::synth {

void render_parenchyma(const SynthParams& p, int density, const Outline& o, const Plane& thickness,
                       const std::vector<uint8_t>& regions, uint64_t seed, int64_t index, Plane& attenuation,
                       std::vector<float>& glandular) {
  const int w = p.width, h = p.height;
  const std::vector<float> field =
      power_law_field(w, h, p.spacing_mm, p.beta, p.f0_per_mm, seed, image_stream(index, kParenchyma));
  // prior: glandular tissue thins out towards the skin (rho -> 1), so the threshold rises there.
  std::vector<float> shifted(field.size());  // (h, w) field minus the prior, breast pixels only
  std::vector<size_t> inside;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const size_t i = size_t(y) * size_t(w) + size_t(x);
      if (regions[i] != kBreast) continue;
      double rho, edge;
      o.locate(x + 0.5, y + 0.5, rho, edge);
      shifted[i] = float(field[i] - 1.5 * std::pow(std::clamp(rho, 0.0, 1.0), 3));
      inside.push_back(i);
    }
  glandular.assign(field.size(), 0.f);
  if (inside.empty()) return;
  const double target = p.gland_fraction[density], s = p.gland_softness;
  auto fraction = [&](double level) {
    double sum = 0;
    for (size_t i : inside) sum += 1 / (1 + std::exp(-(shifted[i] - level) / s));
    return sum / double(inside.size());
  };
  double lo = -8, hi = 8;  // fraction(level) falls as level rises
  for (int it = 0; it < 40; ++it) {
    const double mid = 0.5 * (lo + hi);
    (fraction(mid) > target ? lo : hi) = mid;
  }
  const double level = 0.5 * (lo + hi);
  for (size_t i : inside) {
    const double g = 1 / (1 + std::exp(-(shifted[i] - level) / s));
    glandular[i] = float(g);
    // Glandular tissue over fat, plus a faint linear share of the field so fatty regions keep some texture.
    attenuation.v[i] += float(thickness.v[i] * p.gland_level * (g + 0.08 * field[i]));
  }
}

}  // namespace massmap::data::synth
