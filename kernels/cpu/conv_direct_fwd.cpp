// Which convolutions the direct few-input-channel kernel runs, and its instruction set (kernels/cpu/conv_direct_fwd.h).
#include "kernels/cpu/conv_direct_fwd.h"

#include <cstdlib>
#include <vector>

#include "kernels/cpu/cpu_isa.h"

namespace kernels {
namespace cpu {

// im2col + GEMM reduces over only Cg*R*S there (121 for conv1 on one channel, 9 for a 3x3 depthwise layer), too short
// for the GEMM's packing to pay. Measured (2 threads, forward + bias + ReLU, median ms direct / im2col, machine shared
// and noisy: +-15%):
//   One input channel per group, AVX-512: AlexNet conv1 on 1x227x227 batch 4 1.42 / 1.75, batch 1 0.36 / 0.56; VGG
//     conv1_1 on 1x224x224 0.48 / 0.84; GoogLeNet conv1 (7x7 stride 2 pad 3) batch 4 1.78 / 2.32; depthwise 3x3
//     C32 56x56 0.19 / 0.61; C2 groups 2 5x5 0.25 / 0.34; 1x1 C1 K64 0.24 / 0.58. AVX2: the same layers 1.57 /
//     2.45, 0.40 / 0.65, 1.24 / 1.64, 3.0 / 4.4, 0.33 / 1.06, 0.36 / 0.82, 0.51 / 2.2.
//   A few input channels per group (two rounds each, AVX-512 then AVX2): AlexNet conv1 on 3 channels batch 4 4.4-4.7
//     / 5.0-6.0 and 5.7-5.9 / 5.9-7.3; GoogLeNet conv1 on 3 channels 5.5-5.7 / 7.2-10.5 and 6.4-8.1 / 8.8-9.8; 3x3
//     112x112 K64 batch 2 with 4 channels 0.60-0.71 / 0.94-1.16 and 1.0-1.1 / 1.4-2.1, with 8 channels 1.1-1.3 /
//     1.4-2.0 and 1.7-2.0 / 2.9-3.1; 5x5 on 27x27 with 3 channels per group (AlexNet conv2's geometry) 0.18 / 0.24-0.36
//     and 0.26-0.31 / 0.36-0.40. With 16 channels (3x3 on 56x56) AVX2 was even (0.78-1.07 / 0.99-1.25): the rule stops
//     at 8.
//   portable (SSE2, a multiply and an add per tap, no FMA): with one channel per group, 3x3 depthwise-like layers win
//     with 1, 4 and 8 output channels per group (0.55 / 1.41, 0.35 / 0.45, 0.61 / 0.68) and lose from 16 on (0.80 /
//     0.61 with 16, 1.23 / 0.97 with 32, conv1's 96 at batch 4 5.7 / 5.3), so there the GEMM keeps the rest.
bool conv_direct_fwd_applies(const ConvShape& s) {
  const int Cg = s.C / s.groups, Kg = s.K / s.groups;
  if (active_cpu_isa() == CpuIsa::portable) return Cg == 1 && Kg <= 8;
  return Cg <= 8;
}

namespace {

using Body = void (*)(const ConvShape&, const float*, const float*, const float*, float*, ConvEpilogue, bool);

Body direct_body() {
  const CpuIsa isa = active_cpu_isa();
  return isa == CpuIsa::avx512 ? conv_forward_direct_avx512
         : isa == CpuIsa::avx2 ? conv_forward_direct_avx2
                               : conv_forward_direct_portable;
}

}  // namespace

void conv_forward_direct(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                         ConvEpilogue epilogue) {
  direct_body()(s, x, w, b, y, epilogue, false);
}

bool conv_direct_bwd_data_applies(const ConvShape& s) {
  if (s.stride_h != 1 || s.stride_w != 1 || s.pad_h >= s.R || s.pad_w >= s.S) return false;
  return false;
}

void conv_backward_data_direct(const ConvShape& s, const float* dy, const float* w, float* dx, bool accumulate) {
  const int Kg = s.K / s.groups, Cg = s.C / s.groups, RS = s.R * s.S;
  // The forward shape: dy (N, K, P, Q) in, dx (N, C, H, W) out, padded by R-1-pad so that output (h, w) reads
  // dy[h + pad - r][w + pad - t] at tap (R-1-r, S-1-t).
  ConvShape t = s;
  t.C = s.K, t.H = s.P, t.W = s.Q, t.K = s.C, t.P = s.H, t.Q = s.W;
  t.pad_h = s.R - 1 - s.pad_h, t.pad_w = s.S - 1 - s.pad_w;
  t.x = s.y, t.y = s.x;
  // Its weights (C, Kg, R, S): w_t[g*Cg + c][k][r][t] = w[g*Kg + k][c][R-1-r][S-1-t].
  thread_local std::vector<float> turned;
  turned.resize(size_t(s.K) * Cg * RS);
  for (int g = 0; g < s.groups; ++g)
    for (int c = 0; c < Cg; ++c)
      for (int k = 0; k < Kg; ++k) {
        const float* src = w + (int64_t(g * Kg + k) * Cg + c) * RS;        // (R, S)
        float* dst = turned.data() + (int64_t(g * Cg + c) * Kg + k) * RS;  // (R, S)
        for (int i = 0; i < RS; ++i) dst[i] = src[RS - 1 - i];
      }
  direct_body()(t, dy, turned.data(), nullptr, dx, ConvEpilogue{}, accumulate);
}

}  // namespace cpu
}  // namespace kernels
