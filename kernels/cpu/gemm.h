#pragma once
// Our own CPU SGEMM on kernels::GemmShape (row-major, op(A) and op(B) transposes, alpha, beta; beta == 0 never
// reads C): packed panels sized to the caches and register-blocked micro-kernels per instruction set, threaded
// with OpenMP over a 2-D split of C. Each element of C is summed in the same order whatever the split, so the
// result is bit-identical for any thread count.
#include "kernels/cpu/cpu_isa.h"
#include "kernels/linear.h"

namespace kernels {
namespace cpu {

// Runs on active_cpu_isa().
void gemm(const GemmShape& s, const float* a, const float* b, float* c);
// Runs on `isa` (throws std::invalid_argument if this CPU lacks it).
void gemm(const GemmShape& s, const float* a, const float* b, float* c, CpuIsa isa);

}  // namespace cpu
}  // namespace kernels
