// Reference fully connected layer: plain loops, the ground truth for the fast path.
//
// Shape letters: N batch, I inputs, O outputs. Rows of x / dx are x_row_stride apart, rows of y / dy y_row_stride.
//   forward:          y[n,o]  = b[o] + sum_i w[o,i] * x[n,i]
//   backward data:    dx[n,i] = sum_o dy[n,o] * w[o,i]
//   backward weight:  dw[o,i] = sum_n dy[n,o] * x[n,i]
// (The bias gradient db[o] = sum_n dy[n,o] is bias_backward with H = W = 1.) Sums run in double.
#include <stdexcept>
#include <string>

#include "kernels/linear.h"

namespace kernels {

void check_linear_shape(const LinearShape& s) {
  if (s.N < 1 || s.I < 1 || s.O < 1 || s.x_row_stride < s.I || s.y_row_stride < s.O)
    throw std::invalid_argument("linear shape: N " + std::to_string(s.N) + ", I " + std::to_string(s.I) + ", O " +
                                std::to_string(s.O) + ", x_row_stride " + std::to_string(s.x_row_stride) +
                                ", y_row_stride " + std::to_string(s.y_row_stride) +
                                " (sizes must be positive and row strides >= I and O)");
}

namespace ref {

void linear_forward(const LinearShape& s, const float* x, const float* w, const float* b, float* y) {
  check_linear_shape(s);
  for (int n = 0; n < s.N; ++n) {
    const float* x_n = x + n * s.x_row_stride;  // (I)
    for (int o = 0; o < s.O; ++o) {
      const float* w_o = w + int64_t(o) * s.I;  // (I)
      double sum = b ? b[o] : 0.0;
      for (int i = 0; i < s.I; ++i) sum += double(w_o[i]) * x_n[i];
      y[n * s.y_row_stride + o] = float(sum);
    }
  }
}

void linear_backward_data(const LinearShape& s, const float* dy, const float* w, float* dx, bool accumulate) {
  check_linear_shape(s);
  for (int n = 0; n < s.N; ++n) {
    const float* dy_n = dy + n * s.y_row_stride;  // (O)
    for (int i = 0; i < s.I; ++i) {
      double sum = 0;
      for (int o = 0; o < s.O; ++o) sum += double(dy_n[o]) * w[int64_t(o) * s.I + i];
      float& out = dx[n * s.x_row_stride + i];
      out = accumulate ? float(out + sum) : float(sum);
    }
  }
}

void linear_backward_weight(const LinearShape& s, const float* x, const float* dy, float* dw, bool accumulate) {
  check_linear_shape(s);
  for (int o = 0; o < s.O; ++o) {
    for (int i = 0; i < s.I; ++i) {
      double sum = 0;
      for (int n = 0; n < s.N; ++n) sum += double(dy[n * s.y_row_stride + o]) * x[n * s.x_row_stride + i];
      float& out = dw[int64_t(o) * s.I + i];  // dw (O, I)
      out = accumulate ? float(out + sum) : float(sum);
    }
  }
}

}  // namespace ref
}  // namespace kernels
