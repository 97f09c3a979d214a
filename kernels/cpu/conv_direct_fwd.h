#pragma once
// Internal to the fast convolution: a direct forward kernel for convolutions with one or a few input channels per
// group (first layers on grey or RGB images such as AlexNet conv1 on mammograms, depthwise and small-group layers;
// up to 8 per group, by the measured rule in conv_direct_fwd.cpp), any stride, padding and filter size.
// conv_fast.cpp's conv_forward calls it where conv_direct_fwd_applies(s). The body (conv_direct_fwd_body.h) is
// compiled once per instruction set (conv_direct_fwd_<isa>.cpp); conv_forward_direct picks one by
// active_cpu_isa(), and each variant must only be called when the CPU supports it.
#include "kernels/conv.h"

namespace kernels {
namespace cpu {

// Whether conv_forward runs s through the direct kernel: a rule on the shape and the active instruction set, where
// the direct kernel was measured to beat im2col + GEMM (conv_direct_fwd.cpp).
bool conv_direct_fwd_applies(const ConvShape& s);

// y = epilogue(b + conv(x, w)) for any checked shape (fastest where conv_direct_fwd_applies); b nullable. Bit-identical
// for any thread count within one instruction set.
void conv_forward_direct(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                         ConvEpilogue epilogue);
void conv_forward_direct_portable(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                                  ConvEpilogue epilogue);
void conv_forward_direct_avx2(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                              ConvEpilogue epilogue);
void conv_forward_direct_avx512(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                                ConvEpilogue epilogue);

}  // namespace cpu
}  // namespace kernels
