#pragma once
// Internal to the fast convolution: a direct backward-filter kernel for convolutions with few input channels per
// group (the same family as the direct forward, kernels/cpu/conv_direct_fwd.h: AlexNet, VGG and GoogLeNet conv1 on
// grey or RGB images, depthwise and small-group layers), any stride, padding and filter size. conv_fast.cpp's
// conv_backward_filter calls it where conv_direct_filter_applies(s). The body (conv_direct_filter_body.h) is compiled
// once per instruction set (conv_direct_filter_<isa>.cpp); conv_backward_filter_direct picks one by active_cpu_isa(),
// and each variant must only be called when the CPU supports it.
#include "kernels/conv.h"

namespace kernels {
namespace cpu {

// Whether conv_backward_filter runs s through the direct kernel: a rule on the shape and the active instruction set,
// where it was measured to beat im2col + GEMM (conv_direct_filter.cpp).
bool conv_direct_filter_applies(const ConvShape& s);

// dw (K, C/G, R, S) (+)= sum over n, p, q of dy * x for any checked shape (fastest where conv_direct_filter_applies).
// Bit-identical for any thread count within one instruction set.
void conv_backward_filter_direct(const ConvShape& s, const float* x, const float* dy, float* dw, bool accumulate);
void conv_backward_filter_direct_portable(const ConvShape& s, const float* x, const float* dy, float* dw,
                                          bool accumulate);
void conv_backward_filter_direct_avx2(const ConvShape& s, const float* x, const float* dy, float* dw, bool accumulate);
void conv_backward_filter_direct_avx512(const ConvShape& s, const float* x, const float* dy, float* dw,
                                        bool accumulate);

// Whether conv_backward_filter runs s through conv_backward_filter_direct_kvec (measured rule in
// conv_direct_filter.cpp; checked before conv_direct_filter_applies).
bool conv_direct_filter_kvec_applies(const ConvShape& s);
// The same dw vectorised over output channels (conv_direct_filter_kvec_body.h): any checked shape, fastest on many
// channels. Bit-identical for any thread count within one instruction set.
void conv_backward_filter_direct_kvec(const ConvShape& s, const float* x, const float* dy, float* dw, bool accumulate);
void conv_backward_filter_direct_kvec_portable(const ConvShape& s, const float* x, const float* dy, float* dw,
                                               bool accumulate);
void conv_backward_filter_direct_kvec_avx2(const ConvShape& s, const float* x, const float* dy, float* dw,
                                           bool accumulate);
void conv_backward_filter_direct_kvec_avx512(const ConvShape& s, const float* x, const float* dy, float* dw,
                                             bool accumulate);

}  // namespace cpu
}  // namespace kernels
