#pragma once
// Our own CPU SGEMM on kernels::GemmShape (row-major, op(A) and op(B) transposes, alpha, beta; beta == 0 never
// reads C): packed panels sized to the caches and register-blocked micro-kernels per instruction set, threaded
// with OpenMP over a split of C (kernels/cpu/gemm.cpp says which). Each element of C is summed in the same order
// whatever the split and path, so the result is bit-identical for any thread count.
#include "kernels/cpu/cpu_isa.h"
#include "kernels/linear.h"

namespace kernels {
namespace cpu {

// Runs on active_cpu_isa().
void gemm(const GemmShape& s, const float* a, const float* b, float* c);
// Runs on `isa` (throws std::invalid_argument if this CPU lacks it).
void gemm(const GemmShape& s, const float* a, const float* b, float* c, CpuIsa isa);

// For a convolution's GEMMs, which share A (the weights) across images and build B from the image itself: A is packed
// once (gemm_pack_a), B block by block while the GEMM runs (no im2col matrix in memory). Same summation order, so the
// same bits, as gemm() on the same operands.

// Fills dst (ceil(cols / nr), kc, nr) with B's rows [k0, k0 + kc) and columns [col0, col0 + cols): column j at
// dst[(j / nr) * kc * nr + (k - k0) * nr + j % nr], columns past `cols` of the last panel zero.
struct GemmPanelSource {
  void (*pack)(const void* context, int k0, int kc, int col0, int cols, int nr, float* dst);
  const void* context;
};

// Rows of the register tile (MR) on `isa`: gemm_packed's row ranges start at multiples of it.
int gemm_tile_rows(CpuIsa isa);
// Columns of the register tile (NR) on `isa`: column blocks that are multiples of it add no padded columns.
int gemm_tile_cols(CpuIsa isa);
// Floats gemm_pack_a writes for an (M, K) A.
int64_t gemm_packed_a_floats(int M, int K, CpuIsa isa);
// Packs A (s.M, s.K, s.trans_a, s.lda; the rest unused) for gemm_packed on the same isa.
void gemm_pack_a(const GemmShape& s, const float* a, float* packed, CpuIsa isa);
// Packs only rows [row_begin, row_end) of it (both multiples of gemm_tile_rows(isa), or row_end = M), into the places
// gemm_pack_a puts them: threads packing disjoint ranges into one buffer together make gemm_pack_a's result.
void gemm_pack_a_rows(const GemmShape& s, const float* a, float* packed, int row_begin, int row_end, CpuIsa isa);
// C rows [m0, m1) = A rows * B (N columns, K rows, from b) + beta * C, on the calling thread (beta == 0 never reads
// C). m0 is a multiple of gemm_tile_rows(isa); c points at row m0, rows ldc apart.
void gemm_packed(int M, int N, int K, const float* a_packed, const GemmPanelSource& b, float* c, int64_t ldc,
                 float beta, int m0, int m1, CpuIsa isa);

// Whether gemm_packed_b_in_place runs on `isa` (AVX-512 only).
bool gemm_b_in_place_supported(CpuIsa isa);
// gemm_packed with B (K rows of N floats, ldb apart) read where it lies instead of packed: the same sums, so the same
// bits. For few rows of C (a 1x1 convolution of 16-32 outputs), where packing B costs as much as the multiply-adds.
void gemm_packed_b_in_place(int M, int N, int K, const float* a_packed, const float* b, int64_t ldb, float* c,
                            int64_t ldc, float beta, int m0, int m1, CpuIsa isa);

}  // namespace cpu
}  // namespace kernels
