// The fast LRN compiled with -mavx512f -mavx2 -mfma (this file only; CMakeLists.txt): kernels/cpu/lrn_body.h.
#include "kernels/lrn.h"

#if defined(__AVX512F__)
#include "kernels/cpu/lrn_body.h"

namespace kernels {
namespace cpu {

void lrn_forward_avx512(const LrnShape& s, const float* x, float* y) {
  lrn_forward_body(s, x, y);
}
void lrn_backward_avx512(const LrnShape& s, const float* x, const float* y, const float* dy, float* dx,
                         bool accumulate) {
  lrn_backward_body(s, x, y, dy, dx, accumulate);
}

}  // namespace cpu
}  // namespace kernels

#else  // a compiler or target without it: the dispatcher never selects it

#include <cstdlib>

void kernels::cpu::lrn_forward_avx512(const LrnShape&, const float*, float*) {
  std::abort();
}
void kernels::cpu::lrn_backward_avx512(const LrnShape&, const float*, const float*, const float*, float*, bool) {
  std::abort();
}

#endif
