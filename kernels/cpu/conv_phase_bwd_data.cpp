// Strided backward data by phases (kernels/cpu/conv_phase_bwd_data.h).
#include "kernels/cpu/conv_phase_bwd_data.h"

#include <omp.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/conv_direct_fwd.h"
#include "kernels/cpu/cpu_isa.h"

namespace kernels {
namespace cpu {

namespace {

// Strides up to this run by phases (stride_h * stride_w stride-1 problems).
constexpr int kMaxPhaseStride = 4;

// Taps of a filter of `extent` along an axis that phase `a` of `stride` sees: a, a + stride, ... < extent.
int phase_taps(int extent, int stride, int a) {
  return a >= extent ? 0 : (extent - a + stride - 1) / stride;
}

// Phase (taps_h x taps_w sub-filter)'s stride-1 problem over `images` images: dy as it lies, dx dense with the rows
// i = 0 .. P + taps_h - 2 of the phase (every row that some dy row reaches), the columns likewise.
ConvShape phase_shape(const ConvShape& s, int taps_h, int taps_w, int images) {
  ConvShape p = s;
  p.N = images;
  p.H = s.P + taps_h - 1, p.W = s.Q + taps_w - 1;
  p.R = taps_h, p.S = taps_w;
  p.stride_h = p.stride_w = 1, p.pad_h = p.pad_w = 0;
  p.x = Placement::dense(s.C, p.H, p.W);
  return p;
}

struct Phase {
  int taps_h = 0, taps_w = 0;  // 0: no tap reaches the phase; its dx is 0 (or left as it is when accumulating)
  int rows = 0, columns = 0;   // its dense dx plane: P + taps_h - 1 by Q + taps_w - 1 (0 without taps)
  std::vector<float> w;        // (K, Cg, taps_h, taps_w): w[:, :, a::stride_h, b::stride_w]
  int64_t offset = 0;          // its dx's first float in an image's buffer
  bool reached() const { return taps_h > 0 && taps_w > 0; }
};

// out[2k] (+)= even[k], out[2k + 1] (+)= odd[k] for k < pairs: the compiler's interleaving stores.
void interleave(const float* __restrict even, const float* __restrict odd, int pairs, float* __restrict out,
                bool accumulate) {
  if (accumulate) {
    for (int k = 0; k < pairs; ++k) out[2 * k] += even[k], out[2 * k + 1] += odd[k];
  } else {
    for (int k = 0; k < pairs; ++k) out[2 * k] = even[k], out[2 * k + 1] = odd[k];
  }
}

// Row h of dx's plane (n, c) from the phases' planes of that image (`planes`): row (h + pad_h) / sh of phase
// (h + pad_h) % sh, column x from column (x + pad_w) / sw of phase (x + pad_w) % sw; what no dy row reaches is 0.
void copy_row(const ConvShape& s, const std::vector<Phase>& phases, const float* planes, int64_t c, int h, float* out,
              bool accumulate) {
  const int sh = s.stride_h, sw = s.stride_w;
  const int a = (h + s.pad_h) % sh, i = (h + s.pad_h) / sh;
  struct Run {                  // phase b's share of the row
    const float* in = nullptr;  // (columns) row i of its plane c; null: no dy row reaches the row
    int x0 = 0, xs = 0;         // its first column of dx, and its columns: x0, x0 + sw, ... < W
    int reached = 0;            // its first columns that a dy column reaches
  } runs[kMaxPhaseStride];
  for (int b = 0; b < sw; ++b) {
    const Phase& ph = phases[size_t(a * sw + b)];
    Run& r = runs[b];
    r.x0 = (b - s.pad_w % sw + sw) % sw;
    r.xs = r.x0 < s.W ? (s.W - r.x0 + sw - 1) / sw : 0;
    const int j0 = (r.x0 + s.pad_w) / sw;  // the phase's column under x0
    if (i < ph.rows && j0 < ph.columns) {
      r.in = planes + ph.offset + (c * ph.rows + i) * int64_t(ph.columns) + j0;
      r.reached = std::min(ph.columns - j0, r.xs);
    }
  }
  int done = 0;  // columns of every phase written so far
  if (sw == 2) {
    const Run &even = runs[runs[0].x0 == 0 ? 0 : 1], &odd = runs[runs[0].x0 == 0 ? 1 : 0];
    done = std::min(even.reached, odd.reached);
    if (done > 0) interleave(even.in, odd.in, done, out, accumulate);
  }
  for (int b = 0; b < sw; ++b) {
    const Run& r = runs[b];
    float* o = out + r.x0;
    if (accumulate) {
      for (int k = done; k < r.reached; ++k) o[k * sw] += r.in[k];
    } else {
      for (int k = done; k < r.reached; ++k) o[k * sw] = r.in[k];
      for (int k = std::max(done, r.reached); k < r.xs; ++k) o[k * sw] = 0.f;
    }
  }
}

}  // namespace

// mapnet_bn_fine conv1 (16 -> 32, 3x3 stride 2 on 91x91, batch 64; bench/cpu_conv_bench, 2 threads, alternating
// runs, nothing else running), ms, col + col2im / by phases:
//   AVX-512 13.7-14.0 / 11.1-11.7 (half of col's time went to col2im's scattered adds; the phases of the whole batch
//     and then the copy into dx, bound by memory and waiting on the phases: 12.3-12.9);
//   portable 34.1-34.7 / 30.6-31.5;
//   AVX2 15.9-16.4 / 17.3-17.7: its stride-1 backward data is the channel-vectorised kernel, which loses on the
//     phases' 16 channels and 1-2 taps per axis; it keeps col.
bool conv_phase_bwd_data_applies(const ConvShape& s) {
  if (s.stride_h == 1 && s.stride_w == 1) return false;
  if (active_cpu_isa() == CpuIsa::avx2) return false;
  if (s.stride_h > kMaxPhaseStride || s.stride_w > kMaxPhaseStride) return false;
  return conv_direct_bwd_data_applies(
      phase_shape(s, phase_taps(s.R, s.stride_h, 0), phase_taps(s.S, s.stride_w, 0), s.N));
}

void conv_backward_data_by_phases(const ConvShape& s, const float* dy, const float* w, float* dx, bool accumulate) {
  check_conv_shape(s);
  if (s.stride_h > kMaxPhaseStride || s.stride_w > kMaxPhaseStride)
    throw std::invalid_argument("conv_backward_data_by_phases: stride " + std::to_string(s.stride_h) + "x" +
                                std::to_string(s.stride_w) + " beyond " + std::to_string(kMaxPhaseStride));
  const int sh = s.stride_h, sw = s.stride_w, Cg = s.C / s.groups;
  std::vector<Phase> phases(size_t(sh) * sw);  // phase (a, b) at a * sw + b
  int64_t image_floats = 0;                    // every phase's dx of one image
  for (int a = 0; a < sh; ++a)
    for (int b = 0; b < sw; ++b) {
      Phase& ph = phases[size_t(a * sw + b)];
      ph.taps_h = phase_taps(s.R, sh, a), ph.taps_w = phase_taps(s.S, sw, b);
      if (!ph.reached()) continue;
      ph.rows = s.P + ph.taps_h - 1, ph.columns = s.Q + ph.taps_w - 1;
      ph.w.resize(size_t(s.K) * Cg * ph.taps_h * ph.taps_w);
      float* to = ph.w.data();
      for (int64_t kc = 0; kc < int64_t(s.K) * Cg; ++kc)
        for (int t = 0; t < ph.taps_h; ++t)
          for (int u = 0; u < ph.taps_w; ++u) *to++ = w[(kc * s.R + a + t * sh) * s.S + b + u * sw];
      ph.offset = image_floats;
      image_floats += int64_t(s.C) * ph.rows * ph.columns;
    }
  // An image per item, on one thread from its phases to its rows of dx, its phases' planes in that thread's cache:
  // while one thread computes, the other copies (bound by memory). With fewer images than threads the images run one
  // after another, each phase on every thread. Either way each output is summed inside one stride-1 call, so the bits
  // are the same.
  auto image = [&](int n) {
    thread_local std::vector<float> buffer;
    buffer.resize(size_t(image_floats));
    float* planes = buffer.data();  // per phase (C, rows, columns)
    for (const Phase& ph : phases) {
      if (!ph.reached()) continue;
      conv_backward_data(phase_shape(s, ph.taps_h, ph.taps_w, 1), dy + int64_t(n) * s.y.batch_stride, ph.w.data(),
                         planes + ph.offset, false);
    }
    for (int64_t c = 0; c < s.C; ++c) {
      float* out = dx + s.x.plane(n, c);  // (H, W)
      for (int h = 0; h < s.H; ++h) copy_row(s, phases, planes, c, h, out + int64_t(h) * s.W, accumulate);
    }
  };
  if (s.N < omp_get_max_threads()) {
    for (int n = 0; n < s.N; ++n) image(n);
    return;
  }
#pragma omp parallel for schedule(dynamic, 1)
  for (int n = 0; n < s.N; ++n) image(n);
}

}  // namespace cpu
}  // namespace kernels
