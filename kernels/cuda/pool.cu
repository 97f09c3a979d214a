// Max and average pooling, forward and gather-form backward, one thread per output (forward) or input (backward)
// element; consecutive threads walk along a row, so window reads of neighbouring threads share cache lines.
// Mirrors kernels/cpu/pool_ref.cpp loop for loop (same window clipping, same summation order, same first-maximum
// rule), so max pooling matches the reference bit for bit.
// Shapes: x, dx (N, C, H, W); y, dy (N, C, P, Q).
#include "kernels/cuda/portable.h"
// (first: MASSMAP_GPU_NS and the CUDA vocabulary of this build)
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/device_helpers.h"

namespace kernels::MASSMAP_GPU_NS {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 8192;

// One output window (p, q): its extent clipped to the image and Caffe's divisor for average pooling.
struct Window {
  int h0, h1, w0, w1;  // image rows [h0, h1), columns [w0, w1)
  int area;            // cells of the window inside the padded image
};

__device__ inline Window window_at(const PoolShape& s, int p, int q) {
  const int hstart = p * s.stride_h - s.pad_h, wstart = q * s.stride_w - s.pad_w;
  const int hend = smaller(hstart + s.R, s.H + s.pad_h), wend = smaller(wstart + s.S, s.W + s.pad_w);
  return {larger(hstart, 0), smaller(hend, s.H), larger(wstart, 0), smaller(wend, s.W),
          (hend - hstart) * (wend - wstart)};
}

// Offset h * W + w of the window's first maximum in row-major order (a later element wins only if strictly larger).
__device__ inline int window_argmax(const PoolShape& s, const float* x_plane, const Window& win) {
  int best = win.h0 * s.W + win.w0;
  float best_value = x_plane[best];
  for (int h = win.h0; h < win.h1; ++h) {
    for (int w = win.w0; w < win.w1; ++w) {
      const float v = x_plane[h * s.W + w];
      if (v > best_value) best = h * s.W + w, best_value = v;
    }
  }
  return best;
}

__device__ inline float window_sum(const PoolShape& s, const float* x_plane, const Window& win) {
  float sum = 0.f;
  for (int h = win.h0; h < win.h1; ++h)
    for (int w = win.w0; w < win.w1; ++w) sum += x_plane[h * s.W + w];
  return sum;
}

// x: (N, C, H, W), y: (N, C, P, Q). Thread per output element, grid-stride. Index: unsigned where the count
// fits (32-bit divisions cost a fraction of 64-bit ones), else int64_t.
template <typename Index>
__global__ void pool_forward_kernel(PoolShape s, const float* x, float* y) {
  const Index plane_out = Index(s.P) * s.Q, total = Index(s.N) * s.C * plane_out;
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += Index(gridDim.x) * blockDim.x) {
    const Index nc = i / plane_out;
    const int pq = int(i % plane_out), p = pq / s.Q, q = pq % s.Q;
    const int n = int(nc / s.C), c = int(nc % s.C);
    const float* x_plane = x + plane_at(s.x, n, c);  // (H, W)
    const Window win = window_at(s, p, q);
    y[plane_at(s.y, n, c) + pq] = s.method == PoolMethod::max ? x_plane[window_argmax(s, x_plane, win)]
                                                              : window_sum(s, x_plane, win) / float(win.area);
  }
}

// The output windows containing input index i along one axis: [first, last).
__device__ inline void windows_containing(int i, int window, int stride, int pad, int out, int* first, int* last) {
  *first = i + pad < window ? 0 : (i + pad - window) / stride + 1;
  *last = smaller((i + pad) / stride + 1, out);
}

// x, dx: (N, C, H, W); dy: (N, C, P, Q). Thread per input element, grid-stride; Index as in the forward kernel.
template <typename Index>
__global__ void pool_backward_kernel(PoolShape s, const float* x, const float* dy, float* dx, bool accumulate) {
  const Index plane_in = Index(s.H) * s.W, total = Index(s.N) * s.C * plane_in;
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += Index(gridDim.x) * blockDim.x) {
    const Index nc = i / plane_in;
    const int here = int(i % plane_in), h = here / s.W, w = here % s.W;
    const int n = int(nc / s.C), c = int(nc % s.C);
    const float* x_plane = x + plane_at(s.x, n, c);    // (H, W)
    const float* dy_plane = dy + plane_at(s.y, n, c);  // (P, Q)
    int p_first, p_last, q_first, q_last;
    windows_containing(h, s.R, s.stride_h, s.pad_h, s.P, &p_first, &p_last);
    windows_containing(w, s.S, s.stride_w, s.pad_w, s.Q, &q_first, &q_last);
    float grad = 0.f;
    for (int p = p_first; p < p_last; ++p) {
      for (int q = q_first; q < q_last; ++q) {
        const Window win = window_at(s, p, q);
        const float g = dy_plane[p * s.Q + q];
        if (s.method == PoolMethod::avg) {
          grad += g / float(win.area);
        } else if (window_argmax(s, x_plane, win) == here) {
          grad += g;
        }
      }
    }
    float& out = dx[plane_at(s.x, n, c) + here];
    out = accumulate ? out + grad : grad;
  }
}

// Checks the shape and the 32-bit offsets the kernels use inside one plane.
void check_shape(const char* kernel, const PoolShape& s) {
  try {
    check_pool_shape(s);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string(kernel) + ": " + e.what());
  }
  if (int64_t(s.H) * s.W > INT32_MAX / 2 || int64_t(s.P) * s.Q > INT32_MAX / 2)
    throw std::invalid_argument(std::string(kernel) + ": plane of " + std::to_string(s.H) + "x" + std::to_string(s.W) +
                                " too large");
}

// Whether an unsigned index covers `elements` plus one grid stride (the loop's last increment).
bool fits_32_bits(int64_t elements) {
  return elements < (int64_t(1) << 31);
}

dim3 grid_for(int64_t elements) {
  return dim3(unsigned(std::min((elements + kThreads - 1) / kThreads, kMaxBlocks)));
}

}  // namespace

void pool_forward(const PoolShape& s, const float* x, float* y, GpuStream stream) {
  check_shape("pool_forward", s);
  const int64_t outputs = int64_t(s.N) * s.C * s.P * s.Q;
  auto kernel = fits_32_bits(outputs) ? pool_forward_kernel<unsigned> : pool_forward_kernel<int64_t>;
  launch("pool_forward", kernel, grid_for(outputs), dim3(kThreads), 0, stream, s, x, y);
}

void pool_backward(const PoolShape& s, const float* x, const float* dy, float* dx, bool accumulate, GpuStream stream) {
  check_shape("pool_backward", s);
  const int64_t inputs = int64_t(s.N) * s.C * s.H * s.W;
  auto kernel = fits_32_bits(inputs) ? pool_backward_kernel<unsigned> : pool_backward_kernel<int64_t>;
  launch("pool_backward", kernel, grid_for(inputs), dim3(kThreads), 0, stream, s, x, dy, dx, accumulate);
}

}  // namespace kernels::MASSMAP_GPU_NS
