#include "nets/toy_shapes.h"

#include <cmath>

#include "base/philox.h"

namespace massmap::nets {

namespace {

// Draws of image i come from stream i, so images are independent of how many are generated.
class Draws {
 public:
  Draws(uint64_t seed, uint64_t image) : seed_(seed), stream_(image) {}
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform_at(seed_, stream_, next_++); }
  float normal() { return normal_at(seed_, stream_, next_++); }

 private:
  uint64_t seed_, stream_, next_ = 0;
};

void render(float* img /* (size, size) */, int size, int label, Draws& d, float noise) {
  // Background: white noise smoothed by a 3x3 box filter (some texture, like parenchyma, not like pixels).
  std::vector<float> raw(size_t(size * size));  // (size, size)
  for (float& v : raw) v = d.normal();
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      float s = 0;
      int n = 0;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          int yy = y + dy, xx = x + dx;
          if (yy < 0 || yy >= size || xx < 0 || xx >= size) continue;
          s += raw[size_t(yy * size + xx)];
          ++n;
        }
      img[y * size + x] = noise * 2.f * s / float(n);
    }
  const float margin = size * 0.25f;
  const float cy = d.uniform(margin, size - margin), cx = d.uniform(margin, size - margin);
  const float contrast = d.uniform(0.7f, 1.3f);
  if (label == 1) {  // blob: a smooth disc
    const float radius = d.uniform(2.0f, size * 0.17f);
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        float r = std::hypot(y - cy, x - cx) / radius;
        img[y * size + x] += contrast * std::exp(-r * r * r * r);
      }
  } else {  // bar: a thin line segment at a random angle
    const float angle = d.uniform(0.f, 3.14159265f), half_length = d.uniform(size * 0.2f, size * 0.35f);
    const float width = d.uniform(0.8f, 1.4f);
    const float ux = std::cos(angle), uy = std::sin(angle);
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        float along = (x - cx) * ux + (y - cy) * uy, across = -(x - cx) * uy + (y - cy) * ux;
        float t = std::fabs(along) > half_length ? std::fabs(along) - half_length : 0.f;
        float q = (across * across + t * t) / (width * width);
        img[y * size + x] += contrast * std::exp(-q * q);
      }
  }
}

}  // namespace

ToyShapes make_toy_shapes(const ToyShapesOptions& o) {
  ToyShapes set;
  set.images = Tensor({o.count, 1, o.size, o.size});
  set.labels.resize(size_t(o.count));
  for (int i = 0; i < o.count; ++i) {
    const int label = i % 2;
    Draws d(o.seed, uint64_t(i));
    render(set.images.data() + int64_t(i) * o.size * o.size, o.size, label, d, o.noise);
    set.labels[size_t(i)] = float(label);
  }
  return set;
}

}  // namespace massmap::nets
