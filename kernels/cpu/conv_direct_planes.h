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
    } else {
      for (int64_t i = i_lo; i < i_hi; ++i) out[i] = x_row[i * sw];
    }
    std::fill(out + i_hi, out + L, 0.f);
  }
  std::fill(plane + rows * L, plane + plane_floats, 0.f);
}

}  // namespace
}  // namespace cpu
}  // namespace kernels
