// Batch normalisation reference (kernels/batch_norm.h): plain loops over dense (N, C, H, W), channel by channel,
// sums in double.
#include <cmath>

#include "kernels/batch_norm.h"

namespace kernels::ref {
namespace {

// The relu op's forward, where the shape asks for it.
float activate(const BatchNormShape& s, float v) {
  return s.relu && v < 0.f ? 0.f : v;
}

// The backward with dy(k) the gradient reaching element k.
template <typename Dy>
void backward(const BatchNormShape& s, const float* x, Dy dy, const float* gamma, const float* saved_mean,
              const float* saved_inv_std, float* dx, float* dgamma, float* dbeta, bool accumulate) {
  const int64_t hw = int64_t(s.H) * s.W, m = s.per_channel();
  for (int c = 0; c < s.C; ++c) {
    const double mean = saved_mean[c], inv_std = saved_inv_std[c];
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < hw; ++i) {
        const int64_t k = s.plane(n, c) + i;
        sum_dy += dy(k);
        sum_dy_xhat += dy(k) * (x[k] - mean) * inv_std;
      }
    dbeta[c] = float(accumulate ? dbeta[c] + sum_dy : sum_dy);
    dgamma[c] = float(accumulate ? dgamma[c] + sum_dy_xhat : sum_dy_xhat);
    if (m == 0) continue;
    const double k_scale = double(gamma[c]) * inv_std / double(m);
    for (int n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < hw; ++i) {
        const int64_t k = s.plane(n, c) + i;
        const double xhat = (x[k] - mean) * inv_std;
        const double g = k_scale * (double(m) * dy(k) - sum_dy - xhat * sum_dy_xhat);
        dx[k] = float(accumulate ? dx[k] + g : g);
      }
  }
}

}  // namespace

void batch_norm_forward_training(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                                 float* running_mean, float* running_var, float* y, float* saved_mean,
                                 float* saved_inv_std) {
  check_batch_norm_shape(s, "batch_norm_forward_training");
  const int64_t hw = int64_t(s.H) * s.W, m = s.per_channel();
  if (m == 0) return;
  for (int c = 0; c < s.C; ++c) {
    double sum = 0;
    for (int n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < hw; ++i) sum += x[s.plane(n, c) + i];
    const double mean = sum / double(m);
    double squares = 0;
    for (int n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < hw; ++i) {
        const double d = x[s.plane(n, c) + i] - mean;
        squares += d * d;
      }
    const double var = squares / double(m);
    const double inv_std = 1.0 / std::sqrt(var + double(s.eps));
    for (int n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < hw; ++i) {
        const int64_t k = s.plane(n, c) + i;
        y[k] = activate(s, float(double(gamma[c]) * (x[k] - mean) * inv_std + double(beta[c])));
      }
    batch_norm_store_statistics(s, c, mean, var, inv_std, m, running_mean, running_var, saved_mean, saved_inv_std);
  }
}

void batch_norm_forward_inference(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                                  const float* running_mean, const float* running_var, float* y) {
  check_batch_norm_shape(s, "batch_norm_forward_inference");
  const int64_t hw = int64_t(s.H) * s.W;
  for (int c = 0; c < s.C; ++c) {
    const double scale = double(gamma[c]) / std::sqrt(double(running_var[c]) + double(s.eps));
    const double shift = double(beta[c]) - scale * double(running_mean[c]);
    for (int n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < hw; ++i) {
        const int64_t k = s.plane(n, c) + i;
        y[k] = activate(s, float(scale * x[k] + shift));
      }
  }
}

void batch_norm_backward(const BatchNormShape& s, const float* x, const float* dy, const float* gamma,
                         const float* saved_mean, const float* saved_inv_std, float* dx, float* dgamma, float* dbeta,
                         bool accumulate) {
  check_batch_norm_shape(s, "batch_norm_backward");
  backward(
      s, x, [&](int64_t k) { return dy[k]; }, gamma, saved_mean, saved_inv_std, dx, dgamma, dbeta, accumulate);
}

void batch_norm_backward_relu(const BatchNormShape& s, const float* x, const float* y, const float* dy,
                              const float* gamma, const float* saved_mean, const float* saved_inv_std, float* dx,
                              float* dgamma, float* dbeta, bool accumulate) {
  check_batch_norm_shape(s, "batch_norm_backward_relu");
  backward(
      s, x, [&](int64_t k) { return y[k] > 0.f ? dy[k] : 0.f; }, gamma, saved_mean, saved_inv_std, dx, dgamma, dbeta,
      accumulate);
}

}  // namespace kernels::ref
