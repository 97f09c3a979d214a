// Which convolutions the direct kernels run, and their instruction set (kernels/cpu/conv_direct_fwd.h).
#include "kernels/cpu/conv_direct_fwd.h"

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

// Many channels (a stride-1 filter of more than one tap, more than 8 input channels per group): im2col + GEMM pays for
// packing a col panel per block of every image (a cost per multiply-add of 1/Kg), and its blocks follow rows of
// GEMM tiles, so two threads get unequal shares of a 13x13 map; the channel-vectorised kernel packs only the weights
// and cuts each image into equal runs of positions. Measured with a harness that alternates the paths call by call
// (2 threads, forward + bias + ReLU, the fastest of 12 calls in ms, channel-vectorised / im2col; the machine shared,
// experiments stopped, load 2.5-3):
//   AVX-512: AlexNet conv2 (5x5, 27x27, groups 2) batch 4 8.24 / 8.88, conv3 (13x13) 5.83 / 6.12, conv4 4.37 / 4.61,
//     conv5 2.87 / 3.14; VGG-16 conv1_2 (224x224, 64 channels) batch 1 18.6 / 20.1, conv3_2 (56x56, 256) 17.8 / 18.8,
//     conv5_2 (14x14, 512) batch 4 18.2 / 19.2. The position-vectorised kernel (conv_forward_direct) with channel
//     blocks: conv1_2 19.4 (even), conv3_2 22.1, conv3 11.3, conv5_2 28.9 (lanes lost past Q on small maps). One
//     thread is even with im2col (conv3 12.4-13.0 / 12.1-12.7): the gain is in the sharing.
//   AVX2 (an earlier build, weights packed 16 taps at a time): conv2 11.1 / 13.2, conv3 6.22 / 7.19, conv5 4.13 / 4.42,
//     conv1_2 23.0 / 30.4, conv3_2 21.9 / 26.2, conv5_2 23.9 / 30.7. portable (SSE2): conv3 18.7 / 23.3, conv3_2 56
//     / 77.
// 16-47 output channels per group and strided layers, measured later (bench/cpu_conv_bench, 2 threads, ms per call,
// this kernel / im2col, experiments stopped; a k block narrower than 64 channels gets tiles of more positions, and
// unpadded layers are read in place):
//   AVX-512: mapnet_bn_fine conv1 (16 -> 32, 3x3 stride 2, 91x91, batch 64) 5.7-6.3 / 10.9-11.7, conv2 (32 -> 32,
//     45x45) 8.5-9.1 / 13.3; GoogLeNet inception 3a 5x5 (16 -> 32, 28x28, batch 8) 0.59-0.60 / 0.95; 3x3 stride 2
//     pad 1 on 56x56, 32 -> 32 batch 16 1.18-1.19 / 1.89-1.91, 64 -> 128 batch 4 1.70-1.71 / 2.38-2.39; 3x3 pad 1
//     24 -> 24 on 40x40 batch 16 1.47-1.48 / 1.93-1.95. Backward-data (24 -> 24) 1.49-1.50 / 1.61-1.62, inception
//     3a 5x5 0.68-0.69 / 0.87-0.88, mapnet_bn_fine conv2 10.4-11.1 / 14.5.
//   AVX2: conv1 8.6 / 13.3, conv2 13.6 / 22.0, 3a 5x5 0.98 / 1.43; backward-data conv2 17.1 / 19.7, 3a 5x5 0.91 / 1.28.
//   portable: conv1 20.6 / 29.9, conv2 35.1 / 55.4, 3a 5x5 2.55 / 3.97; backward-data conv2 38.7 / 52.4, 3a 5x5 2.68
//     / 3.81.
// 1x1 layers were not measured: they keep im2col. Nor were more than 512 or fewer than 16 output channels per group,
// or weights past the measured 2.4M floats per group (VGG-16 conv5_2): each run of positions streams all of them,
// which must come from L3, so a convolutionalised fc6 (4096 x 256 x 6 x 6, 38M floats) keeps im2col's blocked GEMM.
namespace {
bool kvec_fits(int64_t Kg, int64_t Cg, int64_t RS) {
  return Kg >= 16 && Kg <= 512 && Kg * Cg * RS <= (int64_t(5) << 19);
}
}  // namespace

bool conv_direct_kvec_applies(const ConvShape& s) {
  const int Kg = s.K / s.groups, Cg = s.C / s.groups;
  return Cg > 8 && s.R * s.S > 1 && kvec_fits(Kg, Cg, s.R * s.S);
}

namespace {

using Body = void (*)(const ConvShape&, const float*, const float*, const float*, float*, ConvEpilogue, bool);
using KvecBody = void (*)(const ConvShape&, const float*, const float*, const float*, float*, ConvEpilogue, bool, bool);

Body position_body() {
  const CpuIsa isa = active_cpu_isa();
  return isa == CpuIsa::avx512 ? conv_forward_direct_avx512
         : isa == CpuIsa::avx2 ? conv_forward_direct_avx2
                               : conv_forward_direct_portable;
}

KvecBody kvec_body() {
  const CpuIsa isa = active_cpu_isa();
  return isa == CpuIsa::avx512 ? conv_forward_direct_kvec_avx512
         : isa == CpuIsa::avx2 ? conv_forward_direct_kvec_avx2
                               : conv_forward_direct_kvec_portable;
}

}  // namespace

void conv_forward_direct(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                         ConvEpilogue epilogue) {
  position_body()(s, x, w, b, y, epilogue, false);
}

void conv_forward_direct_kvec(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                              ConvEpilogue epilogue) {
  kvec_body()(s, x, w, b, y, epilogue, false, false);
}

// Stride 1 only (a strided backward-data is not a plain correlation of dy). Measured as the forward rule (2 threads,
// the fastest of 12 alternating calls in ms, direct / im2col + col2im):
//   AVX-512: AlexNet conv2 batch 4 8.23 / 9.00, conv3 5.73-5.84 / 5.84-5.87, conv4 4.30-4.39 / 4.42-4.51, conv5 2.88 /
//     3.02; VGG-16 conv1_2 batch 1 18.6 / 21.4, conv3_2 17.95 / 18.05, conv5_2 batch 4 17.7-18.2 / 18.3-19.1.
//   AVX2: conv3 12.1 / 12.5, conv5 5.80 / 6.42, conv5_2 19.1 / 20.9; with an earlier build (the turned weights made
//     by one thread before the kernel packed them) conv2 8.83 / 11.9, conv1_2 20.3 / 32.7, conv3_2 22.5 / 27.0.
//   portable: conv3 15.9 / 19.4, conv5_2 49.7 / 59.0, conv2 26.0 / 32.6, conv1_2 52 / 71.
// So: the forward rule on the turned shape (dy's K/G channels are reduced over, dx's C/G are the outputs).
bool conv_direct_bwd_data_applies(const ConvShape& s) {
  if (s.stride_h != 1 || s.stride_w != 1 || s.pad_h >= s.R || s.pad_w >= s.S) return false;
  const int Kg = s.K / s.groups, Cg = s.C / s.groups;
  return Kg > 8 && s.R * s.S > 1 && kvec_fits(Cg, Kg, s.R * s.S);
}

namespace {

// Where dx has 16 channels per group (one AVX-512 vector), the channel-vectorised kernel's tiles of 24 positions
// spend a broadcast on every multiply-add; the position-vectorised kernel (tiles of 6 channels x 4 vectors, 10 loads
// per 24 FMAs) is quicker there despite the lanes it loses past each row: inception 3a's 5x5 backward-data (32 -> 16
// channels on 28x28, batch 8; bench/cpu_conv_bench, 2 threads, experiments stopped, three alternating runs) 0.68-0.71x
// -> 0.73-0.74x oneDNN. Measured on AVX-512 only; the other sets keep the channel-vectorised kernel.
bool backward_data_by_positions(const ConvShape& s) {
  return active_cpu_isa() == CpuIsa::avx512 && s.C / s.groups <= 16;
}

// The turned shape's weights for the position-vectorised kernel, which reads them as a forward convolution's:
// (C, Kg, R, S) with [g*Cg + c][k][r][t] = w[g*Kg + k][c][R-1-r][S-1-t]. Calling thread's buffer, reused.
const float* turned_weights(const ConvShape& s, const float* w) {
  const int Kg = s.K / s.groups, Cg = s.C / s.groups, RS = s.R * s.S;
  thread_local std::vector<float> turned;
  turned.resize(size_t(s.C) * Kg * RS);
  for (int g = 0; g < s.groups; ++g)
    for (int c = 0; c < Cg; ++c)
      for (int k = 0; k < Kg; ++k) {
        const float* from = w + ((int64_t(g) * Kg + k) * Cg + c) * RS;  // (R, S) taps of filter k, channel c
        float* to = turned.data() + ((int64_t(g) * Cg + c) * Kg + k) * RS;
        for (int i = 0; i < RS; ++i) to[i] = from[RS - 1 - i];
      }
  return turned.data();
}

}  // namespace

void conv_backward_data_direct(const ConvShape& s, const float* dy, const float* w, float* dx, bool accumulate) {
  // The forward shape: dy (N, K, P, Q) in, dx (N, C, H, W) out, padded by R-1-pad so that output (h, w) reads
  // dy[h + pad - r][w + pad - t] at tap (R-1-r, S-1-t).
  ConvShape t = s;
  t.C = s.K, t.H = s.P, t.W = s.Q, t.K = s.C, t.P = s.H, t.Q = s.W;
  t.pad_h = s.R - 1 - s.pad_h, t.pad_w = s.S - 1 - s.pad_w;
  t.x = s.y, t.y = s.x;
  // Its weights (C, Kg, R, S) are w[g*Kg + k][c][R-1-r][S-1-t] at [g*Cg + c][k][r][t]: the kernel packs them so.
  if (backward_data_by_positions(s)) {
    position_body()(t, dy, turned_weights(s, w), nullptr, dx, ConvEpilogue{}, accumulate);
    return;
  }
  kvec_body()(t, dy, w, nullptr, dx, ConvEpilogue{}, accumulate, true);
}

}  // namespace cpu
}  // namespace kernels
