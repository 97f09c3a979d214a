#pragma once
// Batch normalisation over (N, C, H, W) activations, per channel c (the statistics run over n, h and w):
//   training:   mean_c = E[x], var_c = E[(x - mean_c)^2] (biased), inv_std_c = 1 / sqrt(var_c + eps)
//               y = gamma_c (x - mean_c) inv_std_c + beta_c
//               running_mean_c = (1 - momentum) running_mean_c + momentum mean_c
//               running_var_c  = (1 - momentum) running_var_c  + momentum var_c * M / (M - 1)   (M = N H W > 1)
//   inference:  y = gamma_c (x - running_mean_c) / sqrt(running_var_c + eps) + beta_c   (a per-channel affine map,
//               so a fully convolutional pass is exactly the classifier on every crop)
//   backward (of training, with xhat = (x - mean_c) inv_std_c):
//               dbeta_c  (+)= sum dy
//               dgamma_c (+)= sum dy xhat
//               dx (+)= gamma_c inv_std_c / M (M dy - dbeta_c - xhat dgamma_c)   (the batch sums, not accumulated)
//   relu (the fuse_batch_norm_relu pass): y = relu(the above), as the relu op writes it (x < 0 ? 0 : x), and
//               batch_norm_backward_relu takes that y and uses dy [y > 0] for dy, as relu's backward would hand it on;
//               bit-identical to batch_norm then relu on the same backend (no separate pass over y or dy)
// Shapes: x, y, dy, dx dense (N, C, H, W); gamma, beta, running_mean, running_var, saved_mean, saved_inv_std (C).
// Sums run in double on the reference.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/gpu_launchers.h"

namespace kernels {

struct BatchNormShape {
  int N = 0, C = 0, H = 0, W = 0;
  float eps = 1e-5f;
  float momentum = 0.1f;  // weight of this batch in the running statistics
  bool relu = false;      // forward: y = relu(batch_norm(x)) (backward: batch_norm_backward_relu)
  int64_t per_channel() const { return int64_t(N) * H * W; }
  int64_t plane(int n, int c) const { return (int64_t(n) * C + c) * H * W; }  // offset of image n's channel c
};

// "" when the shape is valid, else why not.
inline const char* batch_norm_shape_error(const BatchNormShape& s) {
  if (s.N < 0 || s.C < 0 || s.H < 0 || s.W < 0) return "negative size";
  if (!(s.eps > 0.f)) return "eps must be > 0";
  if (!(s.momentum >= 0.f && s.momentum <= 1.f)) return "momentum must lie in [0, 1]";
  return "";
}

// std::invalid_argument "<what>: <why>" when the shape is invalid: every implementation's first check.
inline void check_batch_norm_shape(const BatchNormShape& s, const char* what) {
  const std::string why = batch_norm_shape_error(s);
  if (!why.empty()) throw std::invalid_argument(std::string(what) + ": " + why);
}

// Channel c's outputs of a training pass besides y, from its batch mean, biased variance over m values and
// 1 / sqrt(var + eps): the saved statistics and the running ones moved towards the batch's (the variance unbiased).
inline void batch_norm_store_statistics(const BatchNormShape& s, int c, double mean, double var, double inv_std,
                                        int64_t m, float* running_mean, float* running_var, float* saved_mean,
                                        float* saved_inv_std) {
  saved_mean[c] = float(mean);
  saved_inv_std[c] = float(inv_std);
  const double unbiased = m > 1 ? var * double(m) / double(m - 1) : var;
  running_mean[c] = float((1.0 - s.momentum) * running_mean[c] + s.momentum * mean);
  running_var[c] = float((1.0 - s.momentum) * running_var[c] + s.momentum * unbiased);
}

namespace ref {
void batch_norm_forward_training(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                                 float* running_mean, float* running_var, float* y, float* saved_mean,
                                 float* saved_inv_std);
void batch_norm_forward_inference(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                                  const float* running_mean, const float* running_var, float* y);
void batch_norm_backward(const BatchNormShape& s, const float* x, const float* dy, const float* gamma,
                         const float* saved_mean, const float* saved_inv_std, float* dx, float* dgamma, float* dbeta,
                         bool accumulate);
// y: the forward's output with s.relu; dy is taken as dy [y > 0].
void batch_norm_backward_relu(const BatchNormShape& s, const float* x, const float* y, const float* dy,
                              const float* gamma, const float* saved_mean, const float* saved_inv_std, float* dx,
                              float* dgamma, float* dbeta, bool accumulate);
}  // namespace ref

// The CPU fast path (kernels/cpu/batch_norm_fast.cpp): the same semantics in float vectors across threads, within a
// few float roundings of the reference, and bit-identical for any thread count.
namespace cpu {
void batch_norm_forward_training(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                                 float* running_mean, float* running_var, float* y, float* saved_mean,
                                 float* saved_inv_std);
void batch_norm_forward_inference(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                                  const float* running_mean, const float* running_var, float* y);
void batch_norm_backward(const BatchNormShape& s, const float* x, const float* dy, const float* gamma,
                         const float* saved_mean, const float* saved_inv_std, float* dx, float* dgamma, float* dbeta,
                         bool accumulate);
// y: the forward's output with s.relu; dy is taken as dy [y > 0].
void batch_norm_backward_relu(const BatchNormShape& s, const float* x, const float* y, const float* dy,
                              const float* gamma, const float* saved_mean, const float* saved_inv_std, float* dx,
                              float* dgamma, float* dbeta, bool accumulate);
}  // namespace cpu

// GPU launchers (kernels/cuda/batch_norm.cu), declared alike in kernels::cuda and kernels::simt
// (kernels/gpu_launchers.h); the same semantics as kernels::ref above, all pointers device floats.
#define MASSMAP_BATCH_NORM_GPU_LAUNCHERS                                                                              \
  void batch_norm_forward_training(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,    \
                                   float* running_mean, float* running_var, float* y, float* saved_mean,              \
                                   float* saved_inv_std, GpuStream stream);                                           \
  void batch_norm_forward_inference(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,   \
                                    const float* running_mean, const float* running_var, float* y, GpuStream stream); \
  void batch_norm_backward(const BatchNormShape& s, const float* x, const float* dy, const float* gamma,              \
                           const float* saved_mean, const float* saved_inv_std, float* dx, float* dgamma,             \
                           float* dbeta, bool accumulate, GpuStream stream);                                 \
  void batch_norm_backward_relu(const BatchNormShape& s, const float* x, const float* y, const float* dy,             \
                                const float* gamma, const float* saved_mean, const float* saved_inv_std, float* dx,  \
                                float* dgamma, float* dbeta, bool accumulate, GpuStream stream);
MASSMAP_GPU_LAUNCHERS(MASSMAP_BATCH_NORM_GPU_LAUNCHERS)
#undef MASSMAP_BATCH_NORM_GPU_LAUNCHERS

}  // namespace kernels
