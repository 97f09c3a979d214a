#pragma once
// Internal to the fast LRN: the body (kernels/cpu/lrn_body.h) compiled once per instruction set; lrn_fast.cpp
// picks one by active_cpu_isa(). Each must only be called when the CPU supports it.
#include "kernels/lrn.h"

namespace kernels {
namespace cpu {

void lrn_forward_portable(const LrnShape& s, const float* x, float* y);
void lrn_forward_avx2(const LrnShape& s, const float* x, float* y);
void lrn_forward_avx512(const LrnShape& s, const float* x, float* y);
void lrn_backward_portable(const LrnShape& s, const float* x, const float* y, const float* dy, float* dx,
                           bool accumulate);
void lrn_backward_avx2(const LrnShape& s, const float* x, const float* y, const float* dy, float* dx, bool accumulate);
void lrn_backward_avx512(const LrnShape& s, const float* x, const float* y, const float* dy, float* dx,
                         bool accumulate);

}  // namespace cpu
}  // namespace kernels
