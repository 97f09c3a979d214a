#pragma once
// What the CPU GEMM tests share: a reference summed in double, shapes with padded leading dimensions, and the check
// of kernels::cpu::gemm against the reference on every instruction set this CPU runs.
//
// Tolerance: |ours - ref| <= atol + rtol * |ref| with atol = 1e-5 * sqrt(K) + 1e-6, rtol = 1e-5: a float sum of K
// products of values in [-1, 1] is off by ~1e-7 * sqrt(K), a missing term by >= ~1e-3.
#include <omp.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "tests/support/check.h"
#include "tests/support/cpu_kernel_cases.h"

namespace testing_support {

// C = alpha * op(A) * op(B) + beta * C in double; only the M x N entries of C change.
inline void reference_gemm(const kernels::GemmShape& s, const float* a, const float* b, float* c) {
  for (int m = 0; m < s.M; ++m) {
    for (int n = 0; n < s.N; ++n) {
      double sum = 0;
      for (int k = 0; k < s.K; ++k) {
        const double av = s.trans_a ? a[k * s.lda + m] : a[m * s.lda + k];
        const double bv = s.trans_b ? b[n * s.ldb + k] : b[k * s.ldb + n];
        sum += av * bv;
      }
      float& out = c[m * s.ldc + n];
      out = float(s.alpha * sum + (s.beta != 0.f ? double(s.beta) * out : 0.0));
    }
  }
}

// Leading dimensions `pad` floats past the stored rows' lengths (C's 2 pad).
inline kernels::GemmShape shape(int M, int N, int K, bool ta, bool tb, int pad, float alpha = 1.f, float beta = 0.f) {
  return {M, N, K, ta, tb, (ta ? M : K) + pad, (tb ? K : N) + pad, N + 2 * pad, alpha, beta};
}

inline std::string describe(const kernels::GemmShape& s) {
  return "M" + std::to_string(s.M) + " N" + std::to_string(s.N) + " K" + std::to_string(s.K) +
         (s.trans_a ? " A^T" : "") + (s.trans_b ? " B^T" : "") + " ld " + std::to_string(s.lda) + "/" +
         std::to_string(s.ldb) + "/" + std::to_string(s.ldc) + " alpha " + std::to_string(s.alpha) + " beta " +
         std::to_string(s.beta);
}

// Operands start `shift` floats into their buffers (1: not 16-byte aligned). C starts as random values, or NaN
// when beta == 0 (it must not be read); the whole buffer, padding included, is compared with the reference's.
inline void check_gemm(const kernels::GemmShape& s, int shift, const std::string& what) {
  using Buffer = std::vector<float>;
  const size_t a_rows = s.trans_a ? s.K : s.M, b_rows = s.trans_b ? s.N : s.K;
  const Buffer a = random_vector(shift + a_rows * s.lda, 11), b = random_vector(shift + b_rows * s.ldb, 12);
  Buffer c0 = random_vector(shift + size_t(s.M) * s.ldc, 13);
  Buffer expected = c0;
  reference_gemm(s, a.data() + shift, b.data() + shift, expected.data() + shift);
  if (s.beta == 0.f) {
    for (int m = 0; m < s.M; ++m)
      for (int n = 0; n < s.N; ++n) c0[shift + m * s.ldc + n] = NAN;
  }
  const float atol = 1e-5f * std::sqrt(float(s.K)) + 1e-6f;
  for (const kernels::cpu::CpuIsa isa : supported_isas()) {
    Buffer c = c0;
    kernels::cpu::gemm(s, a.data() + shift, b.data() + shift, c.data() + shift, isa);
    expect_close(c, expected, atol, 1e-5f, what + " " + describe(s) + " on " + kernels::cpu::cpu_isa_name(isa));
  }
}

// Runs gemm with `threads` OpenMP threads and returns C.
inline std::vector<float> run_with_threads(const kernels::GemmShape& s, const std::vector<float>& a,
                                           const std::vector<float>& b, kernels::cpu::CpuIsa isa, int threads) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  std::vector<float> c(size_t(s.M) * s.ldc, 0.5f);
  kernels::cpu::gemm(s, a.data(), b.data(), c.data(), isa);
  omp_set_num_threads(saved);
  return c;
}

// gemm on 2 and 3 OpenMP threads gives one thread's bits, on every ISA this CPU runs.
inline void check_same_bits_for_threads(const kernels::GemmShape& s, const std::vector<float>& a,
                                        const std::vector<float>& b, const std::string& what) {
  for (const kernels::cpu::CpuIsa isa : supported_isas()) {
    INFO(what << " " << describe(s) << " on " << kernels::cpu::cpu_isa_name(isa));
    const std::vector<float> one = run_with_threads(s, a, b, isa, 1);
    for (const int threads : {2, 3}) {
      const std::vector<float> many = run_with_threads(s, a, b, isa, threads);
      CHECK(std::memcmp(one.data(), many.data(), one.size() * sizeof(float)) == 0);
    }
  }
}

}  // namespace testing_support
