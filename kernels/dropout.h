#pragma once
// Inverted dropout: y = x * keep / (1 - p), keep = uniform(seed, step, i) >= p, where i is the element's logical
// index ((n*C + c)*H + h)*W + w. The uniform comes from a counter-based generator (Philox 4x32-10), so every
// device, thread layout and the backward pass draw the same mask from (seed, step) without storing it.
#include <cstdint>

#include "kernels/gpu_launchers.h"
#include "kernels/placement.h"

namespace kernels {

struct DropoutShape {
  int N = 0, C = 0, H = 0, W = 0;
  float p = 0.5f;     // drop probability
  uint64_t seed = 0;  // per node
  uint64_t step = 0;  // training iteration: a new mask every step
  Placement x, y;
};

namespace ref {
void dropout_forward(const DropoutShape& s, const float* x, float* y);
void dropout_backward(const DropoutShape& s, const float* dy, float* dx, bool accumulate);
}  // namespace ref

// GPU launchers (kernels/cuda/dropout.cu), declared alike in kernels::cuda and kernels::simt (kernels/gpu_launchers.h).
// Same semantics as kernels::ref above: the mask comes from base/philox.h at the element's logical index, so for the
// same (seed, step) it is the CPU's mask bit for bit, and the backward pass redraws it. x, dx placed as s.x; y, dy as
// s.y. Throws std::invalid_argument for a bad shape or p outside [0, 1).
#define MASSMAP_DROPOUT_GPU_LAUNCHERS                                                      \
  void dropout_forward(const DropoutShape& s, const float* x, float* y, GpuStream stream); \
  void dropout_backward(const DropoutShape& s, const float* dy, float* dx, bool accumulate, GpuStream stream);
MASSMAP_GPU_LAUNCHERS(MASSMAP_DROPOUT_GPU_LAUNCHERS)
#undef MASSMAP_DROPOUT_GPU_LAUNCHERS

}  // namespace kernels
