// synth-v1: the breast outline, its thickness fall-off and skin line, and the pectoral muscle of MLO views.
#include <algorithm>
#include <cmath>

#include "data/synth_internal.h"

namespace massmap::data::synth {

void Outline::locate(double x, double y, double& rho, double& edge_px) const {
  const double u = x / a, v = (y - cy) / b;
  const double theta = std::atan2(v, u);
  double radius = 1;
  for (int k = 0; k < 4; ++k)
    radius += wobble[k][0] * std::cos((k + 2) * theta) + wobble[k][1] * std::sin((k + 2) * theta);
  rho = std::sqrt(u * u + v * v) / radius;
  const double local = radius * std::hypot(a * std::cos(theta), b * std::sin(theta));  // centre-to-skin, px
  edge_px = (1 - rho) * local;
}

bool Outline::in_pectoral(double x, double y) const {
  if (!mlo || x < 0 || y < 0 || y > pect_y) return false;
  const double s = y / pect_y;
  return x / pect_x + s < 1 + pect_bulge * 4 * s * (1 - s);
}

Outline make_outline(const SynthParams& p, bool mlo, Draws& d) {
  Outline o;
  const double w = p.width, h = p.height;
  o.mlo = mlo;
  o.a = d.uniform(0.58, 0.82) * w;
  if (mlo) {
    o.cy = d.uniform(0.52, 0.60) * h;
    o.b = o.cy + d.uniform(0.05, 0.10) * h;  // reaches above the image's top edge: the axilla
  } else {
    o.cy = d.uniform(0.46, 0.54) * h;
    o.b = d.uniform(0.36, 0.45) * h;
  }
  for (auto& k : o.wobble) k[0] = d.uniform(-0.025, 0.025), k[1] = d.uniform(-0.025, 0.025);
  if (mlo) {
    const double top = o.a * std::sqrt(std::max(0.0, 1 - (o.cy / o.b) * (o.cy / o.b)));  // breast width at y = 0
    o.pect_x = std::max(0.12 * w, std::min(d.uniform(0.25, 0.42) * w, 0.85 * top));
    o.pect_y = d.uniform(0.45, 0.72) * h;
    o.pect_bulge = d.uniform(0.0, 0.12);
  }
  return o;
}

void render_outline(const SynthParams& p, const Outline& o, Plane& attenuation, Plane& thickness,
                    std::vector<uint8_t>& regions) {
  const double falloff_px = p.edge_falloff_mm / p.spacing_mm, skin_px = p.skin_mm / p.spacing_mm;
  for (int y = 0; y < p.height; ++y)
    for (int x = 0; x < p.width; ++x) {
      double rho, edge;
      o.locate(x + 0.5, y + 0.5, rho, edge);
      const bool pect = o.in_pectoral(x + 0.5, y + 0.5);
      const size_t i = size_t(y) * size_t(p.width) + size_t(x);
      if (rho >= 1 && !pect) continue;  // air
      // A compressed breast's edge is roughly a half-cylinder: thickness sqrt(1 - (1 - t)^2) over the fall-off.
      const double t = std::clamp(edge / falloff_px, 0.0, 1.0);
      const double thick = pect ? 1.0 : std::sqrt(1 - (1 - t) * (1 - t));
      thickness.at(x, y) = float(thick);
      const double skin = edge < skin_px ? 1.0 : std::exp(-(edge - skin_px));
      regions[i] = pect ? kPectoral : kBreast;
      // The muscle's own texture: faint fibres along its long axis.
      const double fibres =
          pect ? 0.012 * std::sin(0.35 * (x * o.pect_y + y * o.pect_x) / std::hypot(o.pect_x, o.pect_y)) : 0;
      attenuation.at(x, y) =
          float(pect ? thick * (p.pectoral_level + fibres) : thick * p.fat_level + p.skin_level * skin);
    }
}

Box loosen_box(const Box& tight, double lo, double hi, int width, int height, Draws& d) {
  const double left = d.uniform(lo, hi) * tight.width, right = d.uniform(lo, hi) * tight.width;
  const double top = d.uniform(lo, hi) * tight.height, bottom = d.uniform(lo, hi) * tight.height;
  const int x0 = std::max(0, int(std::floor(tight.x - left))), y0 = std::max(0, int(std::floor(tight.y - top)));
  const int x1 = std::min(width, int(std::ceil(tight.x + tight.width + right)));
  const int y1 = std::min(height, int(std::ceil(tight.y + tight.height + bottom)));
  return {x0, y0, x1 - x0, y1 - y0};
}

void gaussian_blur(Plane& plane, double sigma_px) {
  if (sigma_px <= 0) return;
  const int radius = std::max(1, int(std::ceil(3 * sigma_px)));
  std::vector<float> k(size_t(2 * radius + 1));
  double sum = 0;
  for (int i = -radius; i <= radius; ++i)
    sum += k[size_t(i + radius)] = float(std::exp(-0.5 * i * i / (sigma_px * sigma_px)));
  for (float& v : k) v = float(v / sum);
  const int w = plane.width, h = plane.height;
  std::vector<float> tmp(plane.v.size());
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      float s = 0;
      for (int i = -radius; i <= radius; ++i) s += k[size_t(i + radius)] * plane.at(std::clamp(x + i, 0, w - 1), y);
      tmp[size_t(y) * size_t(w) + size_t(x)] = s;
    }
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      float s = 0;
      for (int i = -radius; i <= radius; ++i)
        s += k[size_t(i + radius)] * tmp[size_t(std::clamp(y + i, 0, h - 1)) * size_t(w) + size_t(x)];
      plane.at(x, y) = s;
    }
}

}  // namespace massmap::data::synth
