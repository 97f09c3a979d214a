#pragma once
// Softmax over channels at every location, and the softmax cross-entropy loss.
//   prob[n,c,h,w] = exp(x[n,c,h,w] - m) / sum_c' exp(x[n,c',h,w] - m),   m = max_c x[n,c,h,w]
//   loss = -1/V * sum over valid locations of log prob[n, label[n,h,w], h, w]
// V counts the locations whose label is not ignore_label (N for a classifier, N*H*W for a map).
// Shapes: x, prob (N, C, H, W); labels (N, H, W) holding class ids as floats.
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

}  // namespace kernels
