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
// So every instruction set takes up to 8 input channels per group (the direct forward's family).
bool conv_direct_filter_applies(const ConvShape& s) {
  const int Cg = s.C / s.groups;
  return Cg <= 8;
}

void conv_backward_filter_direct(const ConvShape& s, const float* x, const float* dy, float* dw, bool accumulate) {
  const CpuIsa isa = active_cpu_isa();
  (isa == CpuIsa::avx512 ? conv_backward_filter_direct_avx512
   : isa == CpuIsa::avx2 ? conv_backward_filter_direct_avx2
                         : conv_backward_filter_direct_portable)(s, x, dy, dw, accumulate);
}

}  // namespace cpu
}  // namespace kernels
