// Reference bias add and its gradient on (N, C, H, W) activations: plain loops, channels across threads where the
// work is large (each channel's sum runs on one thread in a fixed order, so any thread count gives the same bits).
//   forward:   y[n,c,h,w] = x[n,c,h,w] + b[c]      (x placed as s.x, y as s.y; x == y is the in-place add)
//   backward:  db[c] (+)= sum_{n,h,w} dy[n,c,h,w]  (dy placed as s.y), summed in double
#include "kernels/cpu/parallel_threshold.h"
#include "kernels/elementwise.h"

namespace kernels {
namespace ref {

void bias_forward(const ActShape& s, const float* x, const float* b, float* y) {
  const int64_t plane_size = int64_t(s.H) * s.W;
#pragma omp parallel for schedule(static) if (int64_t(s.N) * s.C * plane_size >= kParallelMinElements)
  for (int64_t nc = 0; nc < int64_t(s.N) * s.C; ++nc) {
    const int64_t n = nc / s.C, c = nc % s.C;
    const float* x_nc = x + s.x.plane(n, c);  // (H, W)
    float* y_nc = y + s.y.plane(n, c);        // (H, W)
    for (int64_t i = 0; i < plane_size; ++i) y_nc[i] = x_nc[i] + b[c];
  }
}

void bias_backward(const ActShape& s, const float* dy, float* db, bool accumulate) {
  const int64_t plane_size = int64_t(s.H) * s.W;
#pragma omp parallel for schedule(static) if (int64_t(s.N) * s.C * plane_size >= kParallelMinElements)
  for (int c = 0; c < s.C; ++c) {
    double sum = 0;
    for (int n = 0; n < s.N; ++n) {
      const float* dy_nc = dy + s.y.plane(n, c);  // (H, W)
      for (int64_t i = 0; i < plane_size; ++i) sum += dy_nc[i];
    }
    db[c] = accumulate ? float(db[c] + sum) : float(sum);
  }
}

}  // namespace ref
}  // namespace kernels
