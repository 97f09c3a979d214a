#pragma once
// Internal to the fast convolution: a direct forward kernel, any stride, padding, filter size and channel count, with
// the channels reduced in blocks that keep the working set in cache. conv_forward runs it for few input channels per
// group (first layers on grey or RGB images, depthwise and small-group layers) and for the many-channel layers on
// large maps where it was measured to win (the rule in conv_direct_fwd.cpp); conv_backward_data runs stride-1
// layers through it as a forward correlation of dy.
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

// Whether conv_backward_data runs s through conv_backward_data_direct (stride 1 only; measured rule in
// conv_direct_fwd.cpp).
bool conv_direct_bwd_data_applies(const ConvShape& s);
// dx (=, or += when accumulate) the backward data of a stride-1 convolution with pad_h < R and pad_w < S, as the
// direct forward correlation of dy (padded by R-1-pad) with the weights turned 180 degrees and in and out channels
// swapped. Bit-identical for any thread count within one instruction set.
void conv_backward_data_direct(const ConvShape& s, const float* dy, const float* w, float* dx, bool accumulate);

// The per-ISA bodies: y = epilogue(b + conv(x, w)), or with accumulate y = epilogue(y + b + conv(x, w)) (the sum
// starts from y's value).
void conv_forward_direct_portable(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                                  ConvEpilogue epilogue, bool accumulate);
void conv_forward_direct_avx2(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                              ConvEpilogue epilogue, bool accumulate);
void conv_forward_direct_avx512(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                                ConvEpilogue epilogue, bool accumulate);

}  // namespace cpu
}  // namespace kernels
