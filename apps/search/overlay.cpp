#include "apps/search/overlay.h"

#include <algorithm>
#include <cmath>

#include "data/image_io.h"

namespace massmap::search {

namespace {

struct Rgb {
  float r, g, b;
};

// Blue (0) -> cyan -> green -> yellow -> red (1).
Rgb colour(float p) {
  p = std::clamp(p, 0.f, 1.f);
  const float t = 4 * p;
  if (t < 1) return {0, t, 1};
  if (t < 2) return {0, 1, 2 - t};
  if (t < 3) return {t - 2, 1, 0};
  return {1, 4 - t, 0};
}

// Bilinear sample of a (h, w) map at fractional cell (cy, cx), clamped to the map.
float sample(const std::vector<float>& map, int64_t h, int64_t w, double cy, double cx) {
  cy = std::clamp(cy, 0.0, double(h - 1));
  cx = std::clamp(cx, 0.0, double(w - 1));
  const int64_t y0 = int64_t(cy), x0 = int64_t(cx), y1 = std::min(y0 + 1, h - 1), x1 = std::min(x0 + 1, w - 1);
  const double fy = cy - double(y0), fx = cx - double(x0);
  const auto at = [&](int64_t y, int64_t x) { return double(map[size_t(y * w + x)]); };
  return float((1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) + fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1)));
}

struct Canvas {
  int width, height;
  std::vector<uint8_t>& rgb;  // (height, width, 3)
  void dot(int x, int y, Rgb c) {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    uint8_t* p = &rgb[(size_t(y) * size_t(width) + size_t(x)) * 3];
    p[0] = uint8_t(c.r * 255), p[1] = uint8_t(c.g * 255), p[2] = uint8_t(c.b * 255);
  }
  void circle(double cx, double cy, double radius, Rgb c) {
    const int steps = std::max(16, int(2 * M_PI * radius));
    for (int s = 0; s < steps; ++s) {
      const double a = 2 * M_PI * s / steps;
      for (double dr : {-0.5, 0.5})
        dot(int(std::lround(cx + (radius + dr) * std::cos(a))), int(std::lround(cy + (radius + dr) * std::sin(a))), c);
    }
  }
  void cross(double cx, double cy, int arm, Rgb c) {
    for (int d = -arm; d <= arm; ++d) {
      dot(int(std::lround(cx)) + d, int(std::lround(cy)), c);
      dot(int(std::lround(cx)), int(std::lround(cy)) + d, c);
    }
  }
  void box(double x0, double y0, double x1, double y1, Rgb c) {
    for (int x = int(x0); x <= int(x1); ++x) dot(x, int(y0), c), dot(x, int(y1), c);
    for (int y = int(y0); y <= int(y1); ++y) dot(int(x0), y, c), dot(int(x1), y, c);
  }
};

}  // namespace

std::vector<uint8_t> render_overlay(const MapResult& r, double nms_radius_mm, int* width, int* height) {
  const data::PreparedImage& p = r.prepared;
  const double f = std::min(1.0, double(kOverlaySide) / std::max(p.width, p.height));  // overlay px per prepared px
  const int w = std::max(1, int(std::lround(p.width * f))), h = std::max(1, int(std::lround(p.height * f)));
  const PlaneAxis &ay = r.geometry.plane.y, &ax = r.geometry.plane.x;
  std::vector<uint8_t> rgb(size_t(w) * size_t(h) * 3);  // (h, w, 3)
  for (int y = 0; y < h; ++y) {
    const double u = (y + 0.5) / f - 0.5;  // prepared row
    const int py = std::clamp(int(std::lround(u)), 0, p.height - 1);
    for (int x = 0; x < w; ++x) {
      const double v = (x + 0.5) / f - 0.5;
      const int px = std::clamp(int(std::lround(v)), 0, p.width - 1);
      const float grey = std::clamp(p.pixels[size_t(py) * size_t(p.width) + size_t(px)], 0.f, 1.f);
      const float prob =
          sample(r.map, ay.cells, ax.cells, (u - ay.first) / double(ay.stride), (v - ax.first) / double(ax.stride));
      const Rgb c = colour(prob);
      const float a = 0.6f * std::clamp(prob, 0.f, 1.f);
      uint8_t* o = &rgb[(size_t(y) * size_t(w) + size_t(x)) * 3];
      o[0] = uint8_t(std::lround(255 * ((1 - a) * grey + a * c.r)));
      o[1] = uint8_t(std::lround(255 * ((1 - a) * grey + a * c.g)));
      o[2] = uint8_t(std::lround(255 * ((1 - a) * grey + a * c.b)));
    }
  }
  Canvas canvas{w, h, rgb};
  for (const data::Box& b : p.rois)
    canvas.box(b.x * f, b.y * f, (b.x + b.width) * f - 1, (b.y + b.height) * f - 1, {0, 1, 0});
  const double radius = std::max(3.0, nms_radius_mm / p.spacing_mm * f);
  int others = 0;
  for (const Detection& d : r.detections) {
    const double cx = (d.prepared_x + 0.5) * f - 0.5, cy = (d.prepared_y + 0.5) * f - 0.5;
    if (d.finding) {
      canvas.circle(cx, cy, radius, {1, 0, 0});
      canvas.circle(cx, cy, radius + 1, {1, 0, 0});
    } else if (others++ < 10) {
      canvas.cross(cx, cy, 4, {1, 1, 0});
    }
  }
  *width = w;
  *height = h;
  return rgb;
}

void write_overlay(const std::string& path, const MapResult& r, double nms_radius_mm) {
  int w = 0, h = 0;
  const std::vector<uint8_t> rgb = render_overlay(r, nms_radius_mm, &w, &h);
  data::write_png8(path, w, h, 3, rgb);
}

}  // namespace massmap::search
