// The GEMM micro-kernel for AVX2+FMA (this file alone is compiled with -mavx2 -mfma): a C tile of 6 rows x 16
// columns in 12 ymm accumulators; per k, 2 vector loads of the B panel, 6 broadcasts of the A sliver, 12 FMAs.
// Edge tiles use masked loads and stores, the same arithmetic as full ones.
#include "kernels/cpu/gemm_block.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include "kernels/cpu/gemm_driver.h"
#include "kernels/cpu/gemm_team.h"

namespace kernels {
namespace cpu {
namespace {

struct KernelAvx2 {
  static constexpr GemmBlocking kBlocking = kBlockingAvx2;
  static constexpr int MR = kBlocking.mr, NR = kBlocking.nr, V = NR / 8;

  static void run(int kc, const float* a, const float* b, float* c, int64_t ldc, int rows, int cols, float alpha,
                  float beta, bool first) {
    __m256 acc[MR][V];  // the C tile (MR, NR)
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) acc[i][v] = _mm256_setzero_ps();
    for (int k = 0; k < kc; ++k, a += MR, b += NR) {
      __m256 bv[V];  // row k of the B panel
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) bv[v] = _mm256_load_ps(b + 8 * v);
#pragma GCC unroll 6
      for (int i = 0; i < MR; ++i) {
        const __m256 ai = _mm256_broadcast_ss(a + i);
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
      }
    }
    __m256i mask[V];  // all-ones lanes for the valid columns of each vector
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int v = 0; v < V; ++v) mask[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols - 8 * v), lane);
    const __m256 alpha_v = _mm256_set1_ps(alpha), beta_v = _mm256_set1_ps(beta);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      if (i >= rows) break;
      float* row = c + i * ldc;
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) {
        __m256 t = alpha == 1.f ? acc[i][v] : _mm256_mul_ps(alpha_v, acc[i][v]);
        if (!first) {
          t = _mm256_add_ps(_mm256_maskload_ps(row + 8 * v, mask[v]), t);
        } else if (beta != 0.f) {
          t = _mm256_add_ps(t, _mm256_mul_ps(beta_v, _mm256_maskload_ps(row + 8 * v, mask[v])));
        }
        _mm256_maskstore_ps(row + 8 * v, mask[v], t);
      }
    }
  }
};

}  // namespace

void gemm_block_avx2(const GemmBlock& g) {
  gemm_block_with<KernelAvx2>(g);
}
void gemm_team_avx2(const GemmTeamBlock& g) {
  gemm_team_with<KernelAvx2>(g);
}
void gemm_pack_a_avx2(const GemmShape& s, const float* a, float* packed, int row_begin, int row_end) {
  pack_a_rows<KernelAvx2>(s, a, packed, row_begin, row_end);
}
void gemm_packed_block_avx2(const GemmPackedBlock& g) {
  gemm_packed_with<KernelAvx2>(g);
}

}  // namespace cpu
}  // namespace kernels

#else  // a compiler or target without AVX2: the dispatcher never selects it

#include <cstdlib>

void kernels::cpu::gemm_block_avx2(const GemmBlock&) {
  std::abort();
}
void kernels::cpu::gemm_team_avx2(const GemmTeamBlock&) {
  std::abort();
}
void kernels::cpu::gemm_pack_a_avx2(const GemmShape&, const float*, float*, int, int) {
  std::abort();
}
void kernels::cpu::gemm_packed_block_avx2(const GemmPackedBlock&) {
  std::abort();
}

#endif
