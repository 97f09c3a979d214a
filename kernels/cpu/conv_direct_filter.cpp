// Which convolutions the direct few-input-channel backward filter runs, and its instruction set
// (kernels/cpu/conv_direct_filter.h).
#include "kernels/cpu/conv_direct_filter.h"

#include "kernels/cpu/cpu_isa.h"

namespace kernels {
namespace cpu {

// im2col + GEMM makes dW (Kg, Cg*R*S) from GEMMs whose output is small (96 x 121 for conv1 on one channel) and whose
// col costs a copy of the input per tap. Measured (2 threads, median ms direct / im2col, one shared and noisy machine:
// +-15%; batch, channels, size, K, filter, stride, pad, groups):
//   AVX-512: conv1 N4 C1 227 K96 11x11 s4 1.86 / 2.14; the same on C3 5.2 / 5.9; depthwise 3x3 C32 56x56 N4 0.35 /
//     3.2; 3x3 C8 K64 56x56 N2 0.37 / 0.57; 5x5 C6 G2 K64 27x27 N4 (AlexNet conv2's geometry, 3 per group) 0.25 /
//     0.27; VGG conv1_1 on C3 224x224 N1 1.41 / 4.0, on C1 0.77 / 2.8; 1x1 C4 K64 56x56 N4 0.10 / 0.25.
//   AVX2: the same shapes 2.4 / 3.1, 5.6 / 5.9 (best of 40), 0.27 / 1.9, 0.38 / 0.75, 0.24 / 0.35, 1.40 / 5.5, 0.76 /
//     3.8, 0.10 / 0.29.
//   portable (SSE2, a multiply and an add): 3.7 / 5.9, 10.9 / 16.5, 0.36 / 2.1, 0.75 / 1.2, 0.43 / 0.64, 3.0 / 11.3,
//     1.3 / 7.0, 0.14 / 0.35.
// So every instruction set takes up to 8 input channels per group (the direct forward's family), but for the shapes
// the channel-vectorised kernel takes.
// (Where conv_direct_filter_kvec_applies too, the channel-vectorised kernel is faster: AlexNet conv1 on 1 and 3
// channels.)
bool conv_direct_filter_applies(const ConvShape& s) {
  const int Cg = s.C / s.groups;
  return Cg <= 8 && !conv_direct_filter_kvec_applies(s);
}

void conv_backward_filter_direct(const ConvShape& s, const float* x, const float* dy, float* dw, bool accumulate) {
  const CpuIsa isa = active_cpu_isa();
  (isa == CpuIsa::avx512 ? conv_backward_filter_direct_avx512
   : isa == CpuIsa::avx2 ? conv_backward_filter_direct_avx2
                         : conv_backward_filter_direct_portable)(s, x, dy, dw, accumulate);
}

// Vectorised over output channels (conv_direct_filter_kvec_body.h): no col to pack, dy transposed once per call (a
// cost per multiply-add of 1/(Cg*R*S)). Measured on 2 threads of an Intel Xeon with AMX (AVX-512, two FMA pipes, 2 MB
// L2 per core; bench/cpu_conv_bench against oneDNN in the same run, experiments stopped; this kernel / the path before
// it: im2col + GEMM, or the few-channel kernel where C/G <= 8):
//   AVX-512: VGG-16 conv1_2 (64 -> 64, 224x224, batch 1) 1.32 / 0.66-0.69, conv3_2 (56x56) 0.98 / 0.77, conv5_2
//     (14x14, 512 -> 512) 0.93 / 0.87; AlexNet conv2 (48 per group, 27x27) 0.97 / 0.64-0.66, conv3-5 (13x13)
//     0.87-0.94 / 0.70-0.82, conv1 on 3 channels (11x11 stride 4, 363 taps) 0.94-0.97 / 0.50-0.52, on one channel
//     (121 taps) 0.83-0.86 / 0.46-0.49 (four runs of the suite's backward filter,
//     bench/results/cpu-conv-2026-12-07-bwd-filter.txt).
//   AVX2: conv1_2 0.83 / 0.47, conv3_2 0.59 / 0.50, conv5_2 0.58 / 0.54, conv2 0.48 / 0.46, conv3 0.61 / 0.55, conv5
//     0.53 / 0.49, conv1 on 3 channels 0.63 / 0.50, on one channel 0.60 / 0.42.
//   portable (SSE2, no FMA): conv2 61 / 49 GFLOP/s, conv3_2 57 / 49, conv3 63 / 50, conv5_2 63 / 50; but conv1 on 3
//     channels 59 / 68, on one channel 61 / 67 (the few-channel kernel).
// Later, 16-47 output channels per group and strided many-channel layers (the same bench, ms per call, this kernel /
// im2col + GEMM): AVX-512 mapnet_bn_fine conv1 (16 -> 32, 3x3 stride 2, 91x91, batch 64) 8.2-9.2 / 13.8, conv2 (32 ->
// 32, 45x45) 9.6-9.8 / 17.5; GoogLeNet inception 3a 5x5 (16 -> 32) 0.61-0.64 / 1.22; 3x3 stride 2 pad 1 on 56x56, 32
// -> 32 1.30-1.31 / 2.18-2.19, 64 -> 128 1.87-1.88 / 2.42-2.44; 3x3 24 -> 24 1.56-1.58 / 2.41-2.43. AVX2: conv1 11.1 /
// 17.4, conv2 13.3 / 23.1, 3a 5x5 0.84 / 1.53. portable: conv1 25.0 / 33.0, conv2 39.2 / 51.5, 3a 5x5 2.74 / 3.78.
// So: at least 121 taps, sums within the measured 2.6M floats per group (VGG-16 conv5_2's 2.4M; each thread keeps its
// share in memory), more than one tap per channel; 16-512 output channels per group with more than 8 input channels
// per group, any stride; or the few-channel family (48-512 output channels) on AVX-512 and AVX2. (With one input
// channel and 9 taps, mapnet_bn_fine's conv0, the few-channel kernel reads the same: 3.5 against 3.7 ms.)
bool conv_direct_filter_kvec_applies(const ConvShape& s) {
  const int64_t Kg = s.K / s.groups, Cg = s.C / s.groups, taps = Cg * s.R * s.S;
  if (Kg < 16 || Kg > 512 || taps < 121 || Kg * taps > (int64_t(5) << 19) || s.R * s.S == 1) return false;
  if (Cg <= 8) return Kg >= 48 && active_cpu_isa() != CpuIsa::portable;
  return true;
}

void conv_backward_filter_direct_kvec(const ConvShape& s, const float* x, const float* dy, float* dw, bool accumulate) {
  const CpuIsa isa = active_cpu_isa();
  (isa == CpuIsa::avx512 ? conv_backward_filter_direct_kvec_avx512
   : isa == CpuIsa::avx2 ? conv_backward_filter_direct_kvec_avx2
                         : conv_backward_filter_direct_kvec_portable)(s, x, dy, dw, accumulate);
}

}  // namespace cpu
}  // namespace kernels
