// synth-v1: masses. An outline r(theta) (round, oval, lobulated, spiculated core) scaled so that its max Feret
// diameter is the drawn size; a projected-ellipsoid profile sqrt(1 - s^2) with a soft margin; spicules as tapering
// lines radiating from the core (drawn, not part of the mask).
#include <algorithm>
#include <cmath>
#include <vector>

#include "data/synth_internal.h"

namespace massmap::data::synth {

namespace {

constexpr int kAngles = 720;
const char* const kShapes[4] = {"round", "oval", "lobulated", "spiculated"};

struct Spicule {
  double angle, length_px, width_px;
};

struct MassShape {
  std::vector<double> radius;  // (kAngles) unit outline r(theta)
  double margin = 0.05;        // soft margin as a fraction of the radius
  std::vector<Spicule> spicules;
  double r(double theta) const {  // linear interpolation in the table
    double t = theta / (2 * kPi) * kAngles;
    t -= std::floor(t / kAngles) * kAngles;
    const int i = int(t) % kAngles, j = (i + 1) % kAngles;
    const double f = t - std::floor(t);
    return radius[size_t(i)] * (1 - f) + radius[size_t(j)] * f;
  }
};

MassShape make_shape(int kind, Draws& d) {
  MassShape m;
  m.radius.assign(kAngles, 1.0);
  double harm[12][2] = {};
  int kmin = 2, kmax = 3;
  double amp = 0.02, q = 1, phi = 0;
  if (kind == 1) q = d.uniform(0.5, 0.8), phi = d.uniform(0, kPi);
  if (kind == 2) kmin = 3, kmax = 6, amp = 0.09, q = d.uniform(0.75, 1.0), phi = d.uniform(0, kPi);
  if (kind == 3) kmin = 5, kmax = 11, amp = 0.035;
  for (int k = kmin; k <= kmax; ++k) harm[k][0] = d.uniform(-amp, amp), harm[k][1] = d.uniform(-amp, amp);
  for (int i = 0; i < kAngles; ++i) {
    const double theta = 2 * kPi * i / kAngles;
    const double c = std::cos(theta - phi), s = std::sin(theta - phi);
    double r = 1 / std::sqrt(c * c + s * s / (q * q));
    for (int k = kmin; k <= kmax; ++k) r += harm[k][0] * std::cos(k * theta) + harm[k][1] * std::sin(k * theta);
    m.radius[size_t(i)] = std::max(r, 0.3);
  }
  m.margin = kind == 0 || kind == 1 ? d.uniform(0.03, 0.2) : d.uniform(0.08, 0.25);
  return m;
}

// Max Feret diameter of the unit outline.
double feret(const MassShape& m) {
  const int step = 2, points = kAngles / step;
  std::vector<double> xs(points), ys(points);  // (points): the outline's sampled points, each computed once
  for (int i = 0; i < points; ++i) {
    const double t = 2 * kPi * (i * step) / kAngles;
    xs[size_t(i)] = m.radius[size_t(i * step)] * std::cos(t);
    ys[size_t(i)] = m.radius[size_t(i * step)] * std::sin(t);
  }
  double best = 0;
  for (int i = 0; i < points; ++i)
    for (int j = i + 1; j < points; ++j)
      best = std::max(best, std::hypot(xs[size_t(i)] - xs[size_t(j)], ys[size_t(i)] - ys[size_t(j)]));
  return best;
}

double smoothstep(double e0, double e1, double x) {
  const double t = std::clamp((x - e0) / (e1 - e0), 0.0, 1.0);
  return t * t * (3 - 2 * t);
}

}  // namespace

void render_masses(const SynthParams& p, int count, const Outline& o, const Plane& thickness,
                   const std::vector<uint8_t>& regions, uint64_t seed, int64_t index, Plane& attenuation,
                   std::vector<SynthLesion>& lesions) {
  Draws d(seed, image_stream(index, kMasses));
  const int w = p.width, h = p.height;
  std::vector<double> placed_x, placed_y, placed_r;
  for (int m = 0; m < count; ++m) {
    const int kind = d.integer(0, 3);
    MassShape shape = make_shape(kind, d);
    const double diameter_mm = std::exp(d.uniform(std::log(p.mass_min_mm), std::log(p.mass_max_mm)));
    const int subtlety = d.integer(1, 5);
    const double contrast = p.subtlety_contrast[subtlety - 1] * d.uniform(0.85, 1.15);
    const double scale = diameter_mm / p.spacing_mm / feret(shape);  // px per unit radius
    double rmax = 0;
    for (double r : shape.radius) rmax = std::max(rmax, r);
    if (kind == 3) {
      const int n = d.integer(p.spicules_min, p.spicules_max);
      for (int s = 0; s < n; ++s)
        shape.spicules.push_back(
            {d.uniform(0, 2 * kPi), scale * d.uniform(0.6, 1.6), d.uniform(0.25, 0.5) / p.spacing_mm});
    }
    // Placement: inside the breast (not the muscle), the core clear of the skin, apart from earlier masses.
    double cx = -1, cy = -1;
    for (int attempt = 0; attempt < 200; ++attempt) {
      const double x = d.uniform(0, w), y = d.uniform(0, h);
      const size_t i = size_t(y) * size_t(w) + size_t(x);
      if (regions[i] != kBreast) continue;
      const double extent = rmax * scale + 1;  // the core stays inside the image (the chest wall side included)
      if (x < extent || y < extent || x > w - extent || y > h - extent) continue;
      double rho, edge;
      o.locate(x, y, rho, edge);
      if (edge < 1.1 * rmax * scale + p.edge_falloff_mm / p.spacing_mm * 0.5) continue;
      bool clear = !o.in_pectoral(x - rmax * scale, y - rmax * scale);
      for (size_t k = 0; k < placed_x.size() && clear; ++k)
        clear = std::hypot(x - placed_x[k], y - placed_y[k]) > 1.1 * (placed_r[k] + rmax * scale);
      if (!clear) continue;
      cx = x, cy = y;
      break;
    }
    if (cx < 0) continue;  // no room left in this breast: fewer masses
    placed_x.push_back(cx), placed_y.push_back(cy), placed_r.push_back(rmax * scale);

    SynthLesion lesion;
    lesion.type = LesionType::mass;
    lesion.shape = kShapes[kind];
    lesion.subtlety = subtlety;
    lesion.diameter_mm = diameter_mm;
    lesion.mask.assign(size_t(w) * size_t(h), 0);
    double reach = rmax * scale * (1 + shape.margin);
    for (const Spicule& s : shape.spicules) reach = std::max(reach, 0.7 * scale + s.length_px + s.width_px);
    const int x0 = std::max(0, int(cx - reach) - 1), x1 = std::min(w - 1, int(cx + reach) + 1);
    const int y0 = std::max(0, int(cy - reach) - 1), y1 = std::min(h - 1, int(cy + reach) + 1);
    int mx0 = w, my0 = h, mx1 = -1, my1 = -1;
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) {
        const double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
        const double theta = std::atan2(dy, dx), dist = std::hypot(dx, dy);
        const double s = dist / (scale * shape.r(theta));
        double value = 0;
        if (s < 1 + shape.margin)
          value = (1 - smoothstep(1 - shape.margin, 1 + shape.margin, s)) *
                  std::sqrt(std::max(0.0, 1 - (s / (1 + shape.margin)) * (s / (1 + shape.margin))));
        for (const Spicule& sp : shape.spicules) {
          // Distance to the segment from 0.7 r to 0.7 r + length along the spicule's direction.
          const double ux = std::cos(sp.angle), uy = std::sin(sp.angle);
          const double along = dx * ux + dy * uy - 0.7 * scale, across = std::fabs(-dx * uy + dy * ux);
          if (along < 0 || along > sp.length_px) continue;
          const double half = 0.5 * sp.width_px * (1 - along / sp.length_px) + 0.3;
          value = std::max(
              value, 0.55 * (1 - 0.6 * along / sp.length_px) * std::exp(-0.5 * (across / half) * (across / half)));
        }
        if (value <= 0) continue;
        const size_t i = size_t(y) * size_t(w) + size_t(x);
        attenuation.v[i] += float(contrast * value * std::max(thickness.v[i], 0.3f));
        if (s <= 1) {
          lesion.mask[i] = 1;
          mx0 = std::min(mx0, x), mx1 = std::max(mx1, x), my0 = std::min(my0, y), my1 = std::max(my1, y);
        }
      }
    if (mx1 < 0) continue;
    lesion.tight = {mx0, my0, mx1 - mx0 + 1, my1 - my0 + 1};
    lesion.box = loosen_box(lesion.tight, p.roi_margin_min, p.roi_margin_max, w, h, d);
    lesions.push_back(std::move(lesion));
  }
}

}  // namespace massmap::data::synth
