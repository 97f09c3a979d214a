// Softmax over channels at every location (n, h, w), its backward, and the softmax cross-entropy loss.
//   prob[c] = exp(x[c] - m) / sum_c' exp(x[c'] - m),  m = max_c x[c]
//   loss = -1/V * sum over valid locations of (x[label] - m - log sum_c exp(x[c] - m))
// A location is handled by a group of Lanes threads: one thread (Lanes = 1) when maps are wide, so neighbouring
// threads read neighbouring pixels (coalesced); a warp (Lanes = 32) when a plane has fewer than 32 pixels and there
// are many channels (a classifier: H = W = 1), so a warp reads 32 neighbouring channels. Warp sums are xor
// butterflies: every lane ends with the same bits.
// Shapes: x, dx, prob, dprob (N, C, H, W); labels (N, H, W).
#include "kernels/cuda/portable.h"
// (first: MASSMAP_GPU_NS and the CUDA vocabulary of this build)
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <stdexcept>

#include "kernels/cuda/device_helpers.h"

namespace kernels::MASSMAP_GPU_NS {
namespace {

constexpr int kThreads = 256;       // softmax, softmax backward, loss backward
constexpr int kLossThreads = 1024;  // the loss: one block, so its sum has a fixed order without a second launch
constexpr int64_t kMaxBlocks = 4096;
constexpr unsigned kFullWarp = 0xffffffffu;

template <int Lanes>
__device__ inline float group_max(float v) {
  if constexpr (Lanes == 32) {
    MASSMAP_UNROLL
    for (int offset = 16; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(kFullWarp, v, offset));
  }
  return v;
}

template <int Lanes>
__device__ inline float group_sum(float v) {
  if constexpr (Lanes == 32) {
    MASSMAP_UNROLL
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullWarp, v, offset);
  }
  return v;
}

// Where this thread's group starts and how many groups the grid (or the block, for one-block kernels) has.
template <int Lanes>
struct Groups {
  int lane;
  int64_t first, count;
};

template <int Lanes>
__device__ inline Groups<Lanes> grid_groups() {
  const int64_t thread = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  return {int(thread % Lanes), thread / Lanes, int64_t(gridDim.x) * blockDim.x / Lanes};
}

template <int Lanes>
__device__ inline Groups<Lanes> block_groups() {
  return {int(threadIdx.x % Lanes), int64_t(threadIdx.x / Lanes), int64_t(blockDim.x / Lanes)};
}

// The location's channel-0 offset under placement p (pixel i = h * W + w of image n).
__device__ inline int64_t location_at(const Placement& p, int64_t location, int64_t plane_size) {
  return plane_at(p, location / plane_size, 0) + location % plane_size;
}

// Max and sum_c exp(x[c] - max) over the channels at x_at (channels `stride` apart), shared by the group.
struct ChannelStats {
  float max, sum;
};

template <int Lanes>
__device__ inline ChannelStats channel_stats(const float* x_at, int64_t stride, int C, int lane) {
  float m = -INFINITY;
  for (int c = lane; c < C; c += Lanes) m = fmaxf(m, x_at[c * stride]);
  m = group_max<Lanes>(m);
  float sum = 0.f;
  for (int c = lane; c < C; c += Lanes) sum += expf(x_at[c * stride] - m);
  return {m, group_sum<Lanes>(sum)};
}

// Labels: a class id in [0, C), or one of these.
constexpr int kIgnored = -1;  // the location's label is ignore_label
constexpr int kInvalid = -2;  // neither ignore_label nor a class id (non-integral, NaN, out of range)

__device__ inline int classify_label(float value, int C, int ignore_label) {
  if (value == float(ignore_label)) return kIgnored;
  if (!(value >= 0.f && value < float(C) && value == floorf(value))) return kInvalid;
  return int(value);
}

// x, prob: (N, C, H, W).
template <int Lanes>
__global__ void softmax_forward_kernel(SoftmaxShape s, const float* x, float* prob) {
  const Groups<Lanes> g = grid_groups<Lanes>();
  const int64_t plane_size = int64_t(s.H) * s.W, locations = s.N * plane_size;
  for (int64_t location = g.first; location < locations; location += g.count) {
    const float* x_at = x + location_at(s.x, location, plane_size);
    float* prob_at = prob + location_at(s.y, location, plane_size);
    const ChannelStats stats = channel_stats<Lanes>(x_at, s.x.channel_stride, s.C, g.lane);
    for (int c = g.lane; c < s.C; c += Lanes)
      prob_at[c * s.y.channel_stride] = expf(x_at[c * s.x.channel_stride] - stats.max) / stats.sum;
  }
}

// prob, dprob, dx: (N, C, H, W). dx may be dprob: each group reads its location's dprob before writing it.
template <int Lanes>
__global__ void softmax_backward_kernel(SoftmaxShape s, const float* prob, const float* dprob, float* dx,
                                        bool accumulate) {
  const Groups<Lanes> g = grid_groups<Lanes>();
  const int64_t plane_size = int64_t(s.H) * s.W, locations = s.N * plane_size;
  for (int64_t location = g.first; location < locations; location += g.count) {
    const int64_t prob_at = location_at(s.y, location, plane_size), dx_at = location_at(s.x, location, plane_size);
    float dot = 0.f;  // sum_c dprob * prob
    for (int c = g.lane; c < s.C; c += Lanes)
      dot += dprob[prob_at + c * s.y.channel_stride] * prob[prob_at + c * s.y.channel_stride];
    dot = group_sum<Lanes>(dot);
    for (int c = g.lane; c < s.C; c += Lanes) {
      const int64_t at = prob_at + c * s.y.channel_stride;
      const float grad = prob[at] * (dprob[at] - dot);
      float& out = dx[dx_at + c * s.x.channel_stride];
      out = accumulate ? out + grad : grad;
    }
  }
}

// One block: every group adds -log prob[label] of its locations (from the logits, finite where prob underflows),
// then a block tree sums them. x: (N, C, H, W); labels: (N, H, W); loss: 1 float.
template <int Lanes>
__global__ void softmax_loss_kernel(SoftmaxLossShape s, const float* x, const float* labels, float* loss) {
  MASSMAP_SHARED(double, partial_loss, [kLossThreads]);
  MASSMAP_SHARED(int, partial_count, [kLossThreads]);
  const SoftmaxShape& sm = s.softmax;
  const Groups<Lanes> g = block_groups<Lanes>();
  const int64_t plane_size = int64_t(sm.H) * sm.W, locations = sm.N * plane_size;
  double sum = 0;
  int valid = 0;
  for (int64_t location = g.first; location < locations; location += g.count) {
    const int label = classify_label(labels[location], sm.C, s.ignore_label);
    if (label == kIgnored) continue;  // the same for the whole group
    const float* x_at = x + location_at(sm.x, location, plane_size);
    const ChannelStats stats = channel_stats<Lanes>(x_at, sm.x.channel_stride, sm.C, g.lane);
    if (g.lane == 0) {
      ++valid;
      sum -= label == kInvalid ? NAN : double(x_at[label * sm.x.channel_stride] - stats.max - logf(stats.sum));
    }
  }
  const double total = block_sum(sum, partial_loss);
  const int count = block_sum(valid, partial_count);
  if (threadIdx.x == 0) *loss = count == 0 ? 0.f : float(total / count);
}

// prob, dx: (N, C, H, W); labels: (N, H, W). Every block counts V itself (a block cannot wait for another), so the
// launcher keeps the grid small where the labels are many and the channels few.
template <int Lanes>
__global__ void softmax_loss_backward_kernel(SoftmaxLossShape s, const float* prob, const float* labels,
                                             float loss_grad, float* dx, bool accumulate) {
  MASSMAP_SHARED(int, partial_count, [kThreads]);
  const SoftmaxShape& sm = s.softmax;
  const int64_t plane_size = int64_t(sm.H) * sm.W, locations = sm.N * plane_size;
  int valid = 0;
  for (int64_t location = threadIdx.x; location < locations; location += blockDim.x)
    valid += classify_label(labels[location], sm.C, s.ignore_label) != kIgnored;
  const int count = block_sum(valid, partial_count);
  const float weight = count > 0 ? loss_grad / float(count) : 0.f;

  const Groups<Lanes> g = grid_groups<Lanes>();
  for (int64_t location = g.first; location < locations; location += g.count) {
    const int label = classify_label(labels[location], sm.C, s.ignore_label);
    const int64_t prob_at = location_at(sm.y, location, plane_size), dx_at = location_at(sm.x, location, plane_size);
    for (int c = g.lane; c < sm.C; c += Lanes) {
      float grad = 0.f;
      if (label == kInvalid) {
        grad = NAN;
      } else if (label != kIgnored) {
        grad = weight * (prob[prob_at + c * sm.y.channel_stride] - (c == label ? 1.f : 0.f));
      }
      float& out = dx[dx_at + c * sm.x.channel_stride];
      out = accumulate ? out + grad : grad;
    }
  }
}

void check_shape(const char* kernel, const SoftmaxShape& s) {
  if (s.N <= 0 || s.C <= 0 || s.H <= 0 || s.W <= 0 || int64_t(s.N) * s.H * s.W > INT32_MAX) {
    std::ostringstream msg;
    msg << kernel << ": bad shape (N " << s.N << ", C " << s.C << ", H " << s.H << ", W " << s.W << ")";
    throw std::invalid_argument(msg.str());
  }
}

// A warp per location for a classifier-like shape (few pixels, many channels), else a thread per location.
bool warp_per_location(const SoftmaxShape& s) {
  return int64_t(s.H) * s.W < 32 && s.C >= 32;
}

// Blocks of kThreads for one group of `lanes` threads per location, at most `max_blocks`.
dim3 grid_for(const SoftmaxShape& s, int lanes, int64_t max_blocks = kMaxBlocks) {
  const int64_t threads = int64_t(s.N) * s.H * s.W * lanes;
  return dim3(unsigned(std::min((threads + kThreads - 1) / kThreads, max_blocks)));
}

}  // namespace

void softmax_forward(const SoftmaxShape& s, const float* x, float* prob, GpuStream stream) {
  check_shape("softmax_forward", s);
  if (warp_per_location(s)) {
    launch("softmax_forward", softmax_forward_kernel<32>, grid_for(s, 32), dim3(kThreads), 0, stream, s, x, prob);
  } else {
    launch("softmax_forward", softmax_forward_kernel<1>, grid_for(s, 1), dim3(kThreads), 0, stream, s, x, prob);
  }
}

void softmax_backward(const SoftmaxShape& s, const float* prob, const float* dprob, float* dx, bool accumulate,
                      GpuStream stream) {
  check_shape("softmax_backward", s);
  if (warp_per_location(s)) {
    launch("softmax_backward", softmax_backward_kernel<32>, grid_for(s, 32), dim3(kThreads), 0, stream, s, prob, dprob,
           dx, accumulate);
  } else {
    launch("softmax_backward", softmax_backward_kernel<1>, grid_for(s, 1), dim3(kThreads), 0, stream, s, prob, dprob,
           dx, accumulate);
  }
}

void softmax_loss_forward(const SoftmaxLossShape& s, const float* x, const float* labels, float* prob, float* loss,
                          GpuStream stream) {
  check_shape("softmax_loss_forward", s.softmax);
  softmax_forward(s.softmax, x, prob, stream);
  if (warp_per_location(s.softmax)) {
    launch("softmax_loss_forward", softmax_loss_kernel<32>, dim3(1), dim3(kLossThreads), 0, stream, s, x, labels, loss);
  } else {
    launch("softmax_loss_forward", softmax_loss_kernel<1>, dim3(1), dim3(kLossThreads), 0, stream, s, x, labels, loss);
  }
}

void softmax_loss_backward(const SoftmaxLossShape& s, const float* prob, const float* labels, float loss_grad,
                           float* dx, bool accumulate, GpuStream stream) {
  check_shape("softmax_loss_backward", s.softmax);
  // Each block re-reads all N*H*W labels to count V: at most a few blocks per channel keeps that below the
  // N*C*H*W reads of prob.
  const int64_t max_blocks = std::min<int64_t>(kMaxBlocks, std::max<int64_t>(16, 4 * int64_t(s.softmax.C)));
  if (warp_per_location(s.softmax)) {
    launch("softmax_loss_backward", softmax_loss_backward_kernel<32>, grid_for(s.softmax, 32, max_blocks),
           dim3(kThreads), 0, stream, s, prob, labels, loss_grad, dx, accumulate);
  } else {
    launch("softmax_loss_backward", softmax_loss_backward_kernel<1>, grid_for(s.softmax, 1, max_blocks), dim3(kThreads),
           0, stream, s, prob, labels, loss_grad, dx, accumulate);
  }
}

}  // namespace kernels::MASSMAP_GPU_NS
