// The fast LRN compiled for the baseline instruction set (SSE2 on x86-64): kernels/cpu/lrn_body.h.
#include "kernels/cpu/lrn_body.h"

namespace kernels {
namespace cpu {

void lrn_forward_portable(const LrnShape& s, const float* x, float* y) {
  lrn_forward_body(s, x, y);
}
void lrn_backward_portable(const LrnShape& s, const float* x, const float* y, const float* dy, float* dx,
                           bool accumulate) {
  lrn_backward_body(s, x, y, dy, dx, accumulate);
}

}  // namespace cpu
}  // namespace kernels
