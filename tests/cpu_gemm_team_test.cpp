// The CPU GEMM's team path (kernels/cpu/gemm_team.h: big GEMMs, where the threads share each packed B block and meet
// at a barrier per block), for every instruction set this CPU runs, on 2 and 3 threads: against the double reference
// on shapes past MC, NC and KC that are not multiples of the register tile, every transpose, padded and misaligned
// operands, alpha / beta; the same bits as one thread (which runs the chunks) and as any other thread count.
#include <omp.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_block.h"
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

// check_gemm with the OpenMP team at `threads`.
void check_gemm_on(int threads, const GemmShape& s, int shift, const std::string& what) {
  REQUIRE_MESSAGE(kernels::cpu::gemm_team_applies(s, threads), describe(s) << " on " << threads << " threads");
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  check_gemm(s, shift, what + ", " + std::to_string(threads) + " threads");
  omp_set_num_threads(saved);
}

}  // namespace

TEST_CASE("which shapes run as a team") {
  CHECK(kernels::cpu::gemm_team_applies(kernels::gemm_shape(1024, 1024, 1024), 2));
  CHECK_FALSE(kernels::cpu::gemm_team_applies(kernels::gemm_shape(1024, 1024, 1024), 1));
  CHECK_FALSE(kernels::cpu::gemm_team_applies(kernels::gemm_shape(511, 1024, 1024), 2));
  CHECK_FALSE(kernels::cpu::gemm_team_applies(kernels::gemm_shape(1024, 255, 1024), 2));
  CHECK_FALSE(kernels::cpu::gemm_team_applies(kernels::gemm_shape(4096, 9216, 64, true), 2));  // fc backward-weight
}

TEST_CASE("team matches the reference: every transpose, rows and columns past the blocks, K past KC") {
  for (const bool ta : {false, true})
    for (const bool tb : {false, true}) check_gemm_on(2, shape(777, 531, 800, ta, tb, 1), 1, "team");
  // Three threads: blocks of 10 panels packed in shares of 3, 3 and 4; the last block (40 columns) by one thread.
  check_gemm_on(3, shape(777, 1000, 300, false, false, 0), 0, "team of three");
}

TEST_CASE("team: alpha and beta, the last column block narrower than a tile") {
  check_gemm_on(2, shape(600, 497, 400, false, true, 2, 1.f, 1.f), 1, "accumulate");
  check_gemm_on(2, shape(600, 497, 400, true, false, 0, 2.f, 0.5f), 0, "alpha 2, beta 0.5");
  check_gemm_on(2, shape(600, 497, 400, false, false, 1, -0.5f, 0.f), 1, "alpha -0.5, beta 0 over NaN");
}

TEST_CASE("team gives the chunks' bits: 1, 2 and 3 threads agree") {
  for (const bool ta : {false, true}) {
    const GemmShape s = shape(800, 530, 900, ta, !ta, 1);
    REQUIRE(kernels::cpu::gemm_team_applies(s, 2));
    REQUIRE(kernels::cpu::gemm_team_applies(s, 3));
    const Buffer a = random_vector(size_t(ta ? s.K : s.M) * s.lda, 51);
    const Buffer b = random_vector(size_t(ta ? s.K : s.N) * s.ldb, 52);
    check_same_bits_for_threads(s, a, b, ta ? "A^T" : "B^T");
  }
}
