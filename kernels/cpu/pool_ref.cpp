// Max and average pooling reference, as Caffe.
//   window (p, q) covers rows  hstart = p * stride_h - pad_h .. hstart + R - 1  (columns likewise)
//   max: y[p,q] = max of x over the window clipped to the image (padding never wins)
//   avg: y[p,q] = sum of x over the window clipped to the image / area, where
//        area = (hend - hstart) * (wend - wstart) with hend = min(hstart + R, H + pad_h) taken BEFORE clipping to
//        the image: a border window counts its padded cells but not the cells beyond the padded image.
//   backward, gather form: dx[h,w] = sum over the windows (p, q) containing (h, w) of
//        max: dy[p,q] if (h, w) is the window's first maximum in row-major order, else 0
//        avg: dy[p,q] / area(p, q)
// Shapes: x, dx (N, C, H, W); y, dy (N, C, P, Q).
#include <algorithm>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

#include "kernels/cpu/parallel_threshold.h"
#include "kernels/pool.h"

namespace kernels {
namespace {

// Caffe's CEIL output size along one axis; the last window must start inside the image or its left padding.
// Caffe applies that correction only when pad > 0; we apply it always, which differs only where Caffe would
// make an empty window (pad 0 and stride > window, e.g. in 5, window 1, stride 3).
int ceil_output_size(int in, int window, int stride, int pad) {
  int out = (in + 2 * pad - window + stride - 1) / stride + 1;  // ceil((in + 2 pad - window) / stride) + 1
  if ((out - 1) * stride >= in + pad) --out;
  return out;
}

// Every window must overlap the image: the first one ends past column 0 (pad < window) and the last one starts
// before the image's end ((out - 1) * stride - pad < in). Otherwise max pooling has an empty window and average
// pooling a zero area. out == kUnknown (in pool_shape, before the size is computed) skips the output checks.
constexpr int kUnknown = -1;

void check_axis(const char* axis, int in, int out, int window, int stride, int pad) {
  std::ostringstream problem;
  if (in <= 0 || window <= 0 || stride <= 0 || pad < 0 || (out != kUnknown && out <= 0)) {
    problem << "sizes must be positive and pad non-negative";
  } else if (pad >= window) {
    problem << "pad must be smaller than the window";
  } else if (in + 2 * pad < window) {
    problem << "window larger than the padded input";
  } else if (out != kUnknown && int64_t(out - 1) * stride - pad >= in) {
    problem << "the last window starts past the input";
  }
  if (problem.tellp() > 0) {
    std::ostringstream msg;
    msg << "pooling along " << axis << ": " << problem.str() << " (input " << in;
    if (out != kUnknown) msg << ", output " << out;
    msg << ", window " << window << ", stride " << stride << ", pad " << pad << ")";
    throw std::invalid_argument(msg.str());
  }
}

}  // namespace

PoolShape pool_shape(int N, int C, int H, int W, PoolMethod method, int kernel, int stride, int pad, bool global) {
  PoolShape s;
  s.N = N, s.C = C, s.H = H, s.W = W;
  s.method = method;
  if (global) {
    s.R = H, s.S = W;
    s.stride_h = s.stride_w = 1;
    s.pad_h = s.pad_w = 0;
  } else {
    s.R = s.S = kernel;
    s.stride_h = s.stride_w = stride;
    s.pad_h = s.pad_w = pad;
  }
  check_axis("height", H, kUnknown, s.R, s.stride_h, s.pad_h);  // before the formula: it assumes a valid geometry
  check_axis("width", W, kUnknown, s.S, s.stride_w, s.pad_w);
  s.P = ceil_output_size(H, s.R, s.stride_h, s.pad_h);
  s.Q = ceil_output_size(W, s.S, s.stride_w, s.pad_w);
  s.x = Placement::dense(C, H, W);
  s.y = Placement::dense(C, s.P, s.Q);
  check_pool_shape(s);
  return s;
}

void check_pool_shape(const PoolShape& s) {
  if (s.N <= 0 || s.C <= 0) {
    throw std::invalid_argument("pooling: N and C must be positive (N " + std::to_string(s.N) + ", C " +
                                std::to_string(s.C) + ")");
  }
  check_axis("height", s.H, s.P, s.R, s.stride_h, s.pad_h);
  check_axis("width", s.W, s.Q, s.S, s.stride_w, s.pad_w);
}

namespace ref {
namespace {

// One output window: its extent clipped to the image, and the Caffe divisor for average pooling.
struct Window {
  int h0, h1, w0, w1;  // image rows [h0, h1), columns [w0, w1)
  int area;            // cells of the window inside the padded image
};

Window window_at(const PoolShape& s, int p, int q) {
  int hstart = p * s.stride_h - s.pad_h, wstart = q * s.stride_w - s.pad_w;
  int hend = std::min(hstart + s.R, s.H + s.pad_h), wend = std::min(wstart + s.S, s.W + s.pad_w);
  const int area = (hend - hstart) * (wend - wstart);
  return {std::max(hstart, 0), std::min(hend, s.H), std::max(wstart, 0), std::min(wend, s.W), area};
}

// Offset (h * W + w) of the window's first maximum in row-major order.
int64_t window_argmax(const PoolShape& s, const float* x_plane, const Window& win) {
  int64_t best = int64_t(win.h0) * s.W + win.w0;
  for (int h = win.h0; h < win.h1; ++h)
    for (int w = win.w0; w < win.w1; ++w)
      if (x_plane[int64_t(h) * s.W + w] > x_plane[best]) best = int64_t(h) * s.W + w;
  return best;
}

float window_sum(const PoolShape& s, const float* x_plane, const Window& win) {
  float sum = 0.f;
  for (int h = win.h0; h < win.h1; ++h)
    for (int w = win.w0; w < win.w1; ++w) sum += x_plane[int64_t(h) * s.W + w];
  return sum;
}

// Output windows containing input index i along one axis: those with p * stride - pad <= i < ... + window.
void windows_containing(int i, int window, int stride, int pad, int out, int* first, int* last) {
  *first = i + pad < window ? 0 : (i + pad - window) / stride + 1;
  *last = std::min((i + pad) / stride + 1, out);  // exclusive
}

}  // namespace

void pool_forward(const PoolShape& s, const float* x, float* y) {
  check_pool_shape(s);
#pragma omp parallel for if (int64_t(s.N) * s.C * s.P * s.Q * s.R * s.S >= kParallelMinElements)
  for (int64_t nc = 0; nc < int64_t(s.N) * s.C; ++nc) {
    const int64_t n = nc / s.C, c = nc % s.C;
    const float* x_plane = x + s.x.plane(n, c);  // (H, W)
    float* y_plane = y + s.y.plane(n, c);        // (P, Q)
    for (int p = 0; p < s.P; ++p) {
      for (int q = 0; q < s.Q; ++q) {
        const Window win = window_at(s, p, q);
        y_plane[int64_t(p) * s.Q + q] = s.method == PoolMethod::max ? x_plane[window_argmax(s, x_plane, win)]
                                                                    : window_sum(s, x_plane, win) / float(win.area);
      }
    }
  }
}

void pool_backward(const PoolShape& s, const float* x, const float* dy, float* dx, bool accumulate) {
  check_pool_shape(s);
#pragma omp parallel for if (int64_t(s.N) * s.C * s.P * s.Q * s.R * s.S >= kParallelMinElements)
  for (int64_t nc = 0; nc < int64_t(s.N) * s.C; ++nc) {
    const int64_t n = nc / s.C, c = nc % s.C;
    const float* x_plane = x + s.x.plane(n, c);    // (H, W)
    const float* dy_plane = dy + s.y.plane(n, c);  // (P, Q)
    float* dx_plane = dx + s.x.plane(n, c);        // (H, W)
    for (int h = 0; h < s.H; ++h) {
      int p_first, p_last;
      windows_containing(h, s.R, s.stride_h, s.pad_h, s.P, &p_first, &p_last);
      for (int w = 0; w < s.W; ++w) {
        int q_first, q_last;
        windows_containing(w, s.S, s.stride_w, s.pad_w, s.Q, &q_first, &q_last);
        const int64_t here = int64_t(h) * s.W + w;
        float grad = 0.f;
        for (int p = p_first; p < p_last; ++p) {
          for (int q = q_first; q < q_last; ++q) {
            const Window win = window_at(s, p, q);
            const float g = dy_plane[int64_t(p) * s.Q + q];
            if (s.method == PoolMethod::avg) {
              grad += g / float(win.area);
            } else if (window_argmax(s, x_plane, win) == here) {
              grad += g;
            }
          }
        }
        dx_plane[here] = accumulate ? dx_plane[here] + grad : grad;
      }
    }
  }
}

}  // namespace ref
}  // namespace kernels
