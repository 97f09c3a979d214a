// Softmax over channels and the softmax cross-entropy loss, reference. At every location (n, h, w):
//   m       = max_c x[c]
//   prob[c] = exp(x[c] - m) / sum_c' exp(x[c'] - m)           (subtracting m keeps exp finite)
//   softmax backward:  dx[c] (+)= prob[c] * (dprob[c] - sum_c' dprob[c'] * prob[c'])
//   loss = -1/V * sum over valid locations of log prob[label]  (log prob = x[label] - m - log sum exp(x - m))
//   loss backward:     dx[c] (+)= loss_grad * (prob[c] - [c == label]) / V, and 0 at ignored locations
// V is the number of locations whose label is not ignore_label; with V == 0 the loss and its gradient are 0.
// Sums are taken in double.
// Shapes: x, dx, prob, dprob (N, C, H, W); labels (N, H, W) holding class ids as floats.
// x and dx are placed as s.x, prob and dprob as s.y.
#include <cmath>
#include <cstdint>
#include <sstream>
#include <stdexcept>

#include "kernels/cpu/parallel_threshold.h"
#include "kernels/softmax.h"

namespace kernels::ref {
namespace {

// A location's label as an int; throws std::out_of_range for anything that is neither ignore_label nor a class id
// in [0, C) (including non-integral values and NaN).
int label_at(const SoftmaxLossShape& s, const float* labels, int64_t n, int64_t h, int64_t w) {
  const SoftmaxShape& sm = s.softmax;
  const float value = labels[(n * sm.H + h) * sm.W + w];
  if (value == float(s.ignore_label)) return s.ignore_label;
  if (!(value >= 0.f && value < float(sm.C) && value == std::floor(value))) {
    std::ostringstream msg;
    msg << "softmax loss: label " << value << " at (n " << n << ", h " << h << ", w " << w << ") is outside [0, "
        << sm.C << ") and is not ignore_label " << s.ignore_label;
    throw std::out_of_range(msg.str());
  }
  return int(value);
}

// Validates every label (before anything is written) and returns V, the number of non-ignored locations.
int64_t count_valid(const SoftmaxLossShape& s, const float* labels) {
  const SoftmaxShape& sm = s.softmax;
  int64_t valid = 0;
  for (int64_t n = 0; n < sm.N; ++n)
    for (int64_t h = 0; h < sm.H; ++h)
      for (int64_t w = 0; w < sm.W; ++w) valid += label_at(s, labels, n, h, w) != s.ignore_label;
  return valid;
}

// Max and log-sum-exp over channels at one location; `at` is the offset of channel 0 there.
struct ChannelStats {
  double max, log_sum_exp;  // log sum_c exp(x[c] - max)
};

ChannelStats channel_stats(const SoftmaxShape& s, const float* x, int64_t at) {
  const int64_t stride = s.x.channel_stride;
  double max = x[at];
  for (int c = 1; c < s.C; ++c) max = std::fmax(max, double(x[at + c * stride]));
  double sum = 0;
  for (int c = 0; c < s.C; ++c) sum += std::exp(double(x[at + c * stride]) - max);
  return {max, std::log(sum)};
}

}  // namespace

void softmax_forward(const SoftmaxShape& s, const float* x, float* prob) {
  const int64_t plane_size = int64_t(s.H) * s.W;
#pragma omp parallel for if (int64_t(s.N) * s.C * plane_size >= kParallelMinElements)
  for (int64_t location = 0; location < int64_t(s.N) * plane_size; ++location) {
    const int64_t n = location / plane_size, i = location % plane_size;
    const int64_t x_at = s.x.plane(n, 0) + i, prob_at = s.y.plane(n, 0) + i;
    const ChannelStats stats = channel_stats(s, x, x_at);
    for (int c = 0; c < s.C; ++c) {
      const double logit = x[x_at + c * s.x.channel_stride];
      prob[prob_at + c * s.y.channel_stride] = float(std::exp(logit - stats.max - stats.log_sum_exp));
    }
  }
}

void softmax_backward(const SoftmaxShape& s, const float* prob, const float* dprob, float* dx, bool accumulate) {
  const int64_t plane_size = int64_t(s.H) * s.W;
#pragma omp parallel for if (int64_t(s.N) * s.C * plane_size >= kParallelMinElements)
  for (int64_t location = 0; location < int64_t(s.N) * plane_size; ++location) {
    const int64_t n = location / plane_size, i = location % plane_size;
    const int64_t x_at = s.x.plane(n, 0) + i, prob_at = s.y.plane(n, 0) + i;
    double dot = 0;  // sum_c dprob * prob
    for (int c = 0; c < s.C; ++c) {
      const int64_t at = prob_at + c * s.y.channel_stride;
      dot += double(dprob[at]) * prob[at];
    }
    for (int c = 0; c < s.C; ++c) {
      const int64_t at = prob_at + c * s.y.channel_stride;
      const float grad = float(prob[at] * (dprob[at] - dot));
      float& out = dx[x_at + c * s.x.channel_stride];
      out = accumulate ? out + grad : grad;
    }
  }
}

float softmax_loss_forward(const SoftmaxLossShape& s, const float* x, const float* labels, float* prob) {
  const SoftmaxShape& sm = s.softmax;
  const int64_t valid = count_valid(s, labels);
  softmax_forward(sm, x, prob);
  if (valid == 0) return 0.f;
  double loss = 0;
  for (int64_t n = 0; n < sm.N; ++n) {
    for (int64_t h = 0; h < sm.H; ++h) {
      for (int64_t w = 0; w < sm.W; ++w) {
        const int label = label_at(s, labels, n, h, w);
        if (label == s.ignore_label) continue;
        const int64_t x_at = sm.x.plane(n, 0) + h * sm.W + w;
        const ChannelStats stats = channel_stats(sm, x, x_at);
        // log prob[label] from the logits: finite even where prob[label] underflows to 0.
        loss -= double(x[x_at + label * sm.x.channel_stride]) - stats.max - stats.log_sum_exp;
      }
    }
  }
  return float(loss / double(valid));
}

void softmax_loss_backward(const SoftmaxLossShape& s, const float* prob, const float* labels, float loss_grad,
                           float* dx, bool accumulate) {
  const SoftmaxShape& sm = s.softmax;
  const int64_t valid = count_valid(s, labels);
  const double weight = valid > 0 ? double(loss_grad) / double(valid) : 0.0;
  const int64_t plane_size = int64_t(sm.H) * sm.W;
#pragma omp parallel for if (int64_t(sm.N) * sm.C * plane_size >= kParallelMinElements)
  for (int64_t location = 0; location < int64_t(sm.N) * plane_size; ++location) {
    const int64_t n = location / plane_size, i = location % plane_size;
    const int label = label_at(s, labels, n, i / sm.W, i % sm.W);  // validated above: cannot throw here
    const int64_t x_at = sm.x.plane(n, 0) + i, prob_at = sm.y.plane(n, 0) + i;
    for (int c = 0; c < sm.C; ++c) {
      const double onehot = c == label ? 1.0 : 0.0;
      const float grad =
          label == s.ignore_label ? 0.f : float(weight * (double(prob[prob_at + c * sm.y.channel_stride]) - onehot));
      float& out = dx[x_at + c * sm.x.channel_stride];
      out = accumulate ? out + grad : grad;
    }
  }
}

}  // namespace kernels::ref
