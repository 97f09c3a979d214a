#pragma once
// Internal to the fast convolution: direct forward kernels (no im2col), any stride, padding and filter size.
// - Position-vectorised (conv_direct_fwd_body.h): one register tile is a few output channels x a run of output
//   positions; for few input channels per group (first layers on grey or RGB images, depthwise and small-group
//   layers), where conv_direct_fwd_applies.
// - Channel-vectorised (conv_direct_kvec_body.h): one register tile is a few positions x vectors of output channels;
//   for many input channels (AlexNet conv2-5, VGG-16), where conv_direct_kvec_applies; and for stride-1 backward-data
//   as a forward correlation of dy, where conv_direct_bwd_data_applies.
// Both reduce the input channels in blocks that keep the working set in cache, in a fixed order per output, so the
// results are bit-identical for any thread count. The rules (conv_direct_fwd.cpp) are measured. The bodies are
// compiled once per instruction set (conv_direct_fwd_<isa>.cpp) and picked by active_cpu_isa(); each variant must only
// be called when the CPU supports it.
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

// Whether conv_forward runs s through conv_forward_direct_kvec (many channels; measured rule in conv_direct_fwd.cpp).
bool conv_direct_kvec_applies(const ConvShape& s);
// The same as conv_forward_direct, vectorised over output channels (conv_direct_kvec_body.h): no lanes lost to the
// columns past Q on small maps; each thread takes an equal share of (group, chunk of output channels, image, run of
// positions) items and packs its own chunks' weights. Bit-identical for any thread count.
void conv_forward_direct_kvec(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                              ConvEpilogue epilogue);

// Whether conv_backward_data runs s through conv_backward_data_direct (stride 1 only; measured rule in
// conv_direct_fwd.cpp).
bool conv_direct_bwd_data_applies(const ConvShape& s);
// dx (=, or += when accumulate) the backward data of a stride-1 convolution with pad_h < R and pad_w < S, as the
// channel-vectorised forward correlation of dy (padded by R-1-pad) with the weights turned 180 degrees and in and out
// channels swapped. Bit-identical for any thread count within one instruction set.
void conv_backward_data_direct(const ConvShape& s, const float* dy, const float* w, float* dx, bool accumulate);

// The per-ISA bodies (position- and channel-vectorised): y = epilogue(b + conv(x, w)), or with accumulate y =
// epilogue(y + b + conv(x, w)) (the sum starts from y's value).
void conv_forward_direct_portable(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                                  ConvEpilogue epilogue, bool accumulate);
void conv_forward_direct_avx2(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                              ConvEpilogue epilogue, bool accumulate);
void conv_forward_direct_avx512(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                                ConvEpilogue epilogue, bool accumulate);
// The same vectorised over output channels instead of positions (conv_direct_kvec_body.h): no lanes lost on small maps.
// With turned, w is the weights of the convolution whose backward-data s computes (s being its turned forward
// shape, conv_backward_data_direct): packed turned by 180 degrees with in and out channels swapped.
void conv_forward_direct_kvec_portable(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                                       ConvEpilogue epilogue, bool accumulate, bool turned);
void conv_forward_direct_kvec_avx2(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                                   ConvEpilogue epilogue, bool accumulate, bool turned);
void conv_forward_direct_kvec_avx512(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                                     ConvEpilogue epilogue, bool accumulate, bool turned);

}  // namespace cpu
}  // namespace kernels
