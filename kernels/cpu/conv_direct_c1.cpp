// Which convolutions the direct one-input-channel kernel runs, and its instruction set (kernels/cpu/conv_direct_c1.h).
#include "kernels/cpu/conv_direct_c1.h"

#include "kernels/cpu/cpu_isa.h"

namespace kernels {
namespace cpu {

// Every shape with one input channel per group: im2col + GEMM has a reduction of only R*S there (121 for conv1, 9
// for a 3x3), too short for the GEMM's packing to pay, and the direct kernel was faster on each one measured
// (AVX-512, 2 threads, forward + bias + ReLU, median ms direct / im2col): AlexNet conv1 on 1x227x227 at batch 4
// 1.42 / 1.75 and batch 1 0.36 / 0.56, VGG conv1_1 on 1x224x224 0.48 / 0.84, GoogLeNet conv1 (7x7 stride 2 pad 3)
// at batch 4 1.78 / 2.32, depthwise 3x3 (C32 56x56) 0.19 / 0.61, C2 groups 2 5x5 0.25 / 0.34, a 1x1 C1 layer 0.24 /
// 0.58.
bool conv_direct_c1_applies(const ConvShape& s) {
  return s.C == s.groups;
}

void conv_forward_direct_c1(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                            ConvEpilogue epilogue) {
  const CpuIsa isa = active_cpu_isa();
  (isa == CpuIsa::avx512 ? conv_forward_direct_c1_avx512
   : isa == CpuIsa::avx2 ? conv_forward_direct_c1_avx2
                         : conv_forward_direct_c1_portable)(s, x, w, b, y, epilogue);
}

}  // namespace cpu
}  // namespace kernels
