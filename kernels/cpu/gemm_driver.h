#pragma once
// The CPU GEMM's loop nest and packing, included by each gemm_<isa>.cpp so that they are compiled with that ISA's
// flags. Everything here has internal linkage: the copies of different ISAs must never be merged by the linker.
//
// For one thread's rectangle of C (rows [m0, m1), columns [n0, n1)), in the order of BLIS mirrored for row-major C
// (B is loaded as vectors along N, A is broadcast):
//   for pc over K in KC steps                 C is updated once per KC block, in K order
//     for ic over rows in MC steps            pack A (MC, KC) into MR-row slivers (kc, MR)        -> L3
//       for jc over columns in NC steps       pack B (KC, NC) into NR-column panels (kc, NR)      -> L2
//         for each sliver ir, panel jr        micro-kernel: C tile (MR, NR) (+)= sliver * panel  (sliver in L1)
// An element's sum runs over k in the same order whichever rectangle holds it (edge tiles are zero-padded in the
// packs and masked on store), which is what makes any split of C across threads give the same bits.
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_block.h"

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace kernels {
namespace cpu {
namespace {

inline int min_int(int a, int b) {
  return a < b ? a : b;
}

// Transposes rows [0, rows) x columns [0, cols) of src (rows ld apart) into dst, where column k becomes the run
// dst[k * dst_ld + 0 .. rows): packing a stored-transposed operand. With AVX, 8 x 8 blocks go through registers
// (a scalar transpose is one store per float and dominated the packing of fc weights).
inline void transpose_into(const float* src, int64_t ld, int rows, int cols, float* dst, int dst_ld) {
  int r0 = 0;
#if defined(__AVX__)
  for (; r0 + 8 <= rows; r0 += 8) {
    int k0 = 0;
    for (; k0 + 8 <= cols; k0 += 8) {
      __m256 r[8], t[8], s[8];  // rows r0.. of the block; unpacked pairs; 4 x 4 quarter-transposes
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + (r0 + i) * ld + k0);
      for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
      }
      for (int i = 0; i < 8; i += 4) {
        s[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
      }
      for (int k = 0; k < 4; ++k) {
        _mm256_storeu_ps(dst + (k0 + k) * dst_ld + r0, _mm256_permute2f128_ps(s[k], s[k + 4], 0x20));
        _mm256_storeu_ps(dst + (k0 + k + 4) * dst_ld + r0, _mm256_permute2f128_ps(s[k], s[k + 4], 0x31));
      }
    }
    for (int i = 0; i < 8; ++i)
      for (int k = k0; k < cols; ++k) dst[k * dst_ld + r0 + i] = src[(r0 + i) * ld + k];
  }
#endif
  for (int i = r0; i < rows; ++i)
    for (int k = 0; k < cols; ++k) dst[k * dst_ld + i] = src[i * ld + k];
}

// A rows [row0, row0 + rows), k [k0, k0 + kc) -> dst (ceil(rows / MR), kc, MR), rows past `rows` zero.
template <int MR>
void pack_a(const GemmShape& s, const float* a, int row0, int rows, int k0, int kc, float* dst) {
  for (int r = 0; r < rows; r += MR, dst += MR * kc) {
    const int valid = min_int(MR, rows - r);
    if (s.trans_a) {  // A stored (K, M): a sliver's k-th row is contiguous
      for (int k = 0; k < kc; ++k) {
        const float* src = a + (k0 + k) * s.lda + row0 + r;
        for (int i = 0; i < valid; ++i) dst[k * MR + i] = src[i];
        for (int i = valid; i < MR; ++i) dst[k * MR + i] = 0.f;
      }
    } else {  // A stored (M, K): transpose MR rows
      transpose_into(a + (row0 + r) * s.lda + k0, s.lda, valid, kc, dst, MR);
      for (int i = valid; i < MR; ++i)
        for (int k = 0; k < kc; ++k) dst[k * MR + i] = 0.f;
    }
  }
}

// B k [k0, k0 + kc), columns [col0, col0 + cols) -> dst (ceil(cols / NR), kc, NR), columns past `cols` zero.
// `by_rows` (B stored (K, N) only): walk the block's rows front to back, each feeding row k of every panel, instead of
// one panel after another. For a B read once from memory (a small batch's fc backward-data: W's rows 16-100 KB apart)
// the long runs stream: AlexNet fc6 and VGG-16 fc6 backward-data at batch 64 ran 5-10% quicker. Where B is packed by
// a team and reused from cache (square GEMMs), panel by panel stays: 1024^3 read 4% slower by rows.
template <int NR>
void pack_b(const GemmShape& s, const float* b, int k0, int kc, int col0, int cols, float* dst, bool by_rows = false) {
  if (!s.trans_b && by_rows) {  // row k of the block, read front to back, feeds row k of every panel
    for (int k = 0; k < kc; ++k) {
      const float* src = b + (k0 + k) * s.ldb + col0;
      float* out = dst + k * NR;
      for (int j0 = 0; j0 < cols; j0 += NR, out += NR * kc) {
        const int valid = min_int(NR, cols - j0);
        for (int j = 0; j < valid; ++j) out[j] = src[j0 + j];
        for (int j = valid; j < NR; ++j) out[j] = 0.f;
      }
    }
    return;
  }
  for (int j0 = 0; j0 < cols; j0 += NR, dst += NR * kc) {
    const int valid = min_int(NR, cols - j0);
    if (s.trans_b) {  // B stored (N, K): transpose NR rows of it (whole rows: few long streams to prefetch)
      transpose_into(b + (col0 + j0) * s.ldb + k0, s.ldb, valid, kc, dst, NR);
      for (int j = valid; j < NR; ++j)
        for (int k = 0; k < kc; ++k) dst[k * NR + j] = 0.f;
    } else {  // B stored (K, N): a panel's k-th row is contiguous
      for (int k = 0; k < kc; ++k) {
        const float* src = b + (k0 + k) * s.ldb + col0 + j0;
        for (int j = 0; j < valid; ++j) dst[k * NR + j] = src[j];
        for (int j = valid; j < NR; ++j) dst[k * NR + j] = 0.f;
      }
    }
  }
}

// Brings the source of the next B block towards the caches while the current block is computed, a few lines per
// micro-kernel call, so packing it reads from cache rather than memory (with a small batch B is the big operand and
// each element is used by few rows of A). A rectangle of `rows` runs of `run_bytes` bytes, `stride` bytes apart.
class BlockPrefetch {
 public:
  void start(const float* first, int64_t stride_floats, int rows, int run_floats, int calls) {
    base_ = reinterpret_cast<const char*>(first);
    stride_ = stride_floats * int64_t(sizeof(float));
    rows_ = rows;
    run_ = run_floats * int(sizeof(float));
    row_ = 0;
    offset_ = 0;
    const int64_t lines = int64_t(rows) * ((run_ + 63) / 64 + 1);
    per_call_ = int(lines / (calls > 0 ? calls : 1)) + 1;
  }
  void step() {
    for (int i = 0; i < per_call_ && row_ < rows_; ++i) {
      __builtin_prefetch(base_ + row_ * stride_ + offset_, 0, 2);
      offset_ += 64;
      if (offset_ >= run_) offset_ = 0, ++row_;
    }
  }

 private:
  const char* base_ = nullptr;
  int64_t stride_ = 0;
  int rows_ = 0, run_ = 0, row_ = 0, offset_ = 0, per_call_ = 0;
};

// The source rectangle of B's block (k [k0, k0 + kc), columns [col0, col0 + cols)) for BlockPrefetch.
inline void prefetch_b_block(BlockPrefetch& p, const GemmShape& s, const float* b, int k0, int kc, int col0, int cols,
                             int calls) {
  if (s.trans_b) {
    p.start(b + col0 * s.ldb + k0, s.ldb, cols, kc, calls);
  } else {
    p.start(b + k0 * s.ldb + col0, s.ldb, kc, cols, calls);
  }
}

// Kernel provides kBlocking and run(kc, a_sliver (kc, MR), b_panel (kc, NR), c, ldc, rows, cols, alpha, beta,
// first): C tile = alpha * sum + (first ? beta * C : C), C not read when first and beta == 0.
template <class Kernel>
void gemm_block_with(const GemmBlock& g) {
  constexpr GemmBlocking B = Kernel::kBlocking;
  const GemmShape& s = *g.s;
  for (int pc = 0; pc < s.K; pc += B.kc) {
    const int kc = min_int(B.kc, s.K - pc);
    const bool first = pc == 0;
    for (int ic = g.m0; ic < g.m1; ic += B.mc) {
      const int mc = min_int(B.mc, g.m1 - ic);
      pack_a<B.mr>(s, g.a, ic, mc, pc, kc, g.a_pack);
      for (int jc = g.n0; jc < g.n1; jc += B.nc) {
        const int nc = min_int(B.nc, g.n1 - jc);
        pack_b<B.nr>(s, g.b, pc, kc, jc, nc, g.b_pack, /*by_rows=*/true);
        // The next B block: the next columns, or the first ones of the next KC block.
        const int calls = ((mc + B.mr - 1) / B.mr) * ((nc + B.nr - 1) / B.nr);
        BlockPrefetch next;
        if (jc + B.nc < g.n1) {
          prefetch_b_block(next, s, g.b, pc, kc, jc + B.nc, min_int(B.nc, g.n1 - jc - B.nc), calls);
        } else if (pc + B.kc < s.K && ic + B.mc >= g.m1) {
          prefetch_b_block(next, s, g.b, pc + B.kc, min_int(B.kc, s.K - pc - B.kc), g.n0, min_int(B.nc, g.n1 - g.n0),
                           calls);
        }
        for (int ir = 0; ir < mc; ir += B.mr) {
          float* c_row = g.c + (ic + ir) * s.ldc + jc;
          for (int jr = 0; jr < nc; jr += B.nr) {
            Kernel::run(kc, g.a_pack + ir * kc, g.b_pack + jr * kc, c_row + jr, s.ldc, min_int(B.mr, mc - ir),
                        min_int(B.nr, nc - jr), s.alpha, s.beta, first);
            next.step();
          }
        }
      }
    }
  }
}

// Packs rows [row_begin, row_end) of A (M, K) for gemm_packed_with (row_begin a multiple of MR): per KC block,
// their slivers of the block's ceil(M / MR). Disjoint row ranges write disjoint parts of `packed`.
template <class Kernel>
void pack_a_rows(const GemmShape& s, const float* a, float* packed, int row_begin, int row_end) {
  constexpr GemmBlocking B = Kernel::kBlocking;
  const int64_t m_padded = (int64_t(s.M) + B.mr - 1) / B.mr * B.mr;
  for (int pc = 0; pc < s.K; pc += B.kc) {
    const int kc = min_int(B.kc, s.K - pc);
    pack_a<B.mr>(s, a, row_begin, row_end - row_begin, pc, kc, packed + pc * m_padded + int64_t(row_begin) * kc);
  }
}

// gemm_block_with's loop on a packed A and a B that the caller packs: for each KC block and NC block of columns,
// b.pack fills the panels, then every sliver of rows [m0, m1) runs across them. The sums run over k in the same
// order as gemm_block_with's.
template <class Kernel>
void gemm_packed_with(const GemmPackedBlock& g) {
  constexpr GemmBlocking B = Kernel::kBlocking;
  const int64_t m_padded = (int64_t(g.M) + B.mr - 1) / B.mr * B.mr;
  for (int pc = 0; pc < g.K; pc += B.kc) {
    const int kc = min_int(B.kc, g.K - pc);
    const float* a_block = g.a_packed + pc * m_padded;  // (ceil(M / MR), kc, MR)
    for (int jc = 0; jc < g.N; jc += B.nc) {
      const int nc = min_int(B.nc, g.N - jc);
      g.b->pack(g.b->context, pc, kc, jc, nc, B.nr, g.b_pack);
      for (int ir = g.m0; ir < g.m1; ir += B.mr) {
        float* c_row = g.c + int64_t(ir - g.m0) * g.ldc + jc;
        for (int jr = 0; jr < nc; jr += B.nr) {
          Kernel::run(kc, a_block + int64_t(ir) * kc, g.b_pack + jr * kc, c_row + jr, g.ldc, min_int(B.mr, g.m1 - ir),
                      min_int(B.nr, nc - jr), 1.f, g.beta, pc == 0);
        }
      }
    }
  }
}

}  // namespace
}  // namespace cpu
}  // namespace kernels
