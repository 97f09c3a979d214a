// Fast CPU fully connected layer: each pass is one call of our GEMM (kernels/cpu/gemm.h) on the caller's buffers
// (no copies; the GEMM packs its own panels). Shape letters: N batch, I inputs, O outputs; rows of x / dx are
// x_row_stride apart, rows of y / dy y_row_stride apart.
//   forward          Y (N, O)  = X (N, I) * W^T (I, O) + b
//   backward data    dX (N, I) = dY (N, O) * W (O, I)           (+ dX when accumulating)
//   backward weight  dW (O, I) = dY^T (O, N) * X (N, I)         (+ dW when accumulating)
// The GEMM gives the same bits for any thread count, and so do these.
#include <stdexcept>
#include <string>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel_threshold.h"
#include "kernels/linear.h"

namespace kernels {
namespace cpu {

void linear_forward(const LinearShape& s, const float* x, const float* w, const float* b, float* y) {
  check_linear_shape(s);
  gemm({s.N, s.O, s.I, false, true, s.x_row_stride, s.I, s.y_row_stride, 1.f, 0.f}, x, w, y);
  if (!b) return;
#pragma omp parallel for schedule(static) if (int64_t(s.N) * s.O >= kParallelMinElements)
  for (int n = 0; n < s.N; ++n) {
    float* row = y + n * s.y_row_stride;  // (O)
    for (int o = 0; o < s.O; ++o) row[o] += b[o];
  }
}

void linear_backward_data(const LinearShape& s, const float* dy, const float* w, float* dx, bool accumulate) {
  check_linear_shape(s);
  gemm({s.N, s.I, s.O, false, false, s.y_row_stride, s.I, s.x_row_stride, 1.f, accumulate ? 1.f : 0.f}, dy, w, dx);
}

void linear_backward_weight(const LinearShape& s, const float* x, const float* dy, float* dw, bool accumulate) {
  check_linear_shape(s);
  gemm({s.O, s.I, s.N, true, false, s.y_row_stride, s.x_row_stride, s.I, 1.f, accumulate ? 1.f : 0.f}, dy, x, dw);
}

}  // namespace cpu
}  // namespace kernels
