#include "apps/search/patch_eval.h"

#include <algorithm>

namespace massmap::search {

void score_patches(Localizer& loc, const data::PreparedImage& prepared, int image_index,
                   const data::PatchConfig& config, uint64_t seed, PatchScores* out) {
  const std::vector<int64_t>& crop = loc.runner().graph().crop;
  const int ch = int(crop[0]), cw = int(crop[1]), size = config.size;
  const std::vector<data::PatchSpec> specs = data::sample_patches(prepared, image_index, config, seed);
  std::vector<float> window(size_t(ch) * size_t(cw));  // (crop height, crop width)
  for (const data::PatchSpec& s : specs) {
    const std::vector<float> patch = data::extract_patch(prepared, s.cx, s.cy, size, prepared.air);  // (size, size)
    const int oy = (size - ch) / 2, ox = (size - cw) / 2;
    for (int y = 0; y < ch; ++y)
      std::copy_n(patch.begin() + ptrdiff_t((y + oy) * size + ox), cw, window.begin() + ptrdiff_t(y * cw));
    const std::vector<float> prob = loc.runner().classify_crop(window);  // (K)
    out->p_mass.push_back(prob[size_t(loc.model().mass_class)]);
    out->labels.push_back(int(s.label));
  }
}

nlohmann::json reliability(const std::vector<float>& p_mass, const std::vector<int>& labels, int bins) {
  std::vector<int64_t> count(size_t(bins), 0), masses(size_t(bins), 0);  // (bins) each
  std::vector<double> sum(size_t(bins), 0);                              // (bins)
  for (size_t i = 0; i < p_mass.size(); ++i) {
    const int b = std::clamp(int(double(p_mass[i]) * bins), 0, bins - 1);
    ++count[size_t(b)];
    sum[size_t(b)] += p_mass[i];
    masses[size_t(b)] += labels[i] == 1;
  }
  nlohmann::json out = nlohmann::json::array();
  for (int b = 0; b < bins; ++b) {
    const size_t k = size_t(b);
    out.push_back(
        {{"lo", double(b) / bins},
         {"hi", double(b + 1) / bins},
         {"count", count[k]},
         {"mean_p", count[k] ? nlohmann::json(sum[k] / double(count[k])) : nlohmann::json()},
         {"fraction_mass", count[k] ? nlohmann::json(double(masses[k]) / double(count[k])) : nlohmann::json()}});
  }
  return out;
}

}  // namespace massmap::search
