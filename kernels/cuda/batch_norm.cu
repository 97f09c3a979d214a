// Batch normalisation (kernels/batch_norm.h) on the GPU. The statistics of channel c run over the N H W values
// of that channel, which lie in N planes of H W floats, C planes apart:
//   statistics (training):  one block per channel reduces its M = N H W values in two passes, the sum (for the
//                           mean), then the sum of squared deviations (for the variance; the two-pass form keeps
//                           its accuracy when |mean| >> std, where E[x^2] - E[x]^2 cancels), and writes the saved
//                           and running statistics;
//   normalisation:          a grid-stride loop over every element, y = gamma (x - mean) inv_std + beta, with the
//                           training batch's saved statistics or (inference) the running ones;
//   backward:               one block per channel reduces sum dy and sum dy xhat, writes dbeta and dgamma, then
//                           writes the channel's dx from the same sums (they live only in that block's registers);
//                           after a fused ReLU (s.relu) dy counts only where the forward's y > 0.
// Sums: each thread adds its strided share in float, then a fixed-order block tree (device_helpers.h block_sum), so
// results repeat bit for bit. No atomics.
// Shapes: x, y, dy, dx dense (N, C, H, W); gamma, beta, running_mean, running_var, saved_mean, saved_inv_std (C).
#include "kernels/cuda/portable.h"
// (first: MASSMAP_GPU_NS and the CUDA vocabulary of this build)
#include <algorithm>
#include <cstdint>

#include "kernels/batch_norm.h"
#include "kernels/cuda/device_helpers.h"

namespace kernels::MASSMAP_GPU_NS {
namespace {

constexpr int kMaxReduceThreads = 1024;  // per-channel blocks: a power of two (block_sum), at most this many
constexpr int kMinReduceThreads = 32;
constexpr int kThreads = 256;  // the elementwise kernel
constexpr int64_t kMaxBlocks = 4096;

// Offset of the j-th value of channel c (j = n H W + i, i = h W + w) in a dense (N, C, H, W) tensor.
__device__ inline int64_t channel_value_at(int64_t j, int c, int C, int64_t hw) {
  const int64_t n = j / hw;
  return (n * C + c) * hw + (j - n * hw);
}

// Grid: one block per channel (blockIdx.x = c). x: (N, C, H, W); running_mean, running_var, saved_mean,
// saved_inv_std: (C).
__global__ void batch_norm_statistics_kernel(BatchNormShape s, const float* x, float* running_mean, float* running_var,
                                             float* saved_mean, float* saved_inv_std) {
  MASSMAP_SHARED(float, partial, [kMaxReduceThreads]);
  const int c = blockIdx.x;
  const int64_t hw = int64_t(s.H) * s.W, m = s.N * hw;  // (per_channel() is host-only)

  float sum = 0.f;
  for (int64_t j = threadIdx.x; j < m; j += blockDim.x) sum += x[channel_value_at(j, c, s.C, hw)];
  const float mean = block_sum(sum, partial) / float(m);

  float squares = 0.f;
  for (int64_t j = threadIdx.x; j < m; j += blockDim.x) {
    const float d = x[channel_value_at(j, c, s.C, hw)] - mean;
    squares += d * d;
  }
  const float var = block_sum(squares, partial) / float(m);  // biased: the batch's own normaliser

  if (threadIdx.x == 0) {
    saved_mean[c] = mean;
    saved_inv_std[c] = 1.f / sqrtf(var + s.eps);
    // The running variance estimates the population's: unbiased, M / (M - 1) (undefined for M = 1: kept biased).
    const float unbiased = m > 1 ? var * (float(m) / float(m - 1)) : var;
    running_mean[c] = (1.f - s.momentum) * running_mean[c] + s.momentum * mean;
    running_var[c] = (1.f - s.momentum) * running_var[c] + s.momentum * unbiased;
  }
}

// y = gamma_c (x - mean_c) inv_std_c + beta_c over every element. FromVariance: `spread` holds variances
// (inference: the running variance), else inverse standard deviations (training: saved_inv_std).
// x, y: (N, C, H, W); gamma, beta, mean, spread: (C). y may be x.
template <bool FromVariance>
__global__ void batch_norm_normalize_kernel(BatchNormShape s, const float* x, const float* gamma, const float* beta,
                                            const float* mean, const float* spread, float* y) {
  const int64_t hw = int64_t(s.H) * s.W, count = int64_t(s.N) * s.C * hw;
  const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t k = first; k < count; k += step) {
    const int c = int(k / hw % s.C);
    const float inv_std = FromVariance ? 1.f / sqrtf(spread[c] + s.eps) : spread[c];
    const float v = gamma[c] * (x[k] - mean[c]) * inv_std + beta[c];
    y[k] = s.relu && v < 0.f ? 0.f : v;  // the relu op's form
  }
}

// Grid: one block per channel. Pass 1: the batch sums of dy and dy xhat (xhat = (x - mean) inv_std); thread 0
// writes dbeta, dgamma. Pass 2: dx = gamma inv_std (dy - sum dy / M - xhat sum(dy xhat) / M), the header's formula
// with 1 / M taken inside (no M dy - sum dy cancellation of large terms in float).
// x, y, dy, dx: (N, C, H, W); gamma, saved_mean, saved_inv_std, dgamma, dbeta: (C). y: the fused ReLU's output
// (read only with s.relu; dy counts where y > 0). dx may be dy: each thread reads its own elements before writing
// them, after pass 1 (block_sum's barrier) is over.
__global__ void batch_norm_backward_kernel(BatchNormShape s, const float* x, const float* y, const float* dy,
                                           const float* gamma, const float* saved_mean, const float* saved_inv_std,
                                           float* dx, float* dgamma, float* dbeta, bool accumulate) {
  MASSMAP_SHARED(float, partial, [kMaxReduceThreads]);
  const int c = blockIdx.x;
  const int64_t hw = int64_t(s.H) * s.W, m = s.N * hw;  // (per_channel() is host-only)
  const float mean = saved_mean[c], inv_std = saved_inv_std[c];

  float sum_dy = 0.f, sum_dy_xhat = 0.f;
  for (int64_t j = threadIdx.x; j < m; j += blockDim.x) {
    const int64_t k = channel_value_at(j, c, s.C, hw);
    const float g = s.relu && !(y[k] > 0.f) ? 0.f : dy[k];
    sum_dy += g;
    sum_dy_xhat += g * (x[k] - mean) * inv_std;
  }
  sum_dy = block_sum(sum_dy, partial);
  sum_dy_xhat = block_sum(sum_dy_xhat, partial);
  if (threadIdx.x == 0) {
    dbeta[c] = accumulate ? dbeta[c] + sum_dy : sum_dy;
    dgamma[c] = accumulate ? dgamma[c] + sum_dy_xhat : sum_dy_xhat;
  }
  if (m == 0) return;  // dgamma, dbeta = 0 (the reference's empty sums); no dx to write

  const float mean_dy = sum_dy / float(m), mean_dy_xhat = sum_dy_xhat / float(m), scale = gamma[c] * inv_std;
  for (int64_t j = threadIdx.x; j < m; j += blockDim.x) {
    const int64_t k = channel_value_at(j, c, s.C, hw);
    const float xhat = (x[k] - mean) * inv_std;
    const float dy_k = s.relu && !(y[k] > 0.f) ? 0.f : dy[k];
    const float g = scale * (dy_k - mean_dy - xhat * mean_dy_xhat);
    dx[k] = accumulate ? dx[k] + g : g;
  }
}

// Threads of a per-channel block: the power of two covering the channel's M values, within [32, 1024] (tiny
// batches need no 1024-thread tree; large ones loop).
dim3 reduce_block(int64_t m) {
  int threads = kMinReduceThreads;
  while (threads < kMaxReduceThreads && threads < m) threads *= 2;
  return dim3(unsigned(threads));
}

dim3 elementwise_grid(const BatchNormShape& s) {
  const int64_t count = int64_t(s.N) * s.C * s.H * s.W;
  return dim3(unsigned(std::min((count + kThreads - 1) / kThreads, kMaxBlocks)));
}

void launch_backward(const BatchNormShape& s, const float* x, const float* y, const float* dy, const float* gamma,
                     const float* saved_mean, const float* saved_inv_std, float* dx, float* dgamma, float* dbeta,
                     bool accumulate, GpuStream stream) {
  // M == 0 still launches when C > 0: the reference sets dgamma and dbeta to the empty sums (0).
  if (s.C == 0) return;
  launch("batch_norm_backward", batch_norm_backward_kernel, dim3(unsigned(s.C)), reduce_block(s.per_channel()), 0,
         stream, s, x, y, dy, gamma, saved_mean, saved_inv_std, dx, dgamma, dbeta, accumulate);
}

}  // namespace

void batch_norm_forward_training(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                                 float* running_mean, float* running_var, float* y, float* saved_mean,
                                 float* saved_inv_std, GpuStream stream) {
  check_batch_norm_shape(s, "batch_norm_forward_training");
  const int64_t m = s.per_channel();
  if (m == 0 || s.C == 0) return;  // no launch (an empty grid is an error on simt); nothing to normalise
  launch("batch_norm_statistics", batch_norm_statistics_kernel, dim3(unsigned(s.C)), reduce_block(m), 0, stream, s, x,
         running_mean, running_var, saved_mean, saved_inv_std);
  launch("batch_norm_normalize", batch_norm_normalize_kernel<false>, elementwise_grid(s), dim3(kThreads), 0, stream, s,
         x, gamma, beta, saved_mean, saved_inv_std, y);
}

void batch_norm_forward_inference(const BatchNormShape& s, const float* x, const float* gamma, const float* beta,
                                  const float* running_mean, const float* running_var, float* y, GpuStream stream) {
  check_batch_norm_shape(s, "batch_norm_forward_inference");
  if (s.per_channel() == 0 || s.C == 0) return;
  launch("batch_norm_inference", batch_norm_normalize_kernel<true>, elementwise_grid(s), dim3(kThreads), 0, stream, s,
         x, gamma, beta, running_mean, running_var, y);
}

void batch_norm_backward(const BatchNormShape& s, const float* x, const float* dy, const float* gamma,
                         const float* saved_mean, const float* saved_inv_std, float* dx, float* dgamma, float* dbeta,
                         bool accumulate, GpuStream stream) {
  check_batch_norm_shape(s, "batch_norm_backward");
  BatchNormShape plain = s;  // no y to read
  plain.relu = false;
  launch_backward(plain, x, nullptr, dy, gamma, saved_mean, saved_inv_std, dx, dgamma, dbeta, accumulate, stream);
}

void batch_norm_backward_relu(const BatchNormShape& s, const float* x, const float* y, const float* dy,
                              const float* gamma, const float* saved_mean, const float* saved_inv_std, float* dx,
                              float* dgamma, float* dbeta, bool accumulate, GpuStream stream) {
  check_batch_norm_shape(s, "batch_norm_backward_relu");
  BatchNormShape fused = s;
  fused.relu = true;
  launch_backward(fused, x, y, dy, gamma, saved_mean, saved_inv_std, dx, dgamma, dbeta, accumulate, stream);
}

}  // namespace kernels::MASSMAP_GPU_NS
