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

// Throws std::invalid_argument naming the sizes unless they are positive and the row strides hold a row.
void check_linear_shape(const LinearShape& s);

// Which hand-written GPU kernel runs a GEMM-shaped op (GEMM, linear, convolution as implicit GEMM), in the order a
// learner meets them: one thread per output; shared-memory tiles; register blocking with 16-byte loads. `best`
// lets the launcher pick (the register-blocked kernel, or a special path such as conv's 1x1 or single-channel).
enum class GpuKernelVersion { naive, tiled, register_blocked, best };

// A general row-major SGEMM: C (M, N) = alpha * op(A) (M, K) * op(B) (K, N) + beta * C. A is stored (M, K) with
// rows lda apart, or (K, M) when trans_a; B is stored (K, N) with rows ldb apart, or (N, K) when trans_b. C's rows
// are ldc apart. beta == 0 never reads C (it may hold NaN).
struct GemmShape {
  int M = 0, N = 0, K = 0;
  bool trans_a = false, trans_b = false;
  int64_t lda = 0, ldb = 0, ldc = 0;
  float alpha = 1.f, beta = 0.f;
};

// A dense GEMM: lda, ldb, ldc as tight as the transposes allow.
inline GemmShape gemm_shape(int M, int N, int K, bool trans_a = false, bool trans_b = false) {
  return {M, N, K, trans_a, trans_b, trans_a ? M : K, trans_b ? K : N, N, 1.f, 0.f};
}

namespace ref {
void linear_forward(const LinearShape& s, const float* x, const float* w, const float* b /* nullable */, float* y);
void linear_backward_data(const LinearShape& s, const float* dy, const float* w, float* dx, bool accumulate);
void linear_backward_weight(const LinearShape& s, const float* x, const float* dy, float* dw, bool accumulate);
}  // namespace ref

// Our CPU GEMM (kernels/cpu/gemm.h): micro-kernels per instruction set chosen at run time, OpenMP threads.
namespace cpu {
void linear_forward(const LinearShape& s, const float* x, const float* w, const float* b /* nullable */, float* y);
void linear_backward_data(const LinearShape& s, const float* dy, const float* w, float* dx, bool accumulate);
void linear_backward_weight(const LinearShape& s, const float* x, const float* dy, float* dw, bool accumulate);
}  // namespace cpu

}  // namespace kernels
