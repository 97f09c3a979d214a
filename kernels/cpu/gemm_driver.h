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
#include "kernels/cpu/gemm_block.h"

namespace kernels {
namespace cpu {
namespace {

inline int min_int(int a, int b) {
  return a < b ? a : b;
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
    } else {  // A stored (M, K): gather MR rows
      for (int i = 0; i < valid; ++i) {
        const float* src = a + (row0 + r + i) * s.lda + k0;
        for (int k = 0; k < kc; ++k) dst[k * MR + i] = src[k];
      }
      for (int i = valid; i < MR; ++i)
        for (int k = 0; k < kc; ++k) dst[k * MR + i] = 0.f;
    }
  }
}

// B k [k0, k0 + kc), columns [col0, col0 + cols) -> dst (ceil(cols / NR), kc, NR), columns past `cols` zero.
template <int NR>
void pack_b(const GemmShape& s, const float* b, int k0, int kc, int col0, int cols, float* dst) {
  for (int j0 = 0; j0 < cols; j0 += NR, dst += NR * kc) {
    const int valid = min_int(NR, cols - j0);
    if (s.trans_b) {  // B stored (N, K): gather NR rows of it
      for (int j = 0; j < valid; ++j) {
        const float* src = b + (col0 + j0 + j) * s.ldb + k0;
        for (int k = 0; k < kc; ++k) dst[k * NR + j] = src[k];
      }
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
        pack_b<B.nr>(s, g.b, pc, kc, jc, nc, g.b_pack);
        for (int ir = 0; ir < mc; ir += B.mr) {
          float* c_row = g.c + (ic + ir) * s.ldc + jc;
          for (int jr = 0; jr < nc; jr += B.nr) {
            Kernel::run(kc, g.a_pack + ir * kc, g.b_pack + jr * kc, c_row + jr, s.ldc, min_int(B.mr, mc - ir),
                        min_int(B.nr, nc - jr), s.alpha, s.beta, first);
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace cpu
}  // namespace kernels
