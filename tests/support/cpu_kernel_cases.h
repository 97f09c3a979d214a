#pragma once
// What the CPU kernel tests share: the instruction sets this CPU runs, and convolution shapes with separate strides
// and paddings per axis, placed as channel slices of wider buffers or with gaps between planes, with the buffer sizes
// they need.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kernels/conv.h"
#include "kernels/cpu/cpu_isa.h"
#include "tests/support/check.h"

namespace testing_support {

// portable, then avx2 and avx512 where this CPU runs them.
inline std::vector<kernels::cpu::CpuIsa> supported_isas() {
  using kernels::cpu::CpuIsa;
  std::vector<CpuIsa> isas;
  for (const CpuIsa isa : {CpuIsa::portable, CpuIsa::avx2, CpuIsa::avx512})
    if (kernels::cpu::cpu_isa_supported(isa)) isas.push_back(isa);
  return isas;
}

// A dense shape with strides (sh, sw) and paddings (ph, pw); P and Q as Caffe computes them.
inline kernels::ConvShape conv_shape_hw(int N, int C, int H, int W, int K, int R, int S, int sh, int sw, int ph, int pw,
                                        int groups) {
  kernels::ConvShape s = kernels::conv_shape(N, C, H, W, K, R, S, 1, 0, groups);
  s.stride_h = sh, s.stride_w = sw, s.pad_h = ph, s.pad_w = pw;
  s.P = (H + 2 * ph - R) / sh + 1, s.Q = (W + 2 * pw - S) / sw + 1;
  s.y = kernels::Placement::dense(K, s.P, s.Q);
  return s;
}

// x as channels [x_offset, x_offset + C) of an x_total-channel buffer, y (or dy) as [y_offset, y_offset + K) of
// y_total.
inline kernels::ConvShape placed(kernels::ConvShape s, int x_offset, int x_total, int y_offset, int y_total) {
  const int64_t x_plane = int64_t(s.H) * s.W, y_plane = int64_t(s.P) * s.Q;
  s.x = {x_total * x_plane, x_plane, x_offset};
  s.y = {y_total * y_plane, y_plane, y_offset};
  return s;
}

// Planes need not be contiguous with each other: gaps of 3 floats after every x plane and 2 after every y plane.
inline kernels::ConvShape gapped(kernels::ConvShape s) {
  const int64_t x_plane = int64_t(s.H) * s.W + 3, y_plane = int64_t(s.P) * s.Q + 2;
  s.x = {s.C * x_plane, x_plane, 0};
  s.y = {s.K * y_plane, y_plane, 0};
  return s;
}

// Floats the x, y and w buffers of s span (y: whole batch strides, so a placed slice's buffer has room for the rest).
inline size_t x_size(const kernels::ConvShape& s) {
  return size_t((s.N - 1) * s.x.batch_stride + s.x.plane(0, s.C - 1) + int64_t(s.H) * s.W);
}
inline size_t y_size(const kernels::ConvShape& s) {
  return size_t(
      std::max((s.N - 1) * s.y.batch_stride + s.y.plane(0, s.K - 1) + int64_t(s.P) * s.Q, s.N * s.y.batch_stride));
}
inline size_t w_size(const kernels::ConvShape& s) {
  return size_t(s.K) * (s.C / s.groups) * s.R * s.S;
}

// Whether buffer index i is an element of some plane (`plane` floats each) of channels [0, channels) placed by `place`.
inline bool in_planes(const kernels::Placement& place, int N, int channels, int64_t plane, size_t i) {
  const int64_t n = int64_t(i) / place.batch_stride, rest = int64_t(i) - n * place.batch_stride;
  const int64_t c = rest / place.channel_stride - place.channel_offset, at = rest % place.channel_stride;
  return n < N && c >= 0 && c < channels && at < plane;
}
inline bool in_y(const kernels::ConvShape& s, size_t i) {
  return in_planes(s.y, s.N, s.K, int64_t(s.P) * s.Q, i);
}
inline bool in_x(const kernels::ConvShape& s, size_t i) {
  return in_planes(s.x, s.N, s.C, int64_t(s.H) * s.W, i);
}
// Entries outside `inside` that differ between the buffer after and before a kernel ran.
inline size_t changed_outside(const std::vector<float>& after, const std::vector<float>& before,
                              const std::function<bool(size_t)>& inside) {
  size_t changed = 0;
  for (size_t i = 0; i < after.size(); ++i)
    if (!inside(i) && after[i] != before[i]) ++changed;
  return changed;
}

// A fast sum of `terms` products of values in [-1, 1] against the reference: |fast - ref| <= 1e-5 sqrt(terms) + 1e-6
// + 1e-5 |ref|, so one missing term (about 1e-3 on average) fails.
inline void expect_sum_close(const std::vector<float>& fast, const std::vector<float>& ref, int terms,
                             const std::string& what) {
  expect_close(fast, ref, 1e-5f * std::sqrt(float(terms)) + 1e-6f, 1e-5f, what);
}

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace testing_support
