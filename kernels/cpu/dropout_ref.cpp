// Inverted dropout reference.
//   keep[i] = uniform_at(seed, step, i) >= p,   i = ((n*C + c)*H + h)*W + w  (the logical index)
//   y  = x * keep / (1 - p)
//   dx (+)= dy * keep / (1 - p)
// The backward pass redraws the mask from (seed, step) instead of storing it. p == 0 copies.
// Shapes: x, y, dx, dy (N, C, H, W); dx placed as x, dy as y.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "base/philox.h"
#include "kernels/cpu/parallel_threshold.h"
#include "kernels/dropout.h"

namespace kernels::ref {
namespace {

void check_probability(float p) {
  if (!(p >= 0.f && p < 1.f)) {  // also rejects NaN
    throw std::invalid_argument("dropout: drop probability must be in [0, 1), got " + std::to_string(p));
  }
}

// out (+)= in * keep / (1 - p), with `in` placed as in_place and `out` as out_place.
void masked_scale(const DropoutShape& s, const Placement& in_place, const float* in, const Placement& out_place,
                  float* out, bool accumulate) {
  check_probability(s.p);
  const int64_t plane_size = int64_t(s.H) * s.W;
  const float keep_scale = 1.f / (1.f - s.p);
#pragma omp parallel for if (int64_t(s.N) * s.C * plane_size >= kParallelMinElements)
  for (int64_t nc = 0; nc < int64_t(s.N) * s.C; ++nc) {
    const int64_t n = nc / s.C, c = nc % s.C;
    const float* in_plane = in + in_place.plane(n, c);  // (H, W)
    float* out_plane = out + out_place.plane(n, c);     // (H, W)
    const uint64_t first_index = uint64_t(nc * plane_size);
    for (int64_t i = 0; i < plane_size; ++i) {
      float v = in_plane[i];
      if (s.p > 0.f) v = massmap::uniform_at(s.seed, s.step, first_index + i) >= s.p ? v * keep_scale : 0.f;
      out_plane[i] = accumulate ? out_plane[i] + v : v;
    }
  }
}

}  // namespace

void dropout_forward(const DropoutShape& s, const float* x, float* y) {
  masked_scale(s, s.x, x, s.y, y, false);
}

void dropout_backward(const DropoutShape& s, const float* dy, float* dx, bool accumulate) {
  masked_scale(s, s.y, dy, s.x, dx, accumulate);
}

}  // namespace kernels::ref
