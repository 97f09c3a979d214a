#pragma once
// Pieces of the synth-v1 generator shared by data/synth_*.cpp. Not a public interface.
#include <complex>
#include <cstdint>
#include <vector>

#include "base/philox.h"
#include "data/synth.h"

namespace massmap::data::synth {

// Stream numbers: image i owns streams (i << 8) | k, patient p owns (1 << 62) | p.
enum Substream : uint64_t {
  kScalars = 0,      // view-independent scalar draws of the image (outline, counts, placements)
  kParenchyma = 1,   // Fourier coefficients of the tissue field
  kNoise = 2,        // detector noise
  kMasses = 3,       // mass shapes
  kCalcs = 4,        // calcification specks
  kVessels = 5,      // vessel paths
  kIslands = 6,      // dense islands
  kIslandField = 7,  // islands' texture
};
inline uint64_t image_stream(int64_t index, Substream k) {
  return (uint64_t(index) << 8) | uint64_t(k);
}
inline uint64_t patient_stream(int64_t patient) {
  return (uint64_t(1) << 62) | uint64_t(patient);
}

// Sequential draws from one stream.
class Draws {
 public:
  Draws(uint64_t seed, uint64_t stream) : seed_(seed), stream_(stream) {}
  double uniform() { return uniform_at(seed_, stream_, next_++); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  int integer(int lo, int hi) {  // inclusive
    const int v = lo + int(uniform() * (hi - lo + 1));
    return v > hi ? hi : v;
  }
  double normal() { return normal_at(seed_, stream_, next_++); }

 private:
  uint64_t seed_, stream_, next_ = 0;
};

constexpr double kPi = 3.14159265358979323846;

// In-place 2-D radix-2 FFT of a (rows, cols) row-major array, both powers of two; inverse without the 1/n scale.
void fft2d(std::vector<std::complex<double>>& a, int rows, int cols, bool inverse);
int next_pow2(int n);

// A float plane (height, width).
struct Plane {
  int width = 0, height = 0;
  std::vector<float> v;
  Plane() = default;
  Plane(int w, int h, float fill = 0) : width(w), height(h), v(size_t(w) * size_t(h), fill) {}
  float& at(int x, int y) { return v[size_t(y) * size_t(width) + size_t(x)]; }
  float at(int x, int y) const { return v[size_t(y) * size_t(width) + size_t(x)]; }
};

// The breast's geometry in image coordinates of a LEFT breast (chest wall at x = 0); right breasts are mirrored
// at the end.
struct Outline {
  double cy = 0, a = 0, b = 0;  // half-ellipse centre on the chest wall (x = 0, y = cy), semi-axes (x, y) in px
  double wobble[4][2] = {};     // radial harmonics 2..5 (cos, sin)
  bool mlo = false;
  double pect_x = 0, pect_y = 0;  // pectoral triangle (0,0), (pect_x, 0), (0, pect_y) before its curve
  double pect_bulge = 0;          // the muscle's front edge bows outwards by this fraction
  // rho: normalised elliptical radius (< 1 inside); edge_px: approximate distance to the skin in pixels.
  void locate(double x, double y, double& rho, double& edge_px) const;
  bool in_pectoral(double x, double y) const;
};

Outline make_outline(const SynthParams& p, bool mlo, Draws& d);
// Fills thickness (0..1, the compressed-thickness profile) and regions (air / breast / pectoral) and returns the
// attenuation of fat, skin and muscle.
void render_outline(const SynthParams& p, const Outline& o, Plane& attenuation, Plane& thickness,
                    std::vector<uint8_t>& regions);

// Glandular fraction (0..1) inside the breast for density index 0..3 (A..D); adds its attenuation.
void render_parenchyma(const SynthParams& p, int density, const Outline& o, const Plane& thickness,
                       const std::vector<uint8_t>& regions, uint64_t seed, int64_t index, Plane& attenuation,
                       std::vector<float>& glandular);

// Masses: appends lesions with masks and adds their attenuation.
void render_masses(const SynthParams& p, int count, const Outline& o, const Plane& thickness,
                   const std::vector<uint8_t>& regions, uint64_t seed, int64_t index, Plane& attenuation,
                   std::vector<SynthLesion>& lesions);

// Calcification clusters (appended as lesions), vessels and dense islands.
void render_distractors(const SynthParams& p, const Outline& o, const Plane& thickness,
                        const std::vector<uint8_t>& regions, uint64_t seed, int64_t index, Plane& attenuation,
                        std::vector<SynthLesion>& lesions);

// Burns `text` into the image's upper corner at the given side (right_side: the corner at x = width - 1).
void burn_label(const SynthParams& p, const std::string& text, bool right_side, std::vector<uint16_t>& pixels,
                int width, int height, std::vector<uint8_t>& regions);

// Separable Gaussian blur with clamped edges.
void gaussian_blur(Plane& plane, double sigma_px);

// Loose ROI around a tight box: each side pushed out by a fraction in [lo, hi] of the extent, clipped.
Box loosen_box(const Box& tight, double lo, double hi, int width, int height, Draws& d);

}  // namespace massmap::data::synth
