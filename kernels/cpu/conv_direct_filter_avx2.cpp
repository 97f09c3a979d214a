// The direct backward filter for few input channels compiled with -mavx2 -mfma (this file only; CMakeLists.txt):
// kernels/cpu/conv_direct_filter_body.h.
#include "kernels/cpu/conv_direct_filter.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "kernels/cpu/conv_direct_filter_kvec_body.h"

namespace kernels {
namespace cpu {

void conv_backward_filter_direct_avx2(const ConvShape& s, const float* x, const float* dy, float* dw, bool accumulate) {
  conv_backward_filter_direct_body(s, x, dy, dw, accumulate);
}

void conv_backward_filter_direct_kvec_avx2(const ConvShape& s, const float* x, const float* dy, float* dw,
                                           bool accumulate) {
  conv_backward_filter_direct_kvec_body(s, x, dy, dw, accumulate);
}

}  // namespace cpu
}  // namespace kernels

#else  // a compiler or target without it: the dispatcher never selects it

#include <cstdlib>

void kernels::cpu::conv_backward_filter_direct_avx2(const ConvShape&, const float*, const float*, float*, bool) {
  std::abort();
}
void kernels::cpu::conv_backward_filter_direct_kvec_avx2(const ConvShape&, const float*, const float*, float*, bool) {
  std::abort();
}

#endif
