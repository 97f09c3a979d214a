#pragma once
// Synthetic mammograms, generator version synth-v1.
//
// Image i under seed S is a pure function of (S, i, SynthParams): every random draw comes from Philox streams
// keyed by S (uniform_at / normal_at), stream numbers derived from i, so an image never depends on how
// many others are generated or in which order. The defaults of SynthParams ARE synth-v1; they are frozen: change
// the generator's behaviour only under a new version string.
//
// Pipeline (all in an attenuation map, arbitrary units, 0 = air, before any detector effect):
//   1. outline: a half-ellipse-like breast against the chest wall (x = 0 for a left breast, mirrored for a right
//      one) with a low-order wobble, a compressed-thickness fall-off over the last edge_falloff_mm, a skin line;
//      MLO views add the pectoral muscle, a bright triangle in the upper chest-wall corner.
//   2. parenchyma: a power-law Gaussian field (power spectrum ~ 1/(f^2 + f0^2)^(beta/2), beta = 3) synthesised in
//      the Fourier domain with our own radix-2 FFT (random complex Gaussian coefficients, inverse FFT, real part),
//      shaped into a glandular fraction in [0, 1] by a soft threshold whose level sets the density category A-D
//      (and a prior that keeps glandular tissue away from the skin).
//   3. masses (0..masses_max, none with probability normal_fraction): round, oval, lobulated or spiculated
//      outlines, max Feret diameter 5-30 mm (log-uniform), a projected-ellipsoid intensity profile, contrast set by
//      a subtlety 1 (faint) .. 5 (obvious). Added to the attenuation map, so blur and noise act on them as on the
//      tissue.
//   4. distractors that are not masses: calcification clusters (tiny bright specks, listed as lesions of type
//      calcification), vessels (thin curvilinear bright lines), dense tissue islands (textured blobs).
//   5. detector: attenuation -> 12-bit signal by v = v_air + (v_max - v_air) (1 - exp(-gain A)), a separable
//      Gaussian blur (blur_sigma_mm), Gaussian noise of variance noise_a + noise_b v (Poisson-like), rounding to
//      0..4095 (stored in 16 bits).
//   6. the side and view label ("L CC", "R MLO") burned into the upper corner away from the chest wall with a
//      built-in 5x7 bitmap font, near the top of the range, as in the paper's figures.
// Ground truth: per mass an exact mask (pixel centres inside the outline; spicules are drawn but not part of the
// mask) and a deliberately loose ROI box (each side pushed out by 10-40% of the mask's extent, as DDSM's boxes
// are); calcification clusters with a loose box around their specks and a mask of the speck pixels.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/manifest.h"
#include "data/regions.h"

namespace massmap::data {

inline constexpr const char* kSynthVersion = "synth-v1";

struct SynthParams {
  // Geometry.
  int width = 416, height = 512;  // pixels; the default field is 83 x 102 mm at 0.2 mm
  double spacing_mm = 0.2;        // pixel spacing (DESIGN.md: 150-200 um)
  // Image mix.
  double normal_fraction = 0.3;   // probability that an image has no mass
  int masses_max = 3;             // an abnormal image has 1..masses_max masses (uniform)
  std::string density = "mixed";  // A, B, C, D, or mixed (per patient: A 10%, B 40%, C 40%, D 10%)
  // Breast outline.
  double edge_falloff_mm = 10;   // compressed thickness falls off over this distance from the skin
  double skin_mm = 0.8;          // skin line thickness
  double skin_level = 0.10;      // added attenuation of the skin line
  double fat_level = 0.30;       // attenuation of fatty tissue at full thickness
  double pectoral_level = 0.62;  // attenuation of the pectoral muscle (MLO)
  // Parenchyma.
  double beta = 3.0;                                    // power-law exponent of the tissue field's spectrum
  double f0_per_mm = 0.02;                              // low-frequency roll-off of the spectrum (cycles/mm)
  double gland_fraction[4] = {0.10, 0.30, 0.55, 0.80};  // target glandular fraction for A, B, C, D
  double gland_level = 0.30;                            // extra attenuation of fully glandular tissue over fat
  double gland_softness = 0.6;  // width of the soft threshold (in standard deviations of the field)
  // Masses.
  double mass_min_mm = 5, mass_max_mm = 30;                      // max Feret diameter of the mask
  double subtlety_contrast[5] = {0.05, 0.08, 0.12, 0.17, 0.24};  // peak added attenuation, subtlety 1..5
  int spicules_min = 8, spicules_max = 20;
  double roi_margin_min = 0.10, roi_margin_max = 0.40;  // ROI box sides pushed out by this fraction of the extent
  // Distractors.
  double calc_cluster_probability = 0.35;  // probability of one cluster; the same again for a second
  double calc_level = 0.45;                // attenuation of a calcification speck
  int vessels_max = 4;                     // 0..vessels_max vessels
  double vessel_level = 0.06;
  int islands_max = 3;  // 0..islands_max dense tissue islands
  double island_level = 0.10;
  // Detector.
  double v_air = 150, v_max = 3900, gain = 1.6;  // 12-bit signal curve
  double blur_sigma_mm = 0.15;
  double noise_a = 4, noise_b = 0.25;  // noise variance = noise_a + noise_b * signal (12-bit units)
  // Labels.
  bool labels = true;
  double label_height_mm = 6;  // height of a glyph
  double label_value = 4000;

  nlohmann::json to_json() const;
  // Throws BadConfig naming the first invalid value.
  void validate() const;
};

enum class LesionType { mass, calcification };
const char* lesion_type_name(LesionType t);

struct SynthLesion {
  LesionType type = LesionType::mass;
  std::string shape;          // round, oval, lobulated, spiculated; "cluster" for calcifications
  int subtlety = 0;           // 1..5 (masses)
  double diameter_mm = 0;     // target max Feret diameter (masses)
  Box box;                    // loose ROI
  Box tight;                  // bounding box of the mask (masses) or specks (calcifications)
  std::vector<uint8_t> mask;  // (height, width) 0/1: the mass, or a cluster's speck pixels
};

struct SynthImage {
  int width = 0, height = 0;
  double spacing_mm = 0;
  std::string patient_id;            // P00000: images 4p..4p+3 are patient p's L CC, L MLO, R CC, R MLO
  char laterality = 'L';             // L or R
  std::string view;                  // CC or MLO
  char density = 'B';                // A..D
  std::vector<uint16_t> pixels;      // (height, width) 12-bit values
  std::vector<float> glandular;      // (height, width) glandular fraction in [0, 1], 0 outside the breast
  std::vector<uint8_t> regions;      // (height, width) Region codes (data/regions.h)
  std::vector<SynthLesion> lesions;  // masses first, then calcification clusters
  std::string name() const;          // P00000_L_CC
};

SynthImage synth_image(const SynthParams& params, uint64_t seed, int64_t index);

// The zero-mean, unit-variance power-law field used for the parenchyma: (height, width), spectrum
// ~ 1/(f^2 + f0^2)^(beta/2) with f in cycles/mm. Exposed for tests.
std::vector<float> power_law_field(int width, int height, double spacing_mm, double beta, double f0_per_mm,
                                   uint64_t seed, uint64_t stream);

// Radially averaged power spectrum of a (height, width) field (mean removed, Hann window), fitted in log-log
// space between f_lo and f_hi (cycles/mm): returns the exponent beta of P ~ f^-beta.
double fitted_power_law_exponent(const std::vector<float>& field, int width, int height, double spacing_mm, double f_lo,
                                 double f_hi);

}  // namespace massmap::data
