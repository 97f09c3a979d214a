#include "apps/search/roi_stats.h"

#include <algorithm>
#include <cmath>

namespace massmap::search {

namespace {

// Fractional cell index of prepared coordinate u along an axis, clamped to the outer cell centres.
double cell_coordinate(const PlaneAxis& a, double u) {
  const double c = (u - a.first) / double(a.stride);
  return std::clamp(c, 0.0, double(a.cells - 1));
}

}  // namespace

float map_at(const std::vector<float>& map, const ImageGeometry& g, double x, double y) {
  // Original pixel centre x lies at prepared coordinate (x + 0.5) / scale - 0.5 (the inverse of geometry.h's map).
  const double cy = cell_coordinate(g.plane.y, (y + 0.5) / g.scale_y() - 0.5);
  const double cx = cell_coordinate(g.plane.x, (x + 0.5) / g.scale_x() - 0.5);
  const int64_t w = g.plane.x.cells, h = g.plane.y.cells;
  const int64_t y0 = int64_t(std::floor(cy)), x0 = int64_t(std::floor(cx));
  const int64_t y1 = std::min(y0 + 1, h - 1), x1 = std::min(x0 + 1, w - 1);
  const double fy = cy - double(y0), fx = cx - double(x0);
  auto at = [&](int64_t i, int64_t j) { return double(map[size_t(i * w + j)]); };
  const double top = at(y0, x0) * (1 - fx) + at(y0, x1) * fx;
  const double bottom = at(y1, x0) * (1 - fx) + at(y1, x1) * fx;
  return float(top * (1 - fy) + bottom * fy);
}

RoiStats roi_stats(const std::vector<float>& map, const ImageGeometry& g, const std::vector<uint8_t>& mask) {
  RoiStats s;
  double sum = 0;
  for (int y = 0; y < g.original_height; ++y)
    for (int x = 0; x < g.original_width; ++x) {
      if (!mask[size_t(y) * size_t(g.original_width) + size_t(x)]) continue;
      const float v = map_at(map, g, x, y);
      s.max = s.pixels ? std::max(s.max, v) : v;
      sum += v;
      ++s.pixels;
    }
  s.mean = s.pixels ? float(sum / double(s.pixels)) : 0.f;
  return s;
}

std::vector<double> fraction_at_or_above(const std::vector<float>& values, const std::vector<double>& thresholds) {
  std::vector<double> out;
  for (double t : thresholds) {
    int64_t n = 0;
    for (float v : values) n += double(v) >= t;
    out.push_back(values.empty() ? 0.0 : double(n) / double(values.size()));
  }
  return out;
}

}  // namespace massmap::search
