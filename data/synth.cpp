// synth-v1: the pipeline (outline, parenchyma, masses, distractors, detector, labels) and the parameters' JSON.
#include "data/synth.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "base/errors.h"
#include "base/text.h"
#include "data/synth_internal.h"

namespace massmap::data {

const char* lesion_type_name(LesionType t) {
  return t == LesionType::mass ? "mass" : "calcification";
}

std::string SynthImage::name() const {
  return patient_id + "_" + laterality + "_" + view;
}

nlohmann::json SynthParams::to_json() const {
  return {{"version", kSynthVersion},
          {"width", width},
          {"height", height},
          {"spacing_mm", spacing_mm},
          {"normal_fraction", normal_fraction},
          {"masses_max", masses_max},
          {"density", density},
          {"edge_falloff_mm", edge_falloff_mm},
          {"skin_mm", skin_mm},
          {"skin_level", skin_level},
          {"fat_level", fat_level},
          {"pectoral_level", pectoral_level},
          {"beta", beta},
          {"f0_per_mm", f0_per_mm},
          {"gland_fraction", std::vector<double>(gland_fraction, gland_fraction + 4)},
          {"gland_level", gland_level},
          {"gland_softness", gland_softness},
          {"mass_min_mm", mass_min_mm},
          {"mass_max_mm", mass_max_mm},
          {"subtlety_contrast", std::vector<double>(subtlety_contrast, subtlety_contrast + 5)},
          {"spicules_min", spicules_min},
          {"spicules_max", spicules_max},
          {"roi_margin_min", roi_margin_min},
          {"roi_margin_max", roi_margin_max},
          {"calc_cluster_probability", calc_cluster_probability},
          {"calc_level", calc_level},
          {"vessels_max", vessels_max},
          {"vessel_level", vessel_level},
          {"islands_max", islands_max},
          {"island_level", island_level},
          {"v_air", v_air},
          {"v_max", v_max},
          {"gain", gain},
          {"blur_sigma_mm", blur_sigma_mm},
          {"noise_a", noise_a},
          {"noise_b", noise_b},
          {"labels", labels},
          {"label_height_mm", label_height_mm},
          {"label_value", label_value}};
}

void SynthParams::validate() const {
  auto fail = [](const std::string& what) { throw BadConfig("synth: " + what); };
  if (width < 64 || height < 64 || width > 16384 || height > 16384)
    fail("image size " + std::to_string(width) + "x" + std::to_string(height) + " outside 64..16384");
  if (!(spacing_mm >= 0.02 && spacing_mm <= 2)) fail("pixel spacing must lie in 0.02..2 mm");
  if (!(normal_fraction >= 0 && normal_fraction <= 1)) fail("normal fraction must lie in 0..1");
  if (masses_max < 0 || masses_max > 10) fail("masses-max must lie in 0..10");
  if (density != "A" && density != "B" && density != "C" && density != "D" && density != "mixed")
    fail("density must be A, B, C, D or mixed, not '" + density + "'");
  if (!(mass_min_mm > 0 && mass_max_mm >= mass_min_mm)) fail("mass sizes need 0 < min <= max");
  if (mass_max_mm / spacing_mm > 0.4 * std::min(width, height))
    fail("masses of " + decimal_text(mass_max_mm) + " mm do not fit a " + std::to_string(width) + "x" +
         std::to_string(height) + " image at " + decimal_text(spacing_mm) + " mm");
  if (!(beta > 0 && beta < 6)) fail("beta must lie in (0, 6)");
  if (!(roi_margin_min >= 0 && roi_margin_max >= roi_margin_min)) fail("ROI margins need 0 <= min <= max");
}

SynthImage synth_image(const SynthParams& p, uint64_t seed, int64_t index) {
  using namespace synth;
  p.validate();
  SynthImage img;
  img.width = p.width, img.height = p.height, img.spacing_mm = p.spacing_mm;
  const int64_t patient = index / 4, slot = index % 4;
  char id[32];
  std::snprintf(id, sizeof id, "P%05lld", (long long)patient);
  img.patient_id = id;
  img.laterality = slot < 2 ? 'L' : 'R';
  img.view = slot % 2 == 0 ? "CC" : "MLO";
  int density = 0;
  if (p.density == "mixed") {
    Draws dp(seed, patient_stream(patient));
    const double u = dp.uniform();
    density = u < 0.1 ? 0 : u < 0.5 ? 1 : u < 0.9 ? 2 : 3;
  } else {
    density = p.density[0] - 'A';
  }
  img.density = char('A' + density);

  Draws d(seed, image_stream(index, kScalars));
  const Outline o = make_outline(p, img.view == "MLO", d);
  const bool normal = d.uniform() < p.normal_fraction;
  const int masses = normal || p.masses_max == 0 ? 0 : d.integer(1, p.masses_max);

  const int w = p.width, h = p.height;
  Plane attenuation(w, h), thickness(w, h);
  img.regions.assign(size_t(w) * size_t(h), kAir);
  render_outline(p, o, attenuation, thickness, img.regions);
  render_parenchyma(p, density, o, thickness, img.regions, seed, index, attenuation, img.glandular);
  render_masses(p, masses, o, thickness, img.regions, seed, index, attenuation, img.lesions);
  render_distractors(p, o, thickness, img.regions, seed, index, attenuation, img.lesions);

  // Detector: signal curve, blur, signal-dependent noise, 12 bits.
  for (float& a : attenuation.v) a = float(p.v_air + (p.v_max - p.v_air) * (1 - std::exp(-p.gain * std::max(a, 0.f))));
  gaussian_blur(attenuation, p.blur_sigma_mm / p.spacing_mm);
  img.pixels.resize(attenuation.v.size());
  const uint64_t noise_stream = image_stream(index, kNoise);
  for (size_t i = 0; i < attenuation.v.size(); ++i) {
    const double s = attenuation.v[i];
    const double v = s + std::sqrt(p.noise_a + p.noise_b * s) * normal_at(seed, noise_stream, i);
    img.pixels[i] = uint16_t(std::clamp(std::lround(v), 0L, 4095L));
  }

  if (img.laterality == 'R') {  // mirror: the chest wall goes to the right edge
    auto flip = [&](auto& plane) {
      for (int y = 0; y < h; ++y) std::reverse(plane.begin() + ptrdiff_t(y) * w, plane.begin() + ptrdiff_t(y + 1) * w);
    };
    flip(img.pixels), flip(img.glandular), flip(img.regions);
    for (SynthLesion& l : img.lesions) {
      if (!l.mask.empty()) flip(l.mask);
      l.box.x = w - l.box.x - l.box.width;
      l.tight.x = w - l.tight.x - l.tight.width;
    }
  }
  if (p.labels)
    burn_label(p, std::string(1, img.laterality) + " " + img.view, img.laterality == 'L', img.pixels, w, h,
               img.regions);
  return img;
}

}  // namespace massmap::data
