#pragma once
// Fully connected layer: y[n,o] = b[o] + sum_i w[o,i] * x[n,i].
// Shapes: x (N, I), w (O, I) row-major (the same memory as a conv weight (O, C, R, S) with I = C*R*S), b (O),
// y (N, O). Rows of x and y may be strided (a row of a wider buffer).
#include <cstdint>

namespace kernels {

struct LinearShape {
  int N = 0, I = 0, O = 0;
  int64_t x_row_stride = 0;  // elements between rows of x (and dx), >= I
  int64_t y_row_stride = 0;  // elements between rows of y (and dy), >= O
};

inline LinearShape linear_shape(int N, int I, int O) {
  return {N, I, O, I, O};
}

namespace ref {
void linear_forward(const LinearShape& s, const float* x, const float* w, const float* b /* nullable */, float* y);
void linear_backward_data(const LinearShape& s, const float* dy, const float* w, float* dx, bool accumulate);
void linear_backward_weight(const LinearShape& s, const float* x, const float* dy, float* dw, bool accumulate);
}  // namespace ref

// Eigen GEMM (multi-threaded through OpenMP).
namespace cpu {
void linear_forward(const LinearShape& s, const float* x, const float* w, const float* b /* nullable */, float* y);
void linear_backward_data(const LinearShape& s, const float* dy, const float* w, float* dx, bool accumulate);
void linear_backward_weight(const LinearShape& s, const float* x, const float* dy, float* dw, bool accumulate);
}  // namespace cpu

}  // namespace kernels
