#pragma once
// Max and average pooling, as Caffe: output size rounds up (CEIL), the last window must start inside the image
// or its left padding; average pooling divides by the window area clipped to the padded image (not to the image).
// Shapes: x (N, C, H, W), y (N, C, P, Q).
#include "kernels/gpu_launchers.h"
#include "kernels/placement.h"

namespace kernels {

enum class PoolMethod { max, avg };

struct PoolShape {
  int N = 0, C = 0, H = 0, W = 0;
  int P = 0, Q = 0;  // output size
  int R = 0, S = 0;  // window
  int stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  PoolMethod method = PoolMethod::max;
  Placement x, y;
};

// Dense shape with Caffe's CEIL output size. global = true sets the window to the whole image.
PoolShape pool_shape(int N, int C, int H, int W, PoolMethod method, int kernel, int stride, int pad,
                     bool global = false);
void check_pool_shape(const PoolShape& s);

namespace ref {
void pool_forward(const PoolShape& s, const float* x, float* y);
// Gather form: every input element sums the gradients of the windows it belongs to; max pooling recomputes each
// window's argmax (first maximum in row-major order, as Caffe) from x. Deterministic, no atomics.
void pool_backward(const PoolShape& s, const float* x, const float* dy, float* dx, bool accumulate);
}  // namespace ref

// Fast CPU path (kernels/cpu/pool_fast.cpp): separable window reductions, threaded over planes; backward matches the
// reference bit for bit, forward max too (avg forward up to rounding).
namespace cpu {
void pool_forward(const PoolShape& s, const float* x, float* y);
void pool_backward(const PoolShape& s, const float* x, const float* dy, float* dx, bool accumulate);
}  // namespace cpu

// GPU launchers (kernels/cuda/pool.cu), declared alike in kernels::cuda and kernels::simt (kernels/gpu_launchers.h).
// Same semantics as kernels::ref above (Caffe CEIL windows, average divisor clipped to the padded image, first maximum
// in row-major order); the shape is checked with check_pool_shape (std::invalid_argument). x, dx (N, C, H, W) placed as
// s.x; y, dy (N, C, P, Q) placed as s.y.
#define MASSMAP_POOL_GPU_LAUNCHERS                                                                                     \
  void pool_forward(const PoolShape& s, const float* x, float* y, GpuStream stream);                                   \
  /* Gather form: one thread per input element sums the gradients of the windows containing it (max pooling recomputes \
   * each window's argmax from x). Deterministic, no atomics. */                                                       \
  void pool_backward(const PoolShape& s, const float* x, const float* dy, float* dx, bool accumulate, GpuStream stream);
MASSMAP_GPU_LAUNCHERS(MASSMAP_POOL_GPU_LAUNCHERS)
#undef MASSMAP_POOL_GPU_LAUNCHERS

}  // namespace kernels
