// The CPU GEMM (kernels/cpu/gemm.h) against a plain-loop reference summed in double, for every instruction set this
// CPU runs: sizes that are not multiples of any register tile or cache block (and ones that cross MC, NC and KC),
// every transpose, padded leading dimensions, pointers one float off alignment, alpha / beta (beta 0 over NaN),
// C's padding left untouched; bit-identical results for 1, 2 and 3 threads; the ISA switch and its parsing; the
// convolutions' entry points (a packed A with B packed by a source or read in place) giving gemm's bits.
// Tolerances: tests/support/gemm_check.h. The streaming small-M path has its own suite (cpu_gemm_stream_test.cpp).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "tests/support/check.h"
#include "tests/support/cpu_kernel_cases.h"
#include "tests/support/gemm_check.h"

using kernels::GemmShape;
using kernels::cpu::CpuIsa;
using testing_support::expect_close;
using testing_support::random_vector;
using testing_support::supported_isas;
using Buffer = std::vector<float>;
using testing_support::check_gemm;
using testing_support::check_same_bits_for_threads;
using testing_support::describe;
using testing_support::reference_gemm;
using testing_support::shape;

// First, before anything sets an ISA: the active one is what MASSMAP_CPU_ISA asks for (ctest runs this program
// once per ISA the CPU has through that variable) or the best.
TEST_CASE("the active instruction set follows MASSMAP_CPU_ISA") {
  const char* env = std::getenv("MASSMAP_CPU_ISA");
  const CpuIsa expected = env && *env ? kernels::cpu::parse_cpu_isa(env) : kernels::cpu::best_cpu_isa();
  CHECK(kernels::cpu::active_cpu_isa() == expected);
  MESSAGE("active ISA " << std::string(kernels::cpu::cpu_isa_name(kernels::cpu::active_cpu_isa())) << ", best "
                        << std::string(kernels::cpu::cpu_isa_name(kernels::cpu::best_cpu_isa())));
}

TEST_CASE("instruction set names parse, the environment is read, unsupported ones are refused") {
  for (const CpuIsa isa : {CpuIsa::portable, CpuIsa::avx2, CpuIsa::avx512})
    CHECK(kernels::cpu::parse_cpu_isa(kernels::cpu::cpu_isa_name(isa)) == isa);
  CHECK_THROWS_AS(kernels::cpu::parse_cpu_isa("sse9"), std::invalid_argument);
  CHECK(kernels::cpu::cpu_isa_supported(CpuIsa::portable));

  const char* saved = std::getenv("MASSMAP_CPU_ISA");
  const std::string saved_value = saved ? saved : "";
  setenv("MASSMAP_CPU_ISA", "portable", 1);
  CHECK(kernels::cpu::cpu_isa_from_environment() == CpuIsa::portable);
  setenv("MASSMAP_CPU_ISA", "avx3", 1);
  CHECK_THROWS_AS(kernels::cpu::cpu_isa_from_environment(), std::invalid_argument);
  for (const CpuIsa isa : {CpuIsa::avx2, CpuIsa::avx512}) {
    setenv("MASSMAP_CPU_ISA", kernels::cpu::cpu_isa_name(isa), 1);
    if (kernels::cpu::cpu_isa_supported(isa)) {
      CHECK(kernels::cpu::cpu_isa_from_environment() == isa);
    } else {
      CHECK_THROWS_AS(kernels::cpu::cpu_isa_from_environment(), std::invalid_argument);
      CHECK_THROWS_AS(kernels::cpu::set_active_cpu_isa(isa), std::invalid_argument);
    }
  }
  unsetenv("MASSMAP_CPU_ISA");
  CHECK(kernels::cpu::cpu_isa_from_environment() == kernels::cpu::best_cpu_isa());
  if (saved) setenv("MASSMAP_CPU_ISA", saved_value.c_str(), 1);
}

TEST_CASE("set_active_cpu_isa switches what gemm runs") {
  const GemmShape s = shape(37, 53, 300, false, false, 0);
  const Buffer a = random_vector(37 * 300, 1), b = random_vector(300 * 53, 2);
  const CpuIsa saved = kernels::cpu::active_cpu_isa();
  for (const CpuIsa isa : supported_isas()) {
    kernels::cpu::set_active_cpu_isa(isa);
    CHECK(kernels::cpu::active_cpu_isa() == isa);
    Buffer implicit(37 * 53), explicit_isa(37 * 53);
    kernels::cpu::gemm(s, a.data(), b.data(), implicit.data());
    kernels::cpu::gemm(s, a.data(), b.data(), explicit_isa.data(), isa);
    CHECK(std::memcmp(implicit.data(), explicit_isa.data(), implicit.size() * sizeof(float)) == 0);
  }
  kernels::cpu::set_active_cpu_isa(saved);
}

TEST_CASE("gemm matches the reference: odd sizes, every transpose, padding, misaligned pointers") {
  for (const bool ta : {false, true}) {
    for (const bool tb : {false, true}) {
      check_gemm(shape(1, 1, 1, ta, tb, 0), 0, "1x1x1");
      check_gemm(shape(1, 37, 5, ta, tb, 1), 1, "one row");
      check_gemm(shape(29, 1, 17, ta, tb, 3), 1, "one column");
      check_gemm(shape(13, 49, 23, ta, tb, 2), 1, "odd");
      check_gemm(shape(17, 97, 800, ta, tb, 1), 1, "several KC blocks");
    }
  }
}

TEST_CASE("gemm across cache blocks: rows past MC, columns past NC, K past KC") {
  check_gemm(shape(1030, 23, 7, false, false, 1), 1, "rows past MC");
  check_gemm(shape(1031, 9, 5, true, false, 0), 0, "rows past MC, A^T");
  check_gemm(shape(5, 1000, 900, false, true, 1), 1, "columns past NC, three KC blocks");
  check_gemm(shape(9, 530, 270, true, false, 0), 0, "columns past NC");
}

TEST_CASE("gemm alpha and beta: accumulate, scale, and beta 0 never reads C") {
  check_gemm(shape(19, 41, 33, false, false, 1, 1.f, 1.f), 1, "accumulate");
  check_gemm(shape(19, 41, 800, true, true, 2, 1.f, 1.f), 0, "accumulate over several KC blocks");
  check_gemm(shape(7, 50, 11, false, true, 0, 2.f, 0.5f), 1, "alpha 2, beta 0.5");
  check_gemm(shape(7, 50, 11, true, false, 0, -0.5f, 0.f), 0, "alpha -0.5, beta 0 over NaN");
  check_gemm(shape(6, 10, 0, false, false, 1, 1.f, 0.5f), 0, "K 0: C = beta C");
  check_gemm(shape(6, 10, 0, false, false, 1, 1.f, 0.f), 0, "K 0, beta 0: zeros over NaN");
}

TEST_CASE("gemm gives the same bits for 1, 2 and 3 threads") {
  for (const bool ta : {false, true}) {
    const GemmShape s = shape(67, 101, 400, ta, !ta, 1, 1.f, 0.f);
    const Buffer a = random_vector(size_t(ta ? s.K : s.M) * s.lda, 3);
    const Buffer b = random_vector(size_t(ta ? s.K : s.N) * s.ldb, 4);
    check_same_bits_for_threads(s, a, b, ta ? "A^T" : "B^T");
  }
}

TEST_CASE("gemm called from inside a parallel region (a team of one) computes all of C") {
  const GemmShape s = shape(67, 101, 400, false, false, 0);
  const Buffer a = random_vector(size_t(s.M) * s.lda, 5), b = random_vector(size_t(s.K) * s.ldb, 6);
  Buffer expected(size_t(s.M) * s.ldc);
  reference_gemm(s, a.data(), b.data(), expected.data());
  const float atol = 1e-5f * std::sqrt(float(s.K)) + 1e-6f;
  for (const CpuIsa isa : supported_isas()) {
    std::vector<Buffer> c(2, Buffer(expected.size(), NAN));
#pragma omp parallel for num_threads(2)
    for (int i = 0; i < 2; ++i) kernels::cpu::gemm(s, a.data(), b.data(), c[i].data(), isa);
    for (int i = 0; i < 2; ++i)
      expect_close(c[i], expected, atol, 1e-5f, std::string("nested, ") + kernels::cpu::cpu_isa_name(isa));
  }
}

TEST_CASE("gemm rejects bad shapes and an instruction set the CPU lacks") {
  float x = 0;
  CHECK_THROWS_AS(kernels::cpu::gemm(GemmShape{2, 3, 4, false, false, 3, 3, 3}, &x, &x, &x), std::invalid_argument);
  CHECK_THROWS_AS(kernels::cpu::gemm(GemmShape{2, 3, 4, false, false, 4, 3, 2}, &x, &x, &x), std::invalid_argument);
  CHECK_THROWS_AS(kernels::cpu::gemm(GemmShape{-1, 3, 4, false, false, 4, 3, 3}, &x, &x, &x), std::invalid_argument);
  for (const CpuIsa isa : {CpuIsa::avx2, CpuIsa::avx512}) {
    if (!kernels::cpu::cpu_isa_supported(isa))
      CHECK_THROWS_AS(kernels::cpu::gemm(kernels::gemm_shape(1, 1, 1), &x, &x, &x, isa), std::invalid_argument);
  }
}

namespace {

// B (K, N) row-major, handed to gemm_packed panel by panel as a GemmPanelSource.
struct PlainPanels {
  const float* b;
  int64_t ldb;
};
void pack_plain(const void* context, int k0, int kc, int col0, int cols, int nr, float* dst) {
  const PlainPanels& p = *static_cast<const PlainPanels*>(context);
  for (int j = 0; j < (cols + nr - 1) / nr * nr; ++j)
    for (int k = 0; k < kc; ++k)
      dst[int64_t(j / nr) * kc * nr + int64_t(k) * nr + j % nr] = j < cols ? p.b[(k0 + k) * p.ldb + col0 + j] : 0.f;
}

}  // namespace

TEST_CASE("gemm_packed: a packed A and panels from a source give gemm's bits, row ranges write only their rows") {
  // (M, N, K, A transposed): past MR, NR, NC and KC on every ISA, and tiny ones.
  const int cases[][4] = {{1, 1, 1, 0}, {13, 37, 11, 1}, {97, 531, 777, 0}, {50, 200, 1030, 1}};
  for (const auto& cs : cases) {
    const GemmShape s = shape(cs[0], cs[1], cs[2], cs[3] != 0, false, 3, 1.f, 0.f);
    const Buffer a = random_vector((s.trans_a ? s.K : s.M) * size_t(s.lda), 21);
    const Buffer b = random_vector(size_t(s.K) * s.ldb, 22);
    for (const CpuIsa isa : supported_isas()) {
      INFO(describe(s) << " on " << kernels::cpu::cpu_isa_name(isa));
      Buffer want(size_t(s.M) * s.ldc, NAN);
      kernels::cpu::gemm(s, a.data(), b.data(), want.data(), isa);
      Buffer packed(size_t(kernels::cpu::gemm_packed_a_floats(s.M, s.K, isa)));
      kernels::cpu::gemm_pack_a(s, a.data(), packed.data(), isa);
      // Packed a slice of rows at a time (as threads share it): the same buffer, every float of it written.
      const int tile = kernels::cpu::gemm_tile_rows(isa);
      for (const int slice : {tile, 3 * tile}) {
        Buffer sliced(packed.size(), NAN);
        for (int r0 = 0; r0 < s.M; r0 += slice)
          kernels::cpu::gemm_pack_a_rows(s, a.data(), sliced.data(), r0, std::min(s.M, r0 + slice), isa);
        CHECK(std::memcmp(sliced.data(), packed.data(), packed.size() * sizeof(float)) == 0);
      }
      CHECK_THROWS_AS(kernels::cpu::gemm_pack_a_rows(s, a.data(), packed.data(), 1, s.M, isa), std::invalid_argument);
      const PlainPanels plain{b.data(), s.ldb};
      const kernels::cpu::GemmPanelSource source{pack_plain, &plain};
      // Rows in ranges that start at tile boundaries, as the convolutions call it; C's padding stays NaN.
      Buffer got(size_t(s.M) * s.ldc, NAN);
      const int step = kernels::cpu::gemm_tile_rows(isa) * 2;
      for (int m0 = 0; m0 < s.M; m0 += step)
        kernels::cpu::gemm_packed(s.M, s.N, s.K, packed.data(), source, got.data() + int64_t(m0) * s.ldc, s.ldc, 0.f,
                                  m0, std::min(s.M, m0 + step), isa);
      CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
      // beta = 1 adds to C.
      Buffer twice = got;
      kernels::cpu::gemm_packed(s.M, s.N, s.K, packed.data(), source, twice.data(), s.ldc, 1.f, 0, s.M, isa);
      for (int m = 0; m < s.M; ++m)
        for (int n = 0; n < s.N; ++n) {
          const float g = got[m * s.ldc + n], t = twice[m * s.ldc + n];
          if (std::fabs(t - 2 * g) > 1e-5f * (1 + std::fabs(g))) FAIL_CHECK("beta 1 at " << m << "," << n);
        }
    }
  }
}

TEST_CASE("gemm_packed_b_in_place: B read where it lies gives gemm's bits, on AVX-512; refused elsewhere") {
  // (M, N, K): a 1x1 convolution's few rows of C, tails of every register tile, K past KC, N past NR and NC.
  const int cases[][3] = {{1, 1, 1}, {13, 37, 11}, {16, 784, 192}, {32, 531, 777}, {50, 1100, 390}};
  for (const auto& cs : cases) {
    const GemmShape s = shape(cs[0], cs[1], cs[2], false, false, 3, 1.f, 0.f);
    const Buffer a = random_vector(size_t(s.M) * s.lda, 31);
    const Buffer b_storage = random_vector(size_t(s.K) * s.ldb + 1, 32);
    const float* b = b_storage.data() + 1;  // rows misaligned, ldb > N
    for (const CpuIsa isa : supported_isas()) {
      INFO(describe(s) << " on " << kernels::cpu::cpu_isa_name(isa));
      Buffer packed(size_t(kernels::cpu::gemm_packed_a_floats(s.M, s.K, isa)));
      kernels::cpu::gemm_pack_a(s, a.data(), packed.data(), isa);
      Buffer got(size_t(s.M) * s.ldc, NAN);
      if (!kernels::cpu::gemm_b_in_place_supported(isa)) {
        CHECK_THROWS_AS(kernels::cpu::gemm_packed_b_in_place(s.M, s.N, s.K, packed.data(), b, s.ldb, got.data(), s.ldc,
                                                             0.f, 0, s.M, isa),
                        std::invalid_argument);
        continue;
      }
      Buffer want(size_t(s.M) * s.ldc, NAN);
      kernels::cpu::gemm(s, a.data(), b, want.data(), isa);
      // Row ranges from tile boundaries, as the convolutions call it; C's padding stays NaN.
      const int step = kernels::cpu::gemm_tile_rows(isa) * 2;
      for (int m0 = 0; m0 < s.M; m0 += step)
        kernels::cpu::gemm_packed_b_in_place(s.M, s.N, s.K, packed.data(), b, s.ldb, got.data() + int64_t(m0) * s.ldc,
                                             s.ldc, 0.f, m0, std::min(s.M, m0 + step), isa);
      CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
      // And gemm against the plain loops, so that the shared bits are right ones.
      Buffer ref(size_t(s.M) * s.ldc, NAN);
      reference_gemm(s, a.data(), b, ref.data());
      const float atol = 1e-5f * std::sqrt(float(s.K)) + 1e-6f;  // as tests/support/gemm_check.h
      for (int m = 0; m < s.M; ++m)
        for (int n = 0; n < s.N; ++n) {
          const float r = ref[m * s.ldc + n], g = got[m * s.ldc + n];
          if (!(std::fabs(g - r) <= atol + 1e-5f * std::fabs(r)))
            FAIL_CHECK("at " << m << "," << n << ": " << g << " against " << r);
        }
      // beta = 1 adds to C.
      Buffer twice = got;
      kernels::cpu::gemm_packed_b_in_place(s.M, s.N, s.K, packed.data(), b, s.ldb, twice.data(), s.ldc, 1.f, 0, s.M,
                                           isa);
      for (int m = 0; m < s.M; ++m)
        for (int n = 0; n < s.N; ++n) {
          const float g = got[m * s.ldc + n], t = twice[m * s.ldc + n];
          if (std::fabs(t - 2 * g) > 1e-5f * (1 + std::fabs(g))) FAIL_CHECK("beta 1 at " << m << "," << n);
        }
      CHECK_THROWS_AS(kernels::cpu::gemm_packed_b_in_place(s.M, s.N, s.K, packed.data(), b, s.N - 1, got.data(), s.ldc,
                                                           0.f, 0, s.M, isa),
                      std::invalid_argument);
    }
  }
}
