#pragma once
// 2-D convolution (cross-correlation, as Caffe): y[n,k,p,q] = b[k] + sum_{c,r,s} w[k,c,r,s] * x[n, g*C/G + c,
// p*stride_h - pad_h + r, q*stride_w - pad_w + s], with g = k / (K/G) the group of output channel k.
// Shapes: x (N, C, H, W), w (K, C/groups, R, S), b (K), y (N, K, P, Q).
#include <cstddef>

#include "kernels/gpu_launchers.h"  // GpuKernelVersion: convolution runs as an implicit GEMM on the GPU
#include "kernels/placement.h"

namespace kernels {

struct ConvShape {
  int N = 0, C = 0, H = 0, W = 0;  // input
  int K = 0, R = 0, S = 0;         // output channels, filter height and width
  int P = 0, Q = 0;                // output height and width
  int stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, groups = 1;
  Placement x, y;  // placements of x and y; their gradients dx and dy are placed the same way
};

// What the GPU forward kernel does after the sum, in registers, before the one store of y (the fusion pass's
// conv + bias + ReLU): y = relu(b + sum) instead of a separate ReLU pass over y.
struct ConvEpilogue {
  bool relu = false;
};

// A dense shape with P = (H + 2 pad - R) / stride + 1 (floor, as Caffe's convolution).
ConvShape conv_shape(int N, int C, int H, int W, int K, int R, int S, int stride, int pad, int groups = 1);
// Throws std::invalid_argument naming the inconsistency (groups not dividing C or K, P inconsistent, ...).
void check_conv_shape(const ConvShape& s);

// Plain loops: the ground truth. Gradient outputs overwrite (accumulate = false) or add (accumulate = true).
namespace ref {
void conv_forward(const ConvShape& s, const float* x, const float* w, const float* b /* nullable */, float* y);
void conv_backward_data(const ConvShape& s, const float* dy, const float* w, float* dx, bool accumulate);
void conv_backward_filter(const ConvShape& s, const float* x, const float* dy, float* dw, bool accumulate);
}  // namespace ref

// Fast CPU path: im2col / col2im + Eigen GEMM, OpenMP over the batch and groups.
namespace cpu {
void conv_forward(const ConvShape& s, const float* x, const float* w, const float* b /* nullable */, float* y);
// The same with the epilogue applied to each block while it is in cache; bit-identical to conv_forward followed
// by ReLU.
void conv_forward(const ConvShape& s, const float* x, const float* w, const float* b /* nullable */, float* y,
                  ConvEpilogue epilogue);
void conv_backward_data(const ConvShape& s, const float* dy, const float* w, float* dx, bool accumulate);
void conv_backward_filter(const ConvShape& s, const float* x, const float* dy, float* dw, bool accumulate);
}  // namespace cpu

// GPU launchers (kernels/cuda/conv_forward.cu, conv_backward_data.cu and conv_backward_filter.cu), declared alike in
// kernels::cuda and kernels::simt (kernels/gpu_launchers.h). Same semantics, placements and groups as kernels::ref
// above (one launch for all groups); pointers are device pointers. Shapes are checked with check_conv_shape
// (std::invalid_argument naming the kernel). No atomics: two runs give identical bits. `v` picks the kernel version
// (see GpuKernelVersion): naive (direct loops, one thread per output), tiled implicit GEMM, register-blocked implicit
// GEMM; `best` also uses the 1x1 path (a batched GEMM) and the single-channel conv1 path where they apply.
#define MASSMAP_CONV_GPU_LAUNCHERS                                                                                    \
  /* y = b + conv(x, w), then ReLU when epilogue.relu (bias + ReLU fused into the store). b nullable. */              \
  void conv_forward(const ConvShape& s, const float* x, const float* w, const float* b, float* y, GpuStream stream,   \
                    ConvEpilogue epilogue = {}, GpuKernelVersion v = GpuKernelVersion::best);                         \
  /* dx (+)= the transposed convolution of dy with w. */                                                              \
  void conv_backward_data(const ConvShape& s, const float* dy, const float* w, float* dx, bool accumulate,            \
                          GpuStream stream, GpuKernelVersion v = GpuKernelVersion::best);                             \
  /* dw (K, C/G, R, S) (+)= sum over n, p, q of dy * x. Each block owns a tile of dw and sums all of N*P*Q itself. */ \
  void conv_backward_filter(const ConvShape& s, const float* x, const float* dy, float* dw, bool accumulate,          \
                            GpuStream stream, GpuKernelVersion v = GpuKernelVersion::best);                           \
  /* The same with a workspace, which lets `best` split the N*P*Q sum across blocks when dw has few tiles (split-K:   \
   * partial sums into the workspace, then a fixed-order reduction, still deterministic). workspace may be null. */   \
  void conv_backward_filter(const ConvShape& s, const float* x, const float* dy, float* dw, bool accumulate,          \
                            float* workspace, size_t workspace_floats, GpuStream stream,                              \
                            GpuKernelVersion v = GpuKernelVersion::best);                                             \
  /* Floats of workspace conv_backward_filter's `best` uses for this shape (0: it would not split). */                \
  size_t conv_backward_filter_workspace_floats(const ConvShape& s);
MASSMAP_GPU_LAUNCHERS(MASSMAP_CONV_GPU_LAUNCHERS)
#undef MASSMAP_CONV_GPU_LAUNCHERS

}  // namespace kernels
