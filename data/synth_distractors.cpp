// synth-v1: things that are not masses. Calcification clusters (5-15 specks of 0.2-0.5 mm within 2-6 mm, listed
// as lesions of type calcification), vessels (thin curvilinear lines, quadratic Bezier paths running from the
// chest wall side towards the nipple) and dense tissue islands (textured elliptical blobs of 5-20 mm).
#include <algorithm>
#include <cmath>

#include "data/synth_internal.h"

namespace massmap::data::synth {

namespace {

// A random point inside the breast (not the muscle), at least margin_px from the skin; false after 200 tries.
bool breast_point(const SynthParams& p, const Outline& o, const std::vector<uint8_t>& regions, double margin_px,
                  Draws& d, double& px, double& py) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    const double x = d.uniform(0, p.width), y = d.uniform(0, p.height);
    if (regions[size_t(y) * size_t(p.width) + size_t(x)] != kBreast) continue;
    double rho, edge;
    o.locate(x, y, rho, edge);
    if (edge < margin_px) continue;
    px = x, py = y;
    return true;
  }
  return false;
}

// Adds amplitude * exp(-d^2 / (2 sigma^2)) around (cx, cy) with max-combination into `peak`.
void splat_max(Plane& peak, double cx, double cy, double sigma) {
  const int r = int(std::ceil(3 * sigma)) + 1;
  for (int y = std::max(0, int(cy) - r); y <= std::min(peak.height - 1, int(cy) + r); ++y)
    for (int x = std::max(0, int(cx) - r); x <= std::min(peak.width - 1, int(cx) + r); ++x) {
      const double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
      const float v = float(std::exp(-0.5 * (dx * dx + dy * dy) / (sigma * sigma)));
      peak.at(x, y) = std::max(peak.at(x, y), v);
    }
}

}  // namespace

void render_distractors(const SynthParams& p, const Outline& o, const Plane& thickness,
                        const std::vector<uint8_t>& regions, uint64_t seed, int64_t index, Plane& attenuation,
                        std::vector<SynthLesion>& lesions) {
  const int w = p.width, h = p.height;
  const double mm = 1 / p.spacing_mm;  // px per mm

  // Calcification clusters.
  Draws dc(seed, image_stream(index, kCalcs));
  int clusters = 0;
  while (clusters < 2 && dc.uniform() < p.calc_cluster_probability) ++clusters;
  for (int c = 0; c < clusters; ++c) {
    double cx, cy;
    if (!breast_point(p, o, regions, 4 * mm, dc, cx, cy)) break;
    const int specks = dc.integer(5, 15);
    const double spread = dc.uniform(2, 6) * mm / 2;
    Plane peak(w, h);
    int x0 = w, y0 = h, x1 = -1, y1 = -1;
    for (int s = 0; s < specks; ++s) {
      const double sx = std::clamp(cx + spread * 0.6 * dc.normal(), 0.0, w - 1.0);
      const double sy = std::clamp(cy + spread * 0.6 * dc.normal(), 0.0, h - 1.0);
      const double size = dc.uniform(0.2, 0.5) * mm;  // diameter
      splat_max(peak, sx, sy, std::max(0.35, size / 2.5));
      const int r = int(std::ceil(size / 2));
      x0 = std::min(x0, int(sx) - r), x1 = std::max(x1, int(sx) + r);
      y0 = std::min(y0, int(sy) - r), y1 = std::max(y1, int(sy) + r);
    }
    const double level = p.calc_level * dc.uniform(0.6, 1.2);
    for (size_t i = 0; i < peak.v.size(); ++i)
      if (peak.v[i] > 0.01f && regions[i] != kAir) attenuation.v[i] += float(level * peak.v[i]);
    SynthLesion lesion;
    lesion.type = LesionType::calcification;
    lesion.shape = "cluster";
    lesion.subtlety = dc.integer(1, 5);
    x0 = std::max(0, x0), y0 = std::max(0, y0), x1 = std::min(w - 1, x1), y1 = std::min(h - 1, y1);
    lesion.tight = {x0, y0, x1 - x0 + 1, y1 - y0 + 1};
    lesion.box = loosen_box(lesion.tight, p.roi_margin_min, p.roi_margin_max, w, h, dc);
    // The exact mask: speck pixels (at least 10% of a speck's peak, which always includes the pixel holding its
    // centre) inside the breast and the tight box. Adds no draw, so synth-v1's pixels and boxes are unchanged.
    lesion.mask.assign(size_t(w) * size_t(h), 0);  // (height, width) 0/1
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) {
        const size_t i = size_t(y) * size_t(w) + size_t(x);
        lesion.mask[i] = peak.v[i] >= 0.1f && regions[i] != kAir ? 1 : 0;
      }
    lesions.push_back(std::move(lesion));
  }

  // Vessels: from near the chest wall towards the nipple side, bending.
  Draws dv(seed, image_stream(index, kVessels));
  const int vessels = dv.integer(0, p.vessels_max);
  if (vessels > 0) {
    Plane peak(w, h);
    for (int v = 0; v < vessels; ++v) {
      const double y_start = o.cy + dv.uniform(-0.8, 0.8) * o.b, x_start = dv.uniform(0.02, 0.15) * o.a;
      const double x_end = dv.uniform(0.55, 0.95) * o.a, y_end = o.cy + dv.uniform(-0.4, 0.4) * o.b;
      const double x_mid = 0.5 * (x_start + x_end) + dv.uniform(-0.15, 0.15) * o.a;
      const double y_mid = 0.5 * (y_start + y_end) + dv.uniform(-0.25, 0.25) * o.b;
      const double sigma = dv.uniform(0.25, 0.6) * mm / 2;
      const double length = std::hypot(x_end - x_start, y_end - y_start) + std::hypot(x_mid - x_start, y_mid - y_start);
      const int steps = std::max(8, int(2 * length));
      for (int s = 0; s <= steps; ++s) {
        const double t = double(s) / steps;
        const double x = (1 - t) * (1 - t) * x_start + 2 * t * (1 - t) * x_mid + t * t * x_end;
        const double y = (1 - t) * (1 - t) * y_start + 2 * t * (1 - t) * y_mid + t * t * y_end;
        splat_max(peak, x, y, sigma * (1 - 0.5 * t));
      }
    }
    const double level = p.vessel_level * dv.uniform(0.7, 1.3);
    for (size_t i = 0; i < peak.v.size(); ++i)
      if (regions[i] == kBreast) attenuation.v[i] += float(level * peak.v[i] * thickness.v[i]);
  }

  // Dense tissue islands: textured ellipses with soft edges.
  Draws di(seed, image_stream(index, kIslands));
  const int islands = di.integer(0, p.islands_max);
  if (islands > 0) {
    const std::vector<float> texture =
        power_law_field(w, h, p.spacing_mm, 2.0, 0.2, seed, image_stream(index, kIslandField));
    for (int k = 0; k < islands; ++k) {
      double cx, cy;
      if (!breast_point(p, o, regions, 5 * mm, di, cx, cy)) break;
      const double ra = di.uniform(2.5, 10) * mm, rb = ra * di.uniform(0.4, 0.9), phi = di.uniform(0, kPi);
      const double level = p.island_level * di.uniform(0.6, 1.3);
      const int r = int(ra * 1.5) + 1;
      for (int y = std::max(0, int(cy) - r); y <= std::min(h - 1, int(cy) + r); ++y)
        for (int x = std::max(0, int(cx) - r); x <= std::min(w - 1, int(cx) + r); ++x) {
          const size_t i = size_t(y) * size_t(w) + size_t(x);
          if (regions[i] != kBreast) continue;
          const double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
          const double u = (dx * std::cos(phi) + dy * std::sin(phi)) / ra;
          const double v = (-dx * std::sin(phi) + dy * std::cos(phi)) / rb;
          const double q = u * u + v * v;
          if (q > 2.25) continue;
          const double body = std::exp(-q * q);  // flat top, soft edge
          attenuation.v[i] += float(level * body * std::max(0.0, 0.6 + 0.4 * texture[i]) * thickness.v[i]);
        }
    }
  }
}

}  // namespace massmap::data::synth
