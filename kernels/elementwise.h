#pragma once
// Per-element ops on (N, C, H, W) activations: bias add and its reduction, ReLU, elementwise add, copy.
#include "kernels/gpu_launchers.h"
#include "kernels/placement.h"

namespace kernels {

struct ActShape {
  int N = 0, C = 0, H = 0, W = 0;
  Placement x, y;  // input and output (gradients placed like them); x and y may be the same memory (in place)
};

inline ActShape act_shape(int N, int C, int H, int W) {
  Placement p = Placement::dense(C, H, W);
  return {N, C, H, W, p, p};
}

namespace ref {
// y[n,c,h,w] = x[n,c,h,w] + b[c]
void bias_forward(const ActShape& s, const float* x, const float* b, float* y);
// db[c] (+)= sum_{n,h,w} dy[n,c,h,w]   (dy placed as s.y)
void bias_backward(const ActShape& s, const float* dy, float* db, bool accumulate);
// y = max(x, 0)
void relu_forward(const ActShape& s, const float* x, float* y);
// dx (+)= dy * (y > 0): reads the output, so it works after an in-place forward
void relu_backward(const ActShape& s, const float* y, const float* dy, float* dx, bool accumulate);
// y = a + b; a placed as s.x, b as b_place, y as s.y
void add_forward(const ActShape& s, const float* a, const Placement& b_place, const float* b, float* y);
// y (+)= x: the gradient of add, and concat when producers cannot write in place
void copy(const ActShape& s, const float* x, float* y, bool accumulate);
}  // namespace ref

// GPU launchers (kernels/cuda/elementwise.cu), declared alike in kernels::cuda and kernels::simt
// (kernels/gpu_launchers.h). Same semantics and placements as kernels::ref above; pointers are device pointers. Shapes
// are checked (std::invalid_argument naming the kernel). Deterministic: every output element is written by one thread,
// and the bias gradient is a fixed-order tree per channel (no atomics).
#define MASSMAP_ELEMENTWISE_GPU_LAUNCHERS                                                                 \
  /* y[n,c,h,w] = x[n,c,h,w] + b[c]; x (s.x), y (s.y) may be the same memory. b: (C). */                  \
  void bias_forward(const ActShape& s, const float* x, const float* b, float* y, GpuStream stream);       \
  /* db[c] (+)= sum_{n,h,w} dy[n,c,h,w]; dy placed as s.y. db: (C). */                                    \
  void bias_backward(const ActShape& s, const float* dy, float* db, bool accumulate, GpuStream stream);   \
  /* y = max(x, 0) (NaN passes through). */                                                               \
  void relu_forward(const ActShape& s, const float* x, float* y, GpuStream stream);                       \
  /* dx (+)= dy * [y > 0]; y, dy placed as s.y, dx as s.x; dx may be dy (in place). */                    \
  void relu_backward(const ActShape& s, const float* y, const float* dy, float* dx, bool accumulate,      \
                     GpuStream stream);                                                                   \
  /* y = a + b; a placed as s.x, b as b_place, y as s.y. */                                               \
  void add_forward(const ActShape& s, const float* a, const Placement& b_place, const float* b, float* y, \
                   GpuStream stream);                                                                     \
  /* y (+)= x; x placed as s.x, y as s.y (concat by channel-offset writes, slices of a gradient). */      \
  void copy(const ActShape& s, const float* x, float* y, bool accumulate, GpuStream stream);
MASSMAP_GPU_LAUNCHERS(MASSMAP_ELEMENTWISE_GPU_LAUNCHERS)
#undef MASSMAP_ELEMENTWISE_GPU_LAUNCHERS

}  // namespace kernels
