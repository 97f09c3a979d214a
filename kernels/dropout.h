#pragma once
// Inverted dropout: y = x * keep / (1 - p), keep = uniform(seed, step, i) >= p, where i is the element's logical
// index ((n*C + c)*H + h)*W + w. The uniform comes from a counter-based generator (Philox 4x32-10), so every
// device, thread layout and the backward pass draw the same mask from (seed, step) without storing it.
#include <cstdint>

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

}  // namespace kernels
