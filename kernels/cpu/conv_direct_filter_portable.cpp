// The direct backward filter for few input channels compiled for the baseline instruction set (SSE2 on x86-64):
// kernels/cpu/conv_direct_filter_body.h.
#include "kernels/cpu/conv_direct_filter.h"
#include "kernels/cpu/conv_direct_filter_kvec_body.h"

namespace kernels {
namespace cpu {

void conv_backward_filter_direct_portable(const ConvShape& s, const float* x, const float* dy, float* dw,
                                          bool accumulate) {
  conv_backward_filter_direct_body(s, x, dy, dw, accumulate);
}

void conv_backward_filter_direct_kvec_portable(const ConvShape& s, const float* x, const float* dy, float* dw,
                                               bool accumulate) {
  conv_backward_filter_direct_kvec_body(s, x, dy, dw, accumulate);
}

}  // namespace cpu
}  // namespace kernels
