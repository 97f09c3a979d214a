#pragma once
// The phase planes of the direct few-channel convolution kernels (conv_direct_fwd_body.h, conv_direct_filter_body.h),
// included by each instruction set's file. Internal linkage only.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/conv.h"

namespace kernels {
namespace cpu {
namespace {

// Rows [first_row, first_row + rows) of phase plane (rp, tp) of one input channel x_c (H, W), pitch L, then zeros up
// to plane_floats: entry (a, i) = x_c[(first_row + a) * sh + rp - pad_h][i * sw + tp - pad_w], 0 outside the image.
inline void build_phase_plane(const ConvShape& s, const float* x_c, int rp, int tp, int first_row, int rows, int64_t L,
                              int64_t plane_floats, float* plane) {
  const int sh = s.stride_h, sw = s.stride_w;
  auto up = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
  // Entry i reads input column i*sw + tp - pad_w: inside the image for i in [i_lo, i_hi).
  const int64_t i_lo = std::min<int64_t>(L, up(std::max(s.pad_w - tp, 0), sw));
  const int64_t i_hi = std::clamp<int64_t>(up(s.W + s.pad_w - tp, sw), i_lo, L);
  for (int a = 0; a < rows; ++a) {
    float* out = plane + a * L;  // (L)
    const int h = (first_row + a) * sh + rp - s.pad_h;
    if (h < 0 || h >= s.H) {
      std::fill_n(out, L, 0.f);
      continue;
    }
    const float* x_row = x_c + int64_t(h) * s.W + tp - s.pad_w;  // x_row[i * sw] is entry i
    std::fill(out, out + i_lo, 0.f);
    if (sw == 1) {
      std::memcpy(out + i_lo, x_row + i_lo, size_t(i_hi - i_lo) * sizeof(float));
    } else if (sw == 2) {  // a constant stride, so the compiler vectorises the copy with permutes
      for (int64_t i = i_lo; i < i_hi; ++i) out[i] = x_row[i * 2];
    } else {
      for (int64_t i = i_lo; i < i_hi; ++i) out[i] = x_row[i * sw];
    }
    std::fill(out + i_hi, out + L, 0.f);
  }
  std::fill(plane + rows * L, plane + plane_floats, 0.f);
}

// The column phases tp = 0 .. phases_w - 1 of row phase rp, as build_phase_plane makes them, plane_floats apart from
// planes. Stride 2 in the columns reads each x row once for both phases (two planes built one after the other read
// it twice, with loads of every other float: half of AlexNet-like stride-2 layers' forward time went there).
inline void build_column_phases(const ConvShape& s, const float* x_c, int rp, int first_row, int rows, int64_t L,
                                int64_t plane_floats, int phases_w, float* planes) {
  if (s.stride_w != 2 || phases_w != 2) {
    for (int tp = 0; tp < phases_w; ++tp)
      build_phase_plane(s, x_c, rp, tp, first_row, rows, L, plane_floats, planes + tp * plane_floats);
    return;
  }
  // Entry i of phase tp reads column 2i + tp - pad_w; both phases read inside the row for i in [i_lo, i_hi).
  const int64_t i_lo = std::min<int64_t>(L, (s.pad_w + 1) / 2);
  const int64_t i_hi = std::clamp<int64_t>((s.W + s.pad_w) / 2, i_lo, L);
  for (int a = 0; a < rows; ++a) {
    float* out0 = planes + a * L;                 // (L): phase 0
    float* out1 = planes + plane_floats + a * L;  // (L): phase 1
    const int h = (first_row + a) * s.stride_h + rp - s.pad_h;
    if (h < 0 || h >= s.H) {
      std::fill_n(out0, L, 0.f);
      std::fill_n(out1, L, 0.f);
      continue;
    }
    const float* x_row = x_c + int64_t(h) * s.W;  // (W): x_row[2i + tp - pad_w] is entry i of phase tp
    auto entry = [&](int64_t i, int tp) {
      const int64_t w = 2 * i + tp - s.pad_w;
      return w >= 0 && w < s.W ? x_row[w] : 0.f;
    };
    for (int64_t i = 0; i < i_lo; ++i) out0[i] = entry(i, 0), out1[i] = entry(i, 1);
    const float* pairs = x_row + 2 * i_lo - s.pad_w;  // (i_hi - i_lo, 2)
    for (int64_t i = 0; i < i_hi - i_lo; ++i) {
      out0[i_lo + i] = pairs[2 * i];
      out1[i_lo + i] = pairs[2 * i + 1];
    }
    for (int64_t i = i_hi; i < L; ++i) out0[i] = entry(i, 0), out1[i] = entry(i, 1);
  }
  for (int tp = 0; tp < 2; ++tp)
    std::fill(planes + tp * plane_floats + rows * L, planes + (tp + 1) * plane_floats, 0.f);
}

}  // namespace
}  // namespace cpu
}  // namespace kernels
