#pragma once
// Where an (N, C, H, W) activation sits inside its buffer. Kernels address every activation through one of these,
// so a producer can write straight into its channel slice of a wider (concatenated) buffer and a backward pass
// can read its slice of the gradient, with no copies.
#include <cstdint>

namespace kernels {

struct Placement {
  int64_t batch_stride = 0;    // elements from image n to image n+1 (C_total * H * W for a concat slice)
  int64_t channel_stride = 0;  // elements from channel c to c+1 (H * W for NCHW)
  int64_t channel_offset = 0;  // first channel of this tensor inside the wider buffer

  static Placement dense(int64_t C, int64_t H, int64_t W) { return {C * H * W, H * W, 0}; }
  // Offset of plane (n, c); pixel (y, x) of that plane is at plane(n, c) + y * W + x.
  int64_t plane(int64_t n, int64_t c) const { return n * batch_stride + (channel_offset + c) * channel_stride; }
};

}  // namespace kernels
