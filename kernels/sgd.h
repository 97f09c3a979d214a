#pragma once
// One SGD step on a parameter, in Caffe's order:
//   g' = g + decay * w          (L2 regularisation; decay = weight_decay * decay_mult)
//   h  = momentum * h + lr * g' (lr = rate of the policy at this iteration * lr_mult)
//   w  = w - h
// Shapes: w, g, h (count).
#include <cstdint>

namespace kernels {

struct SgdStep {
  int64_t count = 0;
  float lr = 0.f, momentum = 0.f, decay = 0.f;
};

namespace ref {
void sgd_update(const SgdStep& s, float* w, const float* g, float* history);
}  // namespace ref

}  // namespace kernels
