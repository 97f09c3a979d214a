#include "apps/search/baseline_dog.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "data/regions.h"

namespace massmap::search {

std::vector<float> gaussian_blur(const std::vector<float>& image, int width, int height, double sigma) {
  if (!(sigma > 0)) return image;
  const int radius = std::max(1, int(std::ceil(3 * sigma)));
  std::vector<float> taps(size_t(2 * radius + 1));  // (2 radius + 1) normalised weights
  double sum = 0;
  for (int k = -radius; k <= radius; ++k)
    sum += taps[size_t(k + radius)] = float(std::exp(-0.5 * k * k / (sigma * sigma)));
  for (float& t : taps) t = float(t / sum);
  std::vector<float> rows(image.size()), out(image.size());  // (height, width) each
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      double acc = 0;
      for (int k = std::max(-radius, -x); k <= std::min(radius, width - 1 - x); ++k)
        acc += double(taps[size_t(k + radius)]) * image[size_t(y) * size_t(width) + size_t(x + k)];
      rows[size_t(y) * size_t(width) + size_t(x)] = float(acc);
    }
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      double acc = 0;
      for (int k = std::max(-radius, -y); k <= std::min(radius, height - 1 - y); ++k)
        acc += double(taps[size_t(k + radius)]) * rows[size_t(y + k) * size_t(width) + size_t(x)];
      out[size_t(y) * size_t(width) + size_t(x)] = float(acc);
    }
  return out;
}

std::vector<float> dog_map(const data::PreparedImage& p, const ImageGeometry& g) {
  const int f = std::max(1, int(std::lround(kDogPoolMm / p.spacing_mm)));  // pooling factor
  const int w = (p.width + f - 1) / f, h = (p.height + f - 1) / f;
  std::vector<float> weighted(size_t(w) * size_t(h), 0.f), mask(weighted.size(), 0.f);  // (h, w) I * M and M
  for (int y = 0; y < p.height; ++y)
    for (int x = 0; x < p.width; ++x) {
      const size_t src = size_t(y) * size_t(p.width) + size_t(x), dst = size_t(y / f) * size_t(w) + size_t(x / f);
      if (p.regions[src] != data::kBreast) continue;
      weighted[dst] += p.pixels[src];
      mask[dst] += 1.f;
    }
  const float none = -std::numeric_limits<float>::infinity();
  std::vector<float> response(weighted.size(), none);  // (h, w) max over scales, -inf off the breast
  const double pooled_mm = p.spacing_mm * f;
  for (double r : kDogRadiiMm) {
    const double sigma = r / std::sqrt(2.0) / pooled_mm;
    // (h, w) each: I * M and M blurred at sigma (a, am) and at 1.6 sigma (b, bm)
    const std::vector<float> a = gaussian_blur(weighted, w, h, sigma), am = gaussian_blur(mask, w, h, sigma);
    const std::vector<float> b = gaussian_blur(weighted, w, h, 1.6 * sigma),
                             bm = gaussian_blur(mask, w, h, 1.6 * sigma);
    for (size_t i = 0; i < response.size(); ++i) {
      if (mask[i] <= 0 || am[i] <= 0 || bm[i] <= 0) continue;
      response[i] = std::max(response[i], a[i] / am[i] - b[i] / bm[i]);
    }
  }
  const PlaneAxis &ay = g.plane.y, &ax = g.plane.x;
  std::vector<float> map(size_t(ay.cells * ax.cells), 0.f);  // (cells_y, cells_x)
  for (int64_t i = 0; i < ay.cells; ++i)
    for (int64_t j = 0; j < ax.cells; ++j) {
      // The cell's stride window [centre - stride / 2, centre + stride / 2) in prepared pixels, then pooled pixels.
      const auto range = [f](const PlaneAxis& a, int64_t c, int limit, int* lo, int* hi) {
        const double centre = a.centre(c), half = double(a.stride) / 2;
        *lo = std::max(0, int(std::floor((centre - half + 0.5) / f)));
        *hi = std::min(limit - 1, int(std::floor((centre + half - 0.5) / f)));
      };
      int y0, y1, x0, x1;
      range(ay, i, h, &y0, &y1);
      range(ax, j, w, &x0, &x1);
      float best = none;
      for (int y = y0; y <= y1; ++y)
        for (int x = x0; x <= x1; ++x) best = std::max(best, response[size_t(y) * size_t(w) + size_t(x)]);
      if (best != none) map[size_t(i * ax.cells + j)] = float(1 / (1 + std::exp(-double(best) / kDogScale)));
    }
  return map;
}

}  // namespace massmap::search
