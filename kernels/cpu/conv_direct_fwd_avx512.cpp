// The direct forward convolution compiled with -mavx512f -mavx2 -mfma (this file only; CMakeLists.txt):
// kernels/cpu/conv_direct_fwd_body.h.
#include "kernels/cpu/conv_direct_fwd.h"

#if defined(__AVX512F__)
#include "kernels/cpu/conv_direct_kvec_body.h"

namespace kernels {
namespace cpu {

void conv_forward_direct_avx512(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                                ConvEpilogue epilogue, bool accumulate) {
  conv_forward_direct_body(s, x, w, b, y, epilogue, accumulate);
}

void conv_forward_direct_kvec_avx512(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                                     ConvEpilogue epilogue, bool accumulate, bool turned) {
  conv_forward_direct_kvec_body(s, x, w, b, y, epilogue, accumulate, turned);
}

}  // namespace cpu
}  // namespace kernels

#else  // a compiler or target without it: the dispatcher never selects it

#include <cstdlib>

void kernels::cpu::conv_forward_direct_avx512(const ConvShape&, const float*, const float*, const float*, float*,
                                              ConvEpilogue, bool) {
  std::abort();
}
void kernels::cpu::conv_forward_direct_kvec_avx512(const ConvShape&, const float*, const float*, const float*, float*,
                                                   ConvEpilogue, bool, bool) {
  std::abort();
}

#endif
