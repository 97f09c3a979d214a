// SGD with momentum and L2 weight decay, in Caffe's order, elementwise over `count` entries:
//   g' = g + decay * w
//   h  = momentum * h + lr * g'
//   w  = w - h
// Shapes: w, g, history (count).
#include <cstdint>

#include "kernels/cpu/parallel_threshold.h"
#include "kernels/sgd.h"

namespace kernels::ref {

void sgd_update(const SgdStep& s, float* w, const float* g, float* history) {
#pragma omp parallel for if (s.count >= kParallelMinElements)
  for (int64_t i = 0; i < s.count; ++i) {
    const float regularised = g[i] + s.decay * w[i];
    history[i] = s.momentum * history[i] + s.lr * regularised;
    w[i] -= history[i];
  }
}

}  // namespace kernels::ref
