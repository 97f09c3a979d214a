// The CPU GEMM's streaming small-M path (kernels/cpu/gemm_stream.h: B stored transposed, up to 128 rows of C, B of
// 4 MB or more; AVX-512 only), the shape of a fully connected layer's forward pass. Shapes here are checked to take
// that path on AVX-512 (and the blocked one on the other ISAs): against the double reference on every ISA (rows of C
// that are not multiples of 16 or past one 64-row pass, columns not multiples of the 6-column tile, K past one
// packed slice of op(A)^T and not a multiple of KC, padded and misaligned operands, alpha / beta); the same bits as the
// blocked path (so linear layers keep their bits whichever path a shape takes); the same bits for 1, 2 and 3 threads.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_stream.h"
#include "tests/support/check.h"
#include "tests/support/cpu_kernel_cases.h"
#include "tests/support/gemm_check.h"

using kernels::GemmShape;
using kernels::cpu::CpuIsa;
using testing_support::check_gemm;
using testing_support::check_same_bits_for_threads;
using testing_support::describe;
using testing_support::random_vector;
using testing_support::shape;
using testing_support::supported_isas;
using Buffer = std::vector<float>;

namespace {

// K rows past one packed slice of op(A)^T for M (and not a multiple of KC): the later slices add to C.
int past_one_slice(int M) {
  return kernels::cpu::stream_slice_k(M) + 1000;
}

// Columns enough for B to reach the path's minimum size.
int columns_for(int K) {
  return int(kernels::cpu::kStreamMinBFloats / K) + 5;
}

bool takes_stream_path(const GemmShape& s) {
  return kernels::cpu::gemm_stream_applies(s, CpuIsa::avx512);
}

// B stored (N, K), handed to gemm_packed panel by panel: the blocked path's micro-kernel on the same operands.
struct TransposedPanels {
  const float* b;
  int64_t ldb;
};
void pack_transposed(const void* context, int k0, int kc, int col0, int cols, int nr, float* dst) {
  const TransposedPanels& p = *static_cast<const TransposedPanels*>(context);
  for (int j = 0; j < (cols + nr - 1) / nr * nr; ++j)
    for (int k = 0; k < kc; ++k)
      dst[int64_t(j / nr) * kc * nr + int64_t(k) * nr + j % nr] = j < cols ? p.b[(col0 + j) * p.ldb + k0 + k] : 0.f;
}

}  // namespace

TEST_CASE("which shapes the streaming path takes") {
  const int K = 4096, N = columns_for(K);
  CHECK(takes_stream_path(shape(64, N, K, false, true, 0)));
  CHECK(takes_stream_path(shape(kernels::cpu::kStreamMaxRows, N, K, true, true, 0)));
  CHECK_FALSE(takes_stream_path(shape(kernels::cpu::kStreamMaxRows + 1, N, K, false, true, 0)));
  CHECK_FALSE(takes_stream_path(shape(64, N, K, false, false, 0)));
  CHECK_FALSE(takes_stream_path(shape(64, N - 10, K, false, true, 0)));
  for (const CpuIsa isa : {CpuIsa::portable, CpuIsa::avx2})
    CHECK_FALSE(kernels::cpu::gemm_stream_applies(shape(64, N, K, false, true, 0), isa));
}

TEST_CASE("streaming path matches the reference: row counts, odd columns, K past a slice, padding, misalignment") {
  // (M, K, A transposed, pad, shift)
  const int cases[][5] = {{1, 300, 0, 0, 0},
                          {7, 1500, 1, 1, 1},
                          {16, 800, 0, 0, 0},
                          {37, 3000, 0, 3, 1},
                          {64, 1000, 1, 0, 0},
                          {67, 700, 0, 1, 1},
                          {128, 500, 1, 2, 1},
                          {100, 450, 0, 0, 0},
                          {5, past_one_slice(5), 0, 1, 1},
                          {64, past_one_slice(64), 0, 0, 0},
                          {121, past_one_slice(121), 1, 1, 1}};
  for (const auto& cs : cases) {
    const GemmShape s = shape(cs[0], columns_for(cs[1]), cs[1], cs[2] != 0, true, cs[3]);
    REQUIRE_MESSAGE(takes_stream_path(s), describe(s));
    check_gemm(s, cs[4], "streaming");
  }
}

TEST_CASE("streaming path: alpha and beta over one and several slices") {
  for (const int K : {900, past_one_slice(48)}) {
    const int N = columns_for(K);
    check_gemm(shape(48, N, K, false, true, 1, 1.f, 1.f), 1, "accumulate");
    check_gemm(shape(48, N, K, true, true, 0, 2.f, 0.5f), 0, "alpha 2, beta 0.5");
    check_gemm(shape(48, N, K, false, true, 0, -0.5f, 0.f), 1, "alpha -0.5, beta 0 over NaN");
  }
}

TEST_CASE("streaming path gives the blocked path's bits") {
  if (!kernels::cpu::cpu_isa_supported(CpuIsa::avx512)) return;
  const CpuIsa isa = CpuIsa::avx512;
  for (const int M : {3, 64, 77}) {
    for (const int K : {1000, past_one_slice(M)}) {
      const GemmShape s = shape(M, columns_for(K), K, M == 77, true, 1);
      REQUIRE(takes_stream_path(s));
      const Buffer a = random_vector(size_t(s.trans_a ? s.K : s.M) * s.lda, 31);
      const Buffer b = random_vector(size_t(s.N) * s.ldb, 32);
      Buffer packed(size_t(kernels::cpu::gemm_packed_a_floats(s.M, s.K, isa)));
      kernels::cpu::gemm_pack_a(s, a.data(), packed.data(), isa);
      const TransposedPanels panels{b.data(), s.ldb};
      const kernels::cpu::GemmPanelSource source{pack_transposed, &panels};
      for (const float beta : {0.f, 1.f}) {
        INFO(describe(s) << ", beta " << beta);
        GemmShape sb = s;
        sb.beta = beta;
        const Buffer c0 = random_vector(size_t(s.M) * s.ldc, 33);
        Buffer streamed = c0, blocked = c0;
        kernels::cpu::gemm(sb, a.data(), b.data(), streamed.data(), isa);
        kernels::cpu::gemm_packed(s.M, s.N, s.K, packed.data(), source, blocked.data(), s.ldc, beta, 0, s.M, isa);
        CHECK(std::memcmp(streamed.data(), blocked.data(), streamed.size() * sizeof(float)) == 0);
      }
    }
  }
}

TEST_CASE("streaming path gives the same bits for 1, 2 and 3 threads") {
  const int K = past_one_slice(64);
  const GemmShape s = shape(64, columns_for(K), K, false, true, 1);
  const Buffer a = random_vector(size_t(s.M) * s.lda, 41), b = random_vector(size_t(s.N) * s.ldb, 42);
  check_same_bits_for_threads(s, a, b, "streaming");
}
