// The direct forward convolution compiled for the baseline instruction set (SSE2 on x86-64):
// kernels/cpu/conv_direct_fwd_body.h.
#include "kernels/cpu/conv_direct_fwd.h"
#include "kernels/cpu/conv_direct_kvec_body.h"

namespace kernels {
namespace cpu {

void conv_forward_direct_portable(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                                  ConvEpilogue epilogue, bool accumulate) {
  conv_forward_direct_body(s, x, w, b, y, epilogue, accumulate);
}

void conv_forward_direct_kvec_portable(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                                       ConvEpilogue epilogue, bool accumulate, bool turned) {
  conv_forward_direct_kvec_body(s, x, w, b, y, epilogue, accumulate, turned);
}

}  // namespace cpu
}  // namespace kernels
