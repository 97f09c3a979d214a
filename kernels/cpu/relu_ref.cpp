// ReLU reference.
//   forward:  y = max(x, 0)
//   backward: dx (+)= dy * [y > 0]   (reads y, not x, so it also works after an in-place forward)
// Shapes: x, y, dx, dy (N, C, H, W); dx placed as x, dy as y.
#include <cstdint>

#include "kernels/cpu/parallel_threshold.h"
#include "kernels/elementwise.h"

namespace kernels::ref {

void relu_forward(const ActShape& s, const float* x, float* y) {
  const int64_t plane_size = int64_t(s.H) * s.W;
#pragma omp parallel for if (int64_t(s.N) * s.C * plane_size >= kParallelMinElements)
  for (int64_t nc = 0; nc < int64_t(s.N) * s.C; ++nc) {
    const int64_t n = nc / s.C, c = nc % s.C;
    const float* x_plane = x + s.x.plane(n, c);  // (H, W)
    float* y_plane = y + s.y.plane(n, c);        // (H, W)
    // `x < 0 ? 0 : x` rather than `x > 0 ? x : 0`: a NaN passes through instead of being hidden.
    for (int64_t i = 0; i < plane_size; ++i) y_plane[i] = x_plane[i] < 0.f ? 0.f : x_plane[i];
  }
}

void relu_backward(const ActShape& s, const float* y, const float* dy, float* dx, bool accumulate) {
  const int64_t plane_size = int64_t(s.H) * s.W;
#pragma omp parallel for if (int64_t(s.N) * s.C * plane_size >= kParallelMinElements)
  for (int64_t nc = 0; nc < int64_t(s.N) * s.C; ++nc) {
    const int64_t n = nc / s.C, c = nc % s.C;
    const float* y_plane = y + s.y.plane(n, c);    // (H, W)
    const float* dy_plane = dy + s.y.plane(n, c);  // (H, W)
    float* dx_plane = dx + s.x.plane(n, c);        // (H, W)
    // dy is read whatever y is, and each case has its own loop: a load under the condition kept the compiler from
    // vectorising, and the branch on y's sign, taken half the time at random, cost 10x the forward pass.
    if (accumulate) {
      for (int64_t i = 0; i < plane_size; ++i) {
        const float g = dy_plane[i];
        dx_plane[i] += y_plane[i] > 0.f ? g : 0.f;
      }
    } else {
      for (int64_t i = 0; i < plane_size; ++i) {
        const float g = dy_plane[i];
        dx_plane[i] = y_plane[i] > 0.f ? g : 0.f;
      }
    }
  }
}

}  // namespace kernels::ref
