#pragma once
// The non-learned baseline: a difference-of-Gaussians blob detector on the prepared image, so a reader sees what
// learning adds. Masses are denser (brighter) than the fat around them and roughly round, so
//   R_s = B(sigma_s) - B(1.6 sigma_s),  sigma_s = r_s / sqrt(2) for mass radii r_s = 2.5, 5, 10 mm
// (the scale at which a Gaussian-blurred disc of radius r peaks), B(sigma) the breast-only Gaussian blur
// blur(I * M) / blur(M) (M the breast region, so the skin line and the pectoral muscle give no edge response),
// computed on the image average-pooled to about 0.8 mm. The response is max_s R_s, each map cell takes the highest
// response within its stride window, and P = 1 / (1 + exp(-R / 0.05)) maps it to (0, 1) monotonically (intensities
// are normalised to 0..1 between the breast's 1st and 99th percentiles, so 0.05 is 5% of that range). The map has
// the CNN map's cells and geometry, so the same peaks, NMS and judging score it.
#include <vector>

#include "apps/search/geometry.h"
#include "data/preprocess.h"

namespace massmap::search {

constexpr double kDogRadiiMm[3] = {2.5, 5, 10};
constexpr double kDogPoolMm = 0.8;
constexpr double kDogScale = 0.05;

// (plane.y.cells, plane.x.cells) P in (0, 1); cells whose window holds no breast pixel get 0.
std::vector<float> dog_map(const data::PreparedImage& prepared, const ImageGeometry& geometry);

// Separable Gaussian blur of a (height, width) image, zero beyond the edges, truncated at 3 sigma (sigma in
// pixels; sigma 0 copies).
std::vector<float> gaussian_blur(const std::vector<float>& image, int width, int height, double sigma);

}  // namespace massmap::search
