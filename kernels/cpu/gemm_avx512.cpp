// The GEMM micro-kernel for AVX-512 (this file alone is compiled with -mavx512f -mavx2 -mfma): a C tile of 8 rows x
// 48 columns in 24 zmm accumulators; per k, 3 vector loads of the B panel, 8 broadcasts of the A sliver, 24 FMAs.
// Edge tiles use masked loads and stores, the same arithmetic as full ones; a panel narrower than 48 columns runs
// only the vectors it needs (a 13 x 13 map's 169 positions end in a 25-column panel: 2 vectors of 3).
#include "kernels/cpu/gemm_block.h"

#if defined(__AVX512F__)
#include <immintrin.h>

#include "kernels/cpu/gemm_driver.h"
#include "kernels/cpu/gemm_team.h"

namespace kernels {
namespace cpu {
namespace {

struct KernelAvx512 {
  static constexpr GemmBlocking kBlocking = kBlockingAvx512;
  static constexpr int MR = kBlocking.mr, NR = kBlocking.nr;
  static constexpr int kPanelAhead = 8;  // k steps (1.5 KB) of software prefetch ahead of the B panel's loads

  static void run(int kc, const float* a, const float* b, float* c, int64_t ldc, int rows, int cols, float alpha,
                  float beta, bool first) {
    if (cols > 32) return tile<3>(kc, a, b, c, ldc, rows, cols, alpha, beta, first);
    if (cols > 16) return tile<2>(kc, a, b, c, ldc, rows, cols, alpha, beta, first);
    tile<1>(kc, a, b, c, ldc, rows, cols, alpha, beta, first);
  }

  // The first V vectors (16 V columns) of the tile; the panel's rows stay NR apart.
  template <int V>
  static void tile(int kc, const float* a, const float* b, float* c, int64_t ldc, int rows, int cols, float alpha,
                   float beta, bool first) {
    __m512 acc[MR][V];  // the C tile (MR, 16 V)
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 3
      for (int v = 0; v < V; ++v) acc[i][v] = _mm512_setzero_ps();
    // The C tile is read only after the loop: ask for it now (it is usually in L3: 24 misses per call otherwise).
    for (int i = 0; i < MR && i < rows; ++i)
#pragma GCC unroll 3
      for (int v = 0; v < V; ++v) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16 * v), _MM_HINT_T0);
    for (int k = 0; k < kc; ++k, a += MR, b += NR) {
      // The panel (kc x 48 floats, 72 KB at KC 384) streams from L2: its rows kPanelAhead steps on into L1.
#pragma GCC unroll 3
      for (int v = 0; v < V; ++v)
        _mm_prefetch(reinterpret_cast<const char*>(b + kPanelAhead * NR + 16 * v), _MM_HINT_T0);
      __m512 bv[V];  // row k of the B panel
#pragma GCC unroll 3
      for (int v = 0; v < V; ++v) bv[v] = _mm512_load_ps(b + 16 * v);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 3
        for (int v = 0; v < V; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
      }
    }
    __mmask16 mask[V];  // the valid columns of each vector
    column_masks<V>(cols, mask);
    store_tile<V>(acc, mask, c, ldc, rows, alpha, beta, first);
  }

  // mask[v]: the columns of vector v among the tile's first `cols`.
  template <int V>
  static inline __attribute__((always_inline)) void column_masks(int cols, __mmask16 (&mask)[V]) {
    for (int v = 0; v < V; ++v) {
      const int left = cols - 16 * v;
      mask[v] = left >= 16 ? __mmask16(0xFFFF) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
    }
  }

  // C tile = alpha * acc (+ beta * C on the first KC block, + C on later ones), its valid rows and columns only; C is
  // not read when first and beta == 0.
  template <int V>
  static inline __attribute__((always_inline)) void store_tile(const __m512 (&acc)[MR][V], const __mmask16 (&mask)[V],
                                                               float* c, int64_t ldc, int rows, float alpha, float beta,
                                                               bool first) {
    const __m512 alpha_v = _mm512_set1_ps(alpha), beta_v = _mm512_set1_ps(beta);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      if (i >= rows) break;
      float* row = c + i * ldc;
#pragma GCC unroll 3
      for (int v = 0; v < V; ++v) {
        __m512 t = alpha == 1.f ? acc[i][v] : _mm512_mul_ps(alpha_v, acc[i][v]);
        if (!first) {
          t = _mm512_add_ps(_mm512_maskz_loadu_ps(mask[v], row + 16 * v), t);
        } else if (beta != 0.f) {
          t = _mm512_add_ps(t, _mm512_mul_ps(beta_v, _mm512_maskz_loadu_ps(mask[v], row + 16 * v)));
        }
        _mm512_mask_storeu_ps(row + 16 * v, mask[v], t);
      }
    }
  }

  // tile<V> on a B read in place (rows ldb apart; columns past `cols` masked off, never read), the same FMAs in the
  // same order. `ahead`: also prefetch the next tile's columns of these rows into L2 (the first sliver of a tile only).
  template <int V>
  static void tile_in_place(int kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc, int rows,
                            int cols, float beta, bool first, bool ahead) {
    __mmask16 mask[V];  // the valid columns of each vector
    column_masks<V>(cols, mask);
    __m512 acc[MR][V];  // the C tile (MR, 16 V)
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 3
      for (int v = 0; v < V; ++v) acc[i][v] = _mm512_setzero_ps();
    for (int k = 0; k < kc; ++k, a += MR, b += ldb) {
      if (ahead)
#pragma GCC unroll 3
        for (int v = 0; v < V; ++v) _mm_prefetch(reinterpret_cast<const char*>(b + NR + 16 * v), _MM_HINT_T1);
      __m512 bv[V];  // row k of B's tile
#pragma GCC unroll 3
      for (int v = 0; v < V; ++v) bv[v] = _mm512_maskz_loadu_ps(mask[v], b + 16 * v);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 3
        for (int v = 0; v < V; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
      }
    }
    store_tile<V>(acc, mask, c, ldc, rows, 1.f, beta, first);
  }
};

}  // namespace

// gemm_packed_with's loops (the same KC blocks, the first one writing C) with each tile of B read from where it lies;
// the slivers of rows run one after another over a tile while it is in L1.
void gemm_b_in_place_avx512(const GemmInPlaceBlock& g) {
  using K = KernelAvx512;
  constexpr GemmBlocking B = K::kBlocking;
  const int64_t m_padded = (int64_t(g.M) + B.mr - 1) / B.mr * B.mr;
  for (int pc = 0; pc < g.K; pc += B.kc) {
    const int kc = g.K - pc < B.kc ? g.K - pc : B.kc;
    const float* a_block = g.a_packed + pc * m_padded;  // (ceil(M / MR), kc, MR)
    const float* b_block = g.b + pc * g.ldb;            // (kc, N)
    for (int jr = 0; jr < g.N; jr += B.nr) {
      const int cols = g.N - jr < B.nr ? g.N - jr : B.nr;
      for (int ir = g.m0; ir < g.m1; ir += B.mr) {
        const int rows = g.m1 - ir < B.mr ? g.m1 - ir : B.mr;
        const bool ahead = ir == g.m0 && jr + B.nr < g.N;
        const float* a = a_block + int64_t(ir) * kc;
        float* c = g.c + int64_t(ir - g.m0) * g.ldc + jr;
        if (cols > 32) {
          K::tile_in_place<3>(kc, a, b_block + jr, g.ldb, c, g.ldc, rows, cols, g.beta, pc == 0, ahead);
        } else if (cols > 16) {
          K::tile_in_place<2>(kc, a, b_block + jr, g.ldb, c, g.ldc, rows, cols, g.beta, pc == 0, ahead);
        } else {
          K::tile_in_place<1>(kc, a, b_block + jr, g.ldb, c, g.ldc, rows, cols, g.beta, pc == 0, ahead);
        }
      }
    }
  }
}

void gemm_block_avx512(const GemmBlock& g) {
  gemm_block_with<KernelAvx512>(g);
}
void gemm_team_avx512(const GemmTeamBlock& g) {
  gemm_team_with<KernelAvx512>(g);
}
void gemm_pack_a_avx512(const GemmShape& s, const float* a, float* packed, int row_begin, int row_end) {
  pack_a_rows<KernelAvx512>(s, a, packed, row_begin, row_end);
}
void gemm_packed_block_avx512(const GemmPackedBlock& g) {
  gemm_packed_with<KernelAvx512>(g);
}

}  // namespace cpu
}  // namespace kernels

#else  // a compiler or target without AVX-512: the dispatcher never selects it

#include <cstdlib>

void kernels::cpu::gemm_block_avx512(const GemmBlock&) {
  std::abort();
}
void kernels::cpu::gemm_team_avx512(const GemmTeamBlock&) {
  std::abort();
}
void kernels::cpu::gemm_pack_a_avx512(const GemmShape&, const float*, float*, int, int) {
  std::abort();
}
void kernels::cpu::gemm_packed_block_avx512(const GemmPackedBlock&) {
  std::abort();
}
void kernels::cpu::gemm_b_in_place_avx512(const GemmInPlaceBlock&) {
  std::abort();
}

#endif
