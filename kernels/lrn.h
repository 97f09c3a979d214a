#pragma once
// Local response normalisation across channels (Caffe's ACROSS_CHANNELS):
//   scale[n,c,h,w] = k + alpha/size * sum_{c' = c - (size-1)/2 .. c + size/2} x[n,c',h,w]^2
//   y = x * scale^-beta
// Backward (closed form):
//   dx[c] = dy[c] * scale[c]^-beta - 2 alpha beta / size * x[c] * sum_{c' : c in window(c')} dy[c'] y[c'] / scale[c']
// Shapes: x, y (N, C, H, W).
#include "kernels/gpu_launchers.h"
#include "kernels/placement.h"

namespace kernels {

struct LrnShape {
  int N = 0, C = 0, H = 0, W = 0;
  int size = 5;
  float alpha = 1e-4f, beta = 0.75f, k = 1.f;
  Placement x, y;
};

namespace ref {
void lrn_forward(const LrnShape& s, const float* x, float* y);
// Gather form; the scale is recomputed from x.
void lrn_backward(const LrnShape& s, const float* x, const float* y, const float* dy, float* dx, bool accumulate);
}  // namespace ref

// Fast CPU path (kernels/cpu/lrn_fast.cpp): vectorised per instruction set (chosen at run time, kernels/cpu/cpu_isa.h),
// threaded over (image, run of pixels); bit-identical for any thread count within one instruction set.
namespace cpu {
void lrn_forward(const LrnShape& s, const float* x, float* y);
void lrn_backward(const LrnShape& s, const float* x, const float* y, const float* dy, float* dx, bool accumulate);
}  // namespace cpu

// GPU launchers (kernels/cuda/lrn.cu), declared alike in kernels::cuda and kernels::simt (kernels/gpu_launchers.h).
// Same semantics as kernels::ref above (across channels, Caffe's window); computed in float where the reference uses
// double. x, dx (N, C, H, W) placed as s.x; y, dy placed as s.y. Throws std::invalid_argument for a bad shape or size <
// 1.
#define MASSMAP_LRN_GPU_LAUNCHERS                                                                                   \
  void lrn_forward(const LrnShape& s, const float* x, float* y, GpuStream stream);                                  \
  /* Gather form: one thread per element of dx recomputes the scales it needs from x. Deterministic, no atomics. */ \
  void lrn_backward(const LrnShape& s, const float* x, const float* y, const float* dy, float* dx, bool accumulate, \
                    GpuStream stream);
MASSMAP_GPU_LAUNCHERS(MASSMAP_LRN_GPU_LAUNCHERS)
#undef MASSMAP_LRN_GPU_LAUNCHERS

}  // namespace kernels
