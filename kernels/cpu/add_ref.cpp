// Elementwise add and copy references.
//   add_forward: y = a + b      (a placed as s.x, b as b_place, y as s.y)
//   copy:        y (+)= x       (the gradient of add for each input; concat when a producer cannot write in place)
// Shapes: a, b, x, y (N, C, H, W).
#include <cstdint>

#include "kernels/cpu/parallel_threshold.h"
#include "kernels/elementwise.h"

namespace kernels::ref {

void add_forward(const ActShape& s, const float* a, const Placement& b_place, const float* b, float* y) {
  const int64_t plane_size = int64_t(s.H) * s.W;
#pragma omp parallel for if (int64_t(s.N) * s.C * plane_size >= kParallelMinElements)
  for (int64_t nc = 0; nc < int64_t(s.N) * s.C; ++nc) {
    const int64_t n = nc / s.C, c = nc % s.C;
    const float* a_plane = a + s.x.plane(n, c);      // (H, W)
    const float* b_plane = b + b_place.plane(n, c);  // (H, W)
    float* y_plane = y + s.y.plane(n, c);            // (H, W)
    for (int64_t i = 0; i < plane_size; ++i) y_plane[i] = a_plane[i] + b_plane[i];
  }
}

void copy(const ActShape& s, const float* x, float* y, bool accumulate) {
  const int64_t plane_size = int64_t(s.H) * s.W;
#pragma omp parallel for if (int64_t(s.N) * s.C * plane_size >= kParallelMinElements)
  for (int64_t nc = 0; nc < int64_t(s.N) * s.C; ++nc) {
    const int64_t n = nc / s.C, c = nc % s.C;
    const float* x_plane = x + s.x.plane(n, c);  // (H, W)
    float* y_plane = y + s.y.plane(n, c);        // (H, W)
    for (int64_t i = 0; i < plane_size; ++i) y_plane[i] = accumulate ? y_plane[i] + x_plane[i] : x_plane[i];
  }
}

}  // namespace kernels::ref
