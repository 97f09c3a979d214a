// Fast CPU batch normalisation (kernels/batch_norm.h): the reference's formulas with the per-element work in float
// vectors and the channels spread over OpenMP threads.
//
// The reference sums and normalises one value at a time in double, on one thread: a quarter of a mapnet_bn
// training step. Here each sum runs in kLanes float lanes that the compiler keeps in vector registers, the lanes
// folded into a double every kChunk values (so no lane sums more than kChunk / kLanes floats), and the element-wise
// passes run in float. A channel is one thread's work from start to end in a fixed order, so the result is
// bit-identical for any thread count; it differs from the reference by a few float roundings (tests/batch_norm_test).
#include <algorithm>
#include <cmath>

#include "kernels/batch_norm.h"
#include "kernels/cpu/parallel_threshold.h"

namespace kernels::cpu {
namespace {

constexpr int kLanes = 16;
constexpr int64_t kChunk = 1024;

// Sum over i < n of term(i), in float lanes folded into a double every kChunk terms.
template <typename Term>
double lane_sum(int64_t n, Term term) {
  double total = 0;
  for (int64_t start = 0; start < n; start += kChunk) {
    const int64_t end = std::min(n, start + kChunk);
    float lanes[kLanes] = {};
    int64_t i = start;
    for (; i + kLanes <= end; i += kLanes)
      for (int l = 0; l < kLanes; ++l) lanes[l] += term(i + l);
    for (; i < end; ++i) lanes[0] += term(i);
    double chunk = 0;
    for (int l = 0; l < kLanes; ++l) chunk += lanes[l];
    total += chunk;
  }
  return total;
}

// lane_sum of two terms in one pass over the data: each sum adds its terms in lane_sum's order, so both are
// bit-identical to two separate lane_sums (the backward reads dy once instead of twice).
template <typename TermA, typename TermB>
void lane_sum_pair(int64_t n, TermA term_a, TermB term_b, double& total_a, double& total_b) {
  for (int64_t start = 0; start < n; start += kChunk) {
    const int64_t end = std::min(n, start + kChunk);
    float lanes_a[kLanes] = {}, lanes_b[kLanes] = {};
    int64_t i = start;
    for (; i + kLanes <= end; i += kLanes)
      for (int l = 0; l < kLanes; ++l) {
        lanes_a[l] += term_a(i + l);
        lanes_b[l] += term_b(i + l);
      }
    for (; i < end; ++i) {
      lanes_a[0] += term_a(i);
      lanes_b[0] += term_b(i);
    }
    double chunk_a = 0, chunk_b = 0;
    for (int l = 0; l < kLanes; ++l) {
      chunk_a += lanes_a[l];
      chunk_b += lanes_b[l];
    }
    total_a += chunk_a;
    total_b += chunk_b;
  }
}

// One plane: y = (x - mean) scale + shift, then the relu op's x < 0 ? 0 : x when asked (a loop each, so both
// vectorise). x, y: (n).
void normalize(int64_t n, const float* x, float mean, float scale, float shift, bool relu, float* y) {
  if (relu) {
    for (int64_t i = 0; i < n; ++i) {
      const float v = (x[i] - mean) * scale + shift;
      y[i] = v < 0.f ? 0.f : v;
    }
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * scale + shift;
  }
}

// dy[i], or with Relu dy[i] where y[i] > 0 and 0 elsewhere: dy is loaded whatever y is (a load under the condition
// keeps the compiler from vectorising: 4x slower), as the relu op's backward does.
template <bool Relu>
float masked(const float* y, const float* dy, int64_t i) {
  const float d = dy[i];
  if constexpr (Relu) return y[i] > 0.f ? d : 0.f;
  return d;
}

// The backward; Relu: dy counts where y > 0 only (y is null otherwise).
template <bool Relu>
void backward(const BatchNormShape& s, const float* x, const float* y, const float* dy, const float* gamma,
              const float* saved_mean, const float* saved_inv_std, float* dx, float* dgamma, float* dbeta,
              bool accumulate) {
  const int64_t hw = int64_t(s.H) * s.W, m = s.per_channel();
#pragma omp parallel for schedule(static) if (m * s.C >= kParallelMinElements)
  for (int c = 0; c < s.C; ++c) {
    const float mean = saved_mean[c], inv_std = saved_inv_std[c];
    double sum_dy = 0, sum_dy_centred = 0;  // sum dy, sum dy (x - mean)
    for (int n = 0; n < s.N; ++n) {
      const float* xp = x + s.plane(n, c);                   // (H, W)
      const float* dyp = dy + s.plane(n, c);                 // (H, W)
      const float* yp = Relu ? y + s.plane(n, c) : nullptr;  // (H, W)
      auto g = [&](int64_t i) { return masked<Relu>(yp, dyp, i); };
      double plane_dy = 0, plane_dy_centred = 0;
      lane_sum_pair(
          hw, g, [&](int64_t i) { return g(i) * (xp[i] - mean); }, plane_dy, plane_dy_centred);
      sum_dy += plane_dy;
      sum_dy_centred += plane_dy_centred;
    }
    const double sum_dy_xhat = sum_dy_centred * double(inv_std);
    dbeta[c] = float(accumulate ? dbeta[c] + sum_dy : sum_dy);
    dgamma[c] = float(accumulate ? dgamma[c] + sum_dy_xhat : sum_dy_xhat);
    if (m == 0) continue;
    // dx = k (M dy - sum dy - xhat sum dy xhat) = a dy - b - (x - mean) e, with k = gamma inv_std / M.
    const double k = double(gamma[c]) * double(inv_std) / double(m);
    const float a = float(k * double(m)), b = float(k * sum_dy), e = float(k * sum_dy_xhat * double(inv_std));
    for (int n = 0; n < s.N; ++n) {
      const float* xp = x + s.plane(n, c);                   // (H, W)
      const float* dyp = dy + s.plane(n, c);                 // (H, W)
      const float* yp = Relu ? y + s.plane(n, c) : nullptr;  // (H, W)
      float* dxp = dx + s.plane(n, c);                       // (H, W)
      auto g = [&](int64_t i) { return masked<Relu>(yp, dyp, i); };
      if (accumulate) {
        for (int64_t i = 0; i < hw; ++i) dxp[i] += a * g(i) - b - (xp[i] - mean) * e;
      } else {
        for (int64_t i = 0; i < hw; ++i) dxp[i] = a * g(i) - b - (xp[i] - mean) * e;
      }
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
#pragma omp parallel for schedule(static) if (m * s.C >= kParallelMinElements)
  for (int c = 0; c < s.C; ++c) {
    double sum = 0;
    for (int n = 0; n < s.N; ++n) {
      const float* xp = x + s.plane(n, c);  // (H, W)
      sum += lane_sum(hw, [&](int64_t i) { return xp[i]; });
    }
    const double mean = sum / double(m);
    const float mean_f = float(mean);
    double squares = 0;  // about float(mean): two passes, so a mean far above the spread costs no precision
    for (int n = 0; n < s.N; ++n) {
      const float* xp = x + s.plane(n, c);  // (H, W)
      squares += lane_sum(hw, [&](int64_t i) {
        const float d = xp[i] - mean_f;
        return d * d;
      });
    }
    const double var = squares / double(m);
    const double inv_std = 1.0 / std::sqrt(var + double(s.eps));
    const float scale = float(double(gamma[c]) * inv_std), shift = beta[c];
    for (int n = 0; n < s.N; ++n) normalize(hw, x + s.plane(n, c), mean_f, scale, shift, s.relu, y + s.plane(n, c));
    batch_norm_store_statistics(s, c, mean, var, inv_std, m, running_mean, running_var, saved_mean, saved_inv_std);
  }
}

void batch_norm_forward_inference(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                                  const float* running_mean, const float* running_var, float* y) {
  check_batch_norm_shape(s, "batch_norm_forward_inference");
  const int64_t hw = int64_t(s.H) * s.W, planes = int64_t(s.N) * s.C;
#pragma omp parallel for schedule(static) if (planes * hw >= kParallelMinElements)
  for (int64_t nc = 0; nc < planes; ++nc) {
    const int c = int(nc % s.C);
    const float scale = float(double(gamma[c]) / std::sqrt(double(running_var[c]) + double(s.eps)));
    const float mean = running_mean[c], shift = beta[c];
    normalize(hw, x + nc * hw, mean, scale, shift, s.relu, y + nc * hw);
  }
}

void batch_norm_backward(const BatchNormShape& s, const float* x, const float* dy, const float* gamma,
                         const float* saved_mean, const float* saved_inv_std, float* dx, float* dgamma, float* dbeta,
                         bool accumulate) {
  check_batch_norm_shape(s, "batch_norm_backward");
  backward<false>(s, x, nullptr, dy, gamma, saved_mean, saved_inv_std, dx, dgamma, dbeta, accumulate);
}

void batch_norm_backward_relu(const BatchNormShape& s, const float* x, const float* y, const float* dy,
                              const float* gamma, const float* saved_mean, const float* saved_inv_std, float* dx,
                              float* dgamma, float* dbeta, bool accumulate) {
  check_batch_norm_shape(s, "batch_norm_backward_relu");
  backward<true>(s, x, y, dy, gamma, saved_mean, saved_inv_std, dx, dgamma, dbeta, accumulate);
}

}  // namespace kernels::cpu
