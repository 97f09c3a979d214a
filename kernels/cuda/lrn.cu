// Local response normalisation across channels, forward and gather-form backward, one thread per element
// (consecutive threads along W, so each channel read is coalesced). Channel windows are summed directly, not by a
// running sum, so no cancellation error builds up along C. At one (n, h, w):
//   scale[c] = k + alpha/size * sum_{c' = c - (size-1)/2 .. c + size/2} x[c']^2
//   y[c]     = x[c] * scale[c]^-beta
//   dx[c]    = dy[c] * scale[c]^-beta - 2 alpha beta / size * x[c] * sum_{c' = c - size/2 .. c + (size-1)/2}
//              dy[c'] y[c'] / scale[c']
// Shapes: x, y, dx, dy (N, C, H, W).
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

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 8192;

// scale at channel c of the pixel whose channel-0 value is x_pixel[0]; channels are channel_stride apart.
__device__ inline float scale_at(const LrnShape& s, const float* x_pixel, int c) {
  const int first = larger(c - (s.size - 1) / 2, 0), last = smaller(c + s.size / 2, s.C - 1);
  float sum_sq = 0.f;
  for (int cc = first; cc <= last; ++cc) {
    const float v = x_pixel[cc * s.x.channel_stride];
    sum_sq += v * v;
  }
  return s.k + s.alpha / float(s.size) * sum_sq;
}

// Splits a flat element index into (n, c, pixel). Index: unsigned where the count fits (32-bit divisions cost a
// fraction of 64-bit ones), else int64_t.
struct Element {
  int64_t n;
  int c;
  int64_t pixel;  // h * W + w
};

template <typename Index>
__device__ inline Element element_at(const LrnShape& s, Index i) {
  const Index plane_size = Index(s.H) * s.W, nc = i / plane_size;
  return {int64_t(nc / s.C), int(nc % s.C), int64_t(i % plane_size)};
}

// x, y: (N, C, H, W). Thread per element, grid-stride.
template <typename Index>
__global__ void lrn_forward_kernel(LrnShape s, const float* x, float* y) {
  const Index total = Index(s.N) * s.C * s.H * s.W;
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += Index(gridDim.x) * blockDim.x) {
    const Element e = element_at(s, i);
    const float* x_pixel = x + plane_at(s.x, e.n, 0) + e.pixel;  // channel 0 of this pixel
    y[plane_at(s.y, e.n, e.c) + e.pixel] = x_pixel[e.c * s.x.channel_stride] * powf(scale_at(s, x_pixel, e.c), -s.beta);
  }
}

// x, y, dy, dx: (N, C, H, W). Thread per element of dx, grid-stride.
template <typename Index>
__global__ void lrn_backward_kernel(LrnShape s, const float* x, const float* y, const float* dy, float* dx,
                                    bool accumulate) {
  const Index total = Index(s.N) * s.C * s.H * s.W;
  const float cross_factor = 2.f * s.alpha * s.beta / float(s.size);
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += Index(gridDim.x) * blockDim.x) {
    const Element e = element_at(s, i);
    const float* x_pixel = x + plane_at(s.x, e.n, 0) + e.pixel;  // channel 0 of this pixel
    const int64_t y_pixel = plane_at(s.y, e.n, 0) + e.pixel;     // offset of channel 0 in y and dy
    // The channels whose window contains c.
    const int first = larger(e.c - s.size / 2, 0), last = smaller(e.c + (s.size - 1) / 2, s.C - 1);
    float cross = 0.f;  // sum over those channels of dy * y / scale
    for (int cc = first; cc <= last; ++cc) {
      const int64_t at = y_pixel + cc * s.y.channel_stride;
      cross += dy[at] * y[at] / scale_at(s, x_pixel, cc);
    }
    const float direct = dy[y_pixel + e.c * s.y.channel_stride] * powf(scale_at(s, x_pixel, e.c), -s.beta);
    const float grad = direct - cross_factor * x_pixel[e.c * s.x.channel_stride] * cross;
    float& out = dx[plane_at(s.x, e.n, e.c) + e.pixel];
    out = accumulate ? out + grad : grad;
  }
}

void check_shape(const char* kernel, const LrnShape& s) {
  if (s.N <= 0 || s.C <= 0 || s.H <= 0 || s.W <= 0 || s.size < 1) {
    std::ostringstream msg;
    msg << kernel << ": bad shape (N " << s.N << ", C " << s.C << ", H " << s.H << ", W " << s.W << ", size " << s.size
        << ")";
    throw std::invalid_argument(msg.str());
  }
}

int64_t elements(const LrnShape& s) {
  return int64_t(s.N) * s.C * s.H * s.W;
}

// Whether an unsigned index covers every element plus one grid stride (the loop's last increment).
bool fits_32_bits(const LrnShape& s) {
  return elements(s) < (int64_t(1) << 31);
}

dim3 grid_for(const LrnShape& s) {
  return dim3(unsigned(std::min((elements(s) + kThreads - 1) / kThreads, kMaxBlocks)));
}

}  // namespace

void lrn_forward(const LrnShape& s, const float* x, float* y, GpuStream stream) {
  check_shape("lrn_forward", s);
  auto kernel = fits_32_bits(s) ? lrn_forward_kernel<unsigned> : lrn_forward_kernel<int64_t>;
  launch("lrn_forward", kernel, grid_for(s), dim3(kThreads), 0, stream, s, x, y);
}

void lrn_backward(const LrnShape& s, const float* x, const float* y, const float* dy, float* dx, bool accumulate,
                  GpuStream stream) {
  check_shape("lrn_backward", s);
  auto kernel = fits_32_bits(s) ? lrn_backward_kernel<unsigned> : lrn_backward_kernel<int64_t>;
  launch("lrn_backward", kernel, grid_for(s), dim3(kThreads), 0, stream, s, x, y, dy, dx, accumulate);
}

}  // namespace kernels::MASSMAP_GPU_NS
