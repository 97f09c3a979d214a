#pragma once
// One SGD step on a parameter, in Caffe's order:
//   g' = g + decay * w          (L2 regularisation; decay = weight_decay * decay_mult)
//   h  = momentum * h + lr * g' (lr = rate of the policy at this iteration * lr_mult)
//   w  = w - h
// Shapes: w, g, h (count).
#include <cstdint>

#include "kernels/gpu_launchers.h"

namespace kernels {

struct SgdStep {
  int64_t count = 0;
  float lr = 0.f, momentum = 0.f, decay = 0.f;
};

namespace ref {
void sgd_update(const SgdStep& s, float* w, const float* g, float* history);
}  // namespace ref

// GPU launchers (kernels/cuda/sgd.cu), declared alike in kernels::cuda and kernels::simt (kernels/gpu_launchers.h). One
// fused pass in Caffe's order, as kernels::ref::sgd_update above: g' = g + decay * w; h = momentum * h + lr * g'; w -=
// h. w, g, history: (count) device floats. Throws std::invalid_argument for a negative count.
#define MASSMAP_SGD_GPU_LAUNCHERS \
  void sgd_update(const SgdStep& s, float* w, const float* g, float* history, GpuStream stream);
MASSMAP_GPU_LAUNCHERS(MASSMAP_SGD_GPU_LAUNCHERS)
#undef MASSMAP_SGD_GPU_LAUNCHERS

}  // namespace kernels
