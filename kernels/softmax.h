#pragma once
// Softmax over channels at every location, and the softmax cross-entropy loss.
//   prob[n,c,h,w] = exp(x[n,c,h,w] - m) / sum_c' exp(x[n,c',h,w] - m),   m = max_c x[n,c,h,w]
//   loss = -1/V * sum over valid locations of log prob[n, label[n,h,w], h, w]
// V counts the locations whose label is not ignore_label (N for a classifier, N*H*W for a map).
// Shapes: x, prob (N, C, H, W); labels (N, H, W) holding class ids as floats.
#include "kernels/gpu_launchers.h"
#include "kernels/placement.h"

namespace kernels {

struct SoftmaxShape {
  int N = 0, C = 0, H = 1, W = 1;
  Placement x, y;  // logits (and their gradient), probabilities
};

struct SoftmaxLossShape {
  SoftmaxShape softmax;
  int ignore_label = -1;  // locations with this label add nothing to the loss
};

namespace ref {
void softmax_forward(const SoftmaxShape& s, const float* x, float* prob);
// dx (+)= prob * (dprob - sum_c dprob * prob)
void softmax_backward(const SoftmaxShape& s, const float* prob, const float* dprob, float* dx, bool accumulate);
// Writes prob and returns the mean loss. Throws std::out_of_range naming the location for a label outside [0, C).
float softmax_loss_forward(const SoftmaxLossShape& s, const float* x, const float* labels, float* prob);
// dx (+)= loss_grad * (prob - onehot(label)) / V ; zero at ignored locations.
void softmax_loss_backward(const SoftmaxLossShape& s, const float* prob, const float* labels, float loss_grad,
                           float* dx, bool accumulate);
}  // namespace ref

// GPU launchers (kernels/cuda/softmax.cu), declared alike in kernels::cuda and kernels::simt (kernels/gpu_launchers.h).
// Same semantics as kernels::ref above, computed in float (the loss is summed in double). x, dx (N, C, H, W) placed as
// s.x; prob, dprob placed as s.y; labels (N, H, W) dense, class ids as floats. Deterministic: fixed-order warp and
// block trees, no atomics. Throws std::invalid_argument for a bad shape.
#define MASSMAP_SOFTMAX_GPU_LAUNCHERS                                                                                  \
  void softmax_forward(const SoftmaxShape& s, const float* x, float* prob, GpuStream stream);                          \
  /* dx (+)= prob * (dprob - sum_c dprob * prob) */                                                                    \
  void softmax_backward(const SoftmaxShape& s, const float* prob, const float* dprob, float* dx, bool accumulate,      \
                        GpuStream stream);                                                                             \
  /* Writes prob and the mean loss over the V locations whose label is not ignore_label into *loss (one device float;  \
   * 0 when V == 0). Unlike the reference, which throws, a label that is neither ignore_label nor a class id in [0, C) \
   * cannot be reported from the device: it makes the loss NaN, which the engine's NaN check reports. */               \
  void softmax_loss_forward(const SoftmaxLossShape& s, const float* x, const float* labels, float* prob, float* loss,  \
                            GpuStream stream);                                                                         \
  /* dx (+)= loss_grad * (prob - onehot(label)) / V, 0 at ignored locations; V is counted on the device. A location    \
   * with an invalid label (counted in V) gets NaN gradients. */                                                       \
  void softmax_loss_backward(const SoftmaxLossShape& s, const float* prob, const float* labels, float loss_grad,       \
                             float* dx, bool accumulate, GpuStream stream);
MASSMAP_GPU_LAUNCHERS(MASSMAP_SOFTMAX_GPU_LAUNCHERS)
#undef MASSMAP_SOFTMAX_GPU_LAUNCHERS

}  // namespace kernels
