// Fast CPU max / average pooling (as kernels/cpu/pool_ref.cpp, Caffe's CEIL windows), threaded over (image, channel)
// planes.
//   forward   per output row p: the window's rows reduced column by column into one row (a loop along W that the
//             compiler vectorises), then each output q reduces its S columns of that row.
//   backward  per plane, each window's gradient goes to its cells in (p, q) order: max to the window's first maximum
//             in row-major order (recomputed from x, as the reference), avg dy / area to every cell. Each dx cell
//             receives its windows in the reference's gather order (p, then q), so both match it bit for bit; one
//             thread owns a plane, so there are no races and any thread count gives the same bits.
// Average forward sums rows first, so it differs from the reference's row-major sum by rounding only.
// Shapes: x, dx (N, C, H, W); y, dy (N, C, P, Q).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cpu/parallel_threshold.h"
#include "kernels/pool.h"

namespace kernels {
namespace cpu {
namespace {

struct Span {
  int lo, hi;  // image rows (or columns) [lo, hi)
  int padded;  // cells inside the padded image: Caffe's divisor along this axis
};

// Window i along one axis, clipped to the image, with Caffe's padded extent.
Span span(int i, int stride, int pad, int window, int in) {
  const int start = i * stride - pad, end = std::min(start + window, in + pad);
  return {std::max(start, 0), std::min(end, in), end - start};
}

}  // namespace

void pool_forward(const PoolShape& s, const float* x, float* y) {
  check_pool_shape(s);
  const bool is_max = s.method == PoolMethod::max;
#pragma omp parallel if (int64_t(s.N) * s.C * s.H * s.W * s.R >= kParallelMinElements)
  {
    std::vector<float> row(size_t(s.W));  // (W): the window rows of output row p, reduced
#pragma omp for schedule(static)
    for (int64_t nc = 0; nc < int64_t(s.N) * s.C; ++nc) {
      const int64_t n = nc / s.C, c = nc % s.C;
      const float* x_plane = x + s.x.plane(n, c);  // (H, W)
      float* y_plane = y + s.y.plane(n, c);        // (P, Q)
      for (int p = 0; p < s.P; ++p) {
        const Span h = span(p, s.stride_h, s.pad_h, s.R, s.H);
        float* r = row.data();
        std::copy_n(x_plane + int64_t(h.lo) * s.W, s.W, r);
        for (int hh = h.lo + 1; hh < h.hi; ++hh) {
          const float* xr = x_plane + int64_t(hh) * s.W;  // (W)
          if (is_max) {
            for (int w = 0; w < s.W; ++w) r[w] = xr[w] > r[w] ? xr[w] : r[w];
          } else {
            for (int w = 0; w < s.W; ++w) r[w] += xr[w];
          }
        }
        float* yr = y_plane + int64_t(p) * s.Q;  // (Q)
        for (int q = 0; q < s.Q; ++q) {
          const Span w = span(q, s.stride_w, s.pad_w, s.S, s.W);
          float v = r[w.lo];
          if (is_max) {
            for (int ww = w.lo + 1; ww < w.hi; ++ww) v = r[ww] > v ? r[ww] : v;
          } else {
            for (int ww = w.lo + 1; ww < w.hi; ++ww) v += r[ww];
            v /= float(h.padded * w.padded);
          }
          yr[q] = v;
        }
      }
    }
  }
}

void pool_backward(const PoolShape& s, const float* x, const float* dy, float* dx, bool accumulate) {
  check_pool_shape(s);
  const bool is_max = s.method == PoolMethod::max;
#pragma omp parallel if (int64_t(s.N) * s.C * s.P * s.Q * s.R * s.S >= kParallelMinElements)
  {
    std::vector<float> grad(size_t(s.H) * s.W);  // (H, W): this plane's gradient, before accumulate
#pragma omp for schedule(static)
    for (int64_t nc = 0; nc < int64_t(s.N) * s.C; ++nc) {
      const int64_t n = nc / s.C, c = nc % s.C;
      const float* x_plane = x + s.x.plane(n, c);    // (H, W)
      const float* dy_plane = dy + s.y.plane(n, c);  // (P, Q)
      float* dx_plane = dx + s.x.plane(n, c);        // (H, W)
      float* g = grad.data();
      std::fill(g, g + grad.size(), 0.f);
      for (int p = 0; p < s.P; ++p) {
        const Span h = span(p, s.stride_h, s.pad_h, s.R, s.H);
        for (int q = 0; q < s.Q; ++q) {
          const Span w = span(q, s.stride_w, s.pad_w, s.S, s.W);
          const float d = dy_plane[int64_t(p) * s.Q + q];
          if (is_max) {
            // Selects, not branches: on real data the argmax is unpredictable, and mispredictions cost more than
            // the compares.
            int64_t best = int64_t(h.lo) * s.W + w.lo;
            float best_value = x_plane[best];
            for (int hh = h.lo; hh < h.hi; ++hh) {
              const float* xr = x_plane + int64_t(hh) * s.W;
              for (int ww = w.lo; ww < w.hi; ++ww) {
                const bool better = xr[ww] > best_value;
                best = better ? int64_t(hh) * s.W + ww : best;
                best_value = better ? xr[ww] : best_value;
              }
            }
            g[best] += d;
          } else {
            const float share = d / float(h.padded * w.padded);
            for (int hh = h.lo; hh < h.hi; ++hh)
              for (int ww = w.lo; ww < w.hi; ++ww) g[int64_t(hh) * s.W + ww] += share;
          }
        }
      }
      for (int hh = 0; hh < s.H; ++hh) {
        float* d = dx_plane + int64_t(hh) * s.W;  // (W)
        const float* gr = g + int64_t(hh) * s.W;
        if (accumulate) {
          for (int ww = 0; ww < s.W; ++ww) d[ww] += gr[ww];
        } else {
          std::copy_n(gr, s.W, d);
        }
      }
    }
  }
}

}  // namespace cpu
}  // namespace kernels
