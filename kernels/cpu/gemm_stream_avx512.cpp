// The streaming small-M GEMM's micro-kernel for AVX-512 (kernels/cpu/gemm_stream.h; this file alone is compiled
// with -mavx512f -mavx2 -mfma): a C^T tile of 6 rows of B^T x up to 64 rows of C in 6 x V zmm accumulators; per k,
// V vector loads of the packed op(A)^T row and 6 broadcasts read straight from B^T's rows, 6 V FMAs.
#include "kernels/cpu/gemm_stream.h"

#if defined(__AVX512F__)
#include <immintrin.h>

#include "kernels/cpu/gemm_block.h"
#include "kernels/cpu/gemm_driver.h"

namespace kernels {
namespace cpu {
namespace {

constexpr int R = kStreamTileCols;
constexpr int KC = kBlockingAvx512.kc;  // the blocked path's KC: the same blocks give the same bits

// acc (R, 16 V) = sum over k in [0, kc) of w[r][k] * xt[k * mp + 0 .. 16 V), summed from zero in k order.
template <int V>
inline void stream_tile(int kc, const float* const* w, const float* xt, int64_t mp, __m512 (&acc)[R][4]) {
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int k = 0; k < kc; ++k, xt += mp) {
    __m512 x[V];  // op(A)^T row k: 16 V rows of C
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) x[v] = _mm512_load_ps(xt + 16 * v);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m512 wr = _mm512_set1_ps(w[r][k]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_fmadd_ps(wr, x[v], acc[r][v]);
    }
  }
}

// The blocked kernel's epilogue on the transposed tile ct (R, mp): t = alpha * acc (acc when alpha is 1); the first KC
// block of K writes t (+ beta * C, which ct then holds), later blocks add t to what ct holds.
template <int V>
inline void stream_epilogue(const __m512 (&acc)[R][4], float* ct, int64_t mp, float alpha, float beta, bool first) {
  const __m512 alpha_v = _mm512_set1_ps(alpha), beta_v = _mm512_set1_ps(beta);
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      float* p = ct + r * mp + 16 * v;
      __m512 t = alpha == 1.f ? acc[r][v] : _mm512_mul_ps(alpha_v, acc[r][v]);
      if (!first) {
        t = _mm512_add_ps(_mm512_load_ps(p), t);
      } else if (beta != 0.f) {
        t = _mm512_add_ps(t, _mm512_mul_ps(beta_v, _mm512_load_ps(p)));
      }
      _mm512_store_ps(p, t);
    }
  }
}

// One KC block of one tile: rows of C in passes of 64 (the last one narrower), each into its part of ct.
inline void stream_block(int kc, const float* const* w, const float* xt, float* ct, int64_t mp, float alpha, float beta,
                         bool first) {
  __m512 acc[R][4];  // the C^T tile (R, 64)
  for (int m0 = 0; m0 < mp; m0 += kStreamPassRows) {
    const int vectors = int(mp - m0 < kStreamPassRows ? mp - m0 : kStreamPassRows) / 16;
    const float* x = xt + m0;
    float* t = ct + m0;
    if (vectors == 4) {
      stream_tile<4>(kc, w, x, mp, acc);
      stream_epilogue<4>(acc, t, mp, alpha, beta, first);
    } else if (vectors == 3) {
      stream_tile<3>(kc, w, x, mp, acc);
      stream_epilogue<3>(acc, t, mp, alpha, beta, first);
    } else if (vectors == 2) {
      stream_tile<2>(kc, w, x, mp, acc);
      stream_epilogue<2>(acc, t, mp, alpha, beta, first);
    } else {
      stream_tile<1>(kc, w, x, mp, acc);
      stream_epilogue<1>(acc, t, mp, alpha, beta, first);
    }
  }
}

}  // namespace

void gemm_stream_pack_avx512(const GemmShape& s, const float* a, int k0, int k1, float* packed) {
  const int mp = stream_padded_rows(s.M), kc = k1 - k0;
  if (s.trans_a) {  // A stored (K, M): op(A)^T's rows are A's rows
    for (int k = 0; k < kc; ++k) {
      const float* src = a + int64_t(k0 + k) * s.lda;
      float* dst = packed + int64_t(k) * mp;
      for (int m = 0; m < s.M; ++m) dst[m] = src[m];
      for (int m = s.M; m < mp; ++m) dst[m] = 0.f;
    }
    return;
  }
  transpose_into(a + k0, s.lda, s.M, kc, packed, mp);  // A stored (M, K)
  for (int k = 0; k < kc; ++k)
    for (int m = s.M; m < mp; ++m) packed[int64_t(k) * mp + m] = 0.f;
}

void gemm_stream_columns_avx512(const GemmShape& s, const float* packed, int k0, int k1, const float* b, float* c,
                                int n0, int n1) {
  const int64_t mp = stream_padded_rows(s.M);
  alignas(64) float ct[R * kStreamMaxRows] = {};  // (R, mp): the C^T tile, C's columns n..n+R-1 as rows
  for (int n = n0; n < n1; n += R) {
    const int cols = n1 - n < R ? n1 - n : R;
    const float* w[R];  // B^T's rows n.. from column k0; past the last column, the last one again (not stored)
    for (int r = 0; r < R; ++r) w[r] = b + int64_t(n + (r < cols ? r : cols - 1)) * s.ldb + k0;
    // C's values come in when the slice adds to them (a later slice) or beta scales them (the first).
    const bool read_c = k0 > 0 || s.beta != 0.f;
    if (read_c) {
      for (int m = 0; m < s.M; ++m)
        for (int r = 0; r < cols; ++r) ct[r * mp + m] = c[int64_t(m) * s.ldc + n + r];
    }
    for (int pc = k0; pc < k1; pc += KC) {
      const int kc = k1 - pc < KC ? k1 - pc : KC;
      const float* rows[R];
      for (int r = 0; r < R; ++r) rows[r] = w[r] + (pc - k0);
      stream_block(kc, rows, packed + int64_t(pc - k0) * mp, ct, mp, s.alpha, s.beta, pc == 0);
    }
    for (int m = 0; m < s.M; ++m)
      for (int r = 0; r < cols; ++r) c[int64_t(m) * s.ldc + n + r] = ct[r * mp + m];
  }
}

}  // namespace cpu
}  // namespace kernels

#else  // a compiler or target without AVX-512: the dispatcher never selects it

#include <cstdlib>

void kernels::cpu::gemm_stream_pack_avx512(const GemmShape&, const float*, int, int, float*) {
  std::abort();
}
void kernels::cpu::gemm_stream_columns_avx512(const GemmShape&, const float*, int, int, const float*, float*, int,
                                              int) {
  std::abort();
}

#endif
