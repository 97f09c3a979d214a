// Local response normalisation reference (across channels, as Caffe).
//   window(c) = channels c - (size-1)/2 .. c + size/2, clipped to [0, C)
//   scale[c]  = k + alpha/size * sum_{c' in window(c)} x[c']^2
//   y[c]      = x[c] * scale[c]^-beta
//   dx[c]     = dy[c] * scale[c]^-beta
//               - 2 alpha beta / size * x[c] * sum_{c' : c in window(c')} dy[c'] * y[c'] / scale[c']
// All at one (n, h, w). c in window(c') exactly when c' runs over c - size/2 .. c + (size-1)/2.
// Sums and powers are taken in double: this is the ground truth the fast paths are compared with.
// Shapes: x, y, dx, dy (N, C, H, W); dx placed as x, dy as y.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/cpu/parallel_threshold.h"
#include "kernels/lrn.h"

namespace kernels::ref {
namespace {

// scale at channel c, pixel offset i (h * W + w) of image n.
double scale_at(const LrnShape& s, const float* x, int64_t n, int c, int64_t i) {
  const int first = std::max(c - (s.size - 1) / 2, 0), last = std::min(c + s.size / 2, s.C - 1);
  double sum_sq = 0;
  for (int cc = first; cc <= last; ++cc) {
    const double v = x[s.x.plane(n, cc) + i];
    sum_sq += v * v;
  }
  return double(s.k) + double(s.alpha) / s.size * sum_sq;
}

}  // namespace

void lrn_forward(const LrnShape& s, const float* x, float* y) {
  const int64_t plane_size = int64_t(s.H) * s.W;
#pragma omp parallel for if (int64_t(s.N) * s.C * plane_size * s.size >= kParallelMinElements)
  for (int64_t nc = 0; nc < int64_t(s.N) * s.C; ++nc) {
    const int64_t n = nc / s.C;
    const int c = int(nc % s.C);
    const float* x_plane = x + s.x.plane(n, c);  // (H, W)
    float* y_plane = y + s.y.plane(n, c);        // (H, W)
    for (int64_t i = 0; i < plane_size; ++i)
      y_plane[i] = float(x_plane[i] * std::pow(scale_at(s, x, n, c, i), -double(s.beta)));
  }
}

void lrn_backward(const LrnShape& s, const float* x, const float* y, const float* dy, float* dx, bool accumulate) {
  const int64_t plane_size = int64_t(s.H) * s.W;
  const double cross_factor = 2.0 * s.alpha * s.beta / s.size;
#pragma omp parallel for if (int64_t(s.N) * s.C * plane_size * s.size >= kParallelMinElements)
  for (int64_t nc = 0; nc < int64_t(s.N) * s.C; ++nc) {
    const int64_t n = nc / s.C;
    const int c = int(nc % s.C);
    const float* x_plane = x + s.x.plane(n, c);    // (H, W)
    const float* dy_plane = dy + s.y.plane(n, c);  // (H, W)
    float* dx_plane = dx + s.x.plane(n, c);        // (H, W)
    // The channels whose window contains c.
    const int first = std::max(c - s.size / 2, 0), last = std::min(c + (s.size - 1) / 2, s.C - 1);
    for (int64_t i = 0; i < plane_size; ++i) {
      double cross = 0;  // sum over those channels of dy * y / scale
      for (int cc = first; cc <= last; ++cc) {
        const int64_t at = s.y.plane(n, cc) + i;
        cross += double(dy[at]) * y[at] / scale_at(s, x, n, cc, i);
      }
      const double direct = dy_plane[i] * std::pow(scale_at(s, x, n, c, i), -double(s.beta));
      const float grad = float(direct - cross_factor * x_plane[i] * cross);
      dx_plane[i] = accumulate ? dx_plane[i] + grad : grad;
    }
  }
}

}  // namespace kernels::ref
