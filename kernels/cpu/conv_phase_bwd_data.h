#pragma once
// Internal to the fast convolution: the backward-data pass of a strided convolution as stride_h x stride_w stride-1
// problems, one per phase of dx.
//
// Output row h of dx gets dy's rows only through the taps r with h + pad = stride * p + r, so the rows of one phase
// a = (h + pad) mod stride see only the taps r = a, a + stride, ... : row i = (h + pad) / stride of that phase is
//   dx_a[i] = sum over t of w[a + stride * t] * dy[i - t],
// the backward data of a stride-1 convolution with the sub-filter w[a::stride] (ceil((R - a) / stride) taps, none
// where a >= R). So a 3x3 stride-2 layer is four stride-1 problems with 2x2, 2x1, 1x2 and 1x1 filters, each run by
// the direct kernels (no col, no col2im scatter of 9 rows per position) into a dense buffer, then copied into dx's
// strided rows. Each output element is summed inside one stride-1 call, so the bits follow the shape alone.
#include "kernels/conv.h"

namespace kernels {
namespace cpu {

// Whether conv_backward_data runs s by phases: strided (at most 4 per axis), its largest phase a shape the direct
// stride-1 backward data takes (conv_direct_bwd_data_applies), on AVX-512 or portable; measured rule in
// conv_phase_bwd_data.cpp.
bool conv_phase_bwd_data_applies(const ConvShape& s);

// dx (=, or += when accumulate) the backward data of any checked shape with strides up to 4 (std::invalid_argument
// beyond), by phases. Bit-identical for any thread count within one instruction set.
void conv_backward_data_by_phases(const ConvShape& s, const float* dy, const float* w, float* dx, bool accumulate);

}  // namespace cpu
}  // namespace kernels
