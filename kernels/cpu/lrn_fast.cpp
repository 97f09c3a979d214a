// The fast CPU LRN: checks the shape and runs the body (kernels/cpu/lrn_body.h) of the active instruction set.
#include <stdexcept>
#include <string>

#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/lrn_isa.h"

namespace kernels {
namespace cpu {
namespace {

void check_lrn_shape(const LrnShape& s) {
  if (s.N < 0 || s.C < 0 || s.H < 0 || s.W < 0 || s.size < 1 || s.x.channel_stride < int64_t(s.H) * s.W ||
      s.y.channel_stride < int64_t(s.H) * s.W)
    throw std::invalid_argument("cpu lrn: N " + std::to_string(s.N) + ", C " + std::to_string(s.C) + ", H " +
                                std::to_string(s.H) + ", W " + std::to_string(s.W) + ", size " +
                                std::to_string(s.size) + " (sizes >= 0, size >= 1, planes at least H * W apart)");
}

}  // namespace

void lrn_forward(const LrnShape& s, const float* x, float* y) {
  check_lrn_shape(s);
  const CpuIsa isa = active_cpu_isa();
  (isa == CpuIsa::avx512 ? lrn_forward_avx512 : isa == CpuIsa::avx2 ? lrn_forward_avx2 : lrn_forward_portable)(s, x, y);
}

void lrn_backward(const LrnShape& s, const float* x, const float* y, const float* dy, float* dx, bool accumulate) {
  check_lrn_shape(s);
  const CpuIsa isa = active_cpu_isa();
  (isa == CpuIsa::avx512 ? lrn_backward_avx512
   : isa == CpuIsa::avx2 ? lrn_backward_avx2
                         : lrn_backward_portable)(s, x, y, dy, dx, accumulate);
}

}  // namespace cpu
}  // namespace kernels
