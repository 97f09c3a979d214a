#pragma once
// Internal to the CPU GEMM: the path for a few rows of C against a big B stored transposed, which is a fully connected
// layer's forward pass (C = Y (batch, O), A = X (batch, I), B^T = W (O, I), 16-100 MB of weights at batch 64).
//
// The blocked path packs W^T into NR-column panels, a transpose of every weight in KC-long runs of each row (1.5 KB),
// and then uses each packed weight for only M rows of C. This path turns the product around: C^T (N, M) = B^T (N, K)
// * op(A)^T (K, M). The small op(A)^T is packed once, whole (or in slices that fit L2), as rows of M padded to 16; the
// weights are never packed: the micro-kernel broadcasts them straight from R rows of B^T, each read front to back in
// one long run (R hardware-prefetched streams), and C^T's tiles are written back transposed at the end (C is small).
//
// Same bits as the blocked path: each element's sum runs over k in the same KC blocks, from zero in each block, with
// the same FMAs and the same alpha / beta epilogue per block. So linear layers and the nets give identical results
// whichever path a shape takes.
#include <cstdint>

#include "kernels/cpu/cpu_isa.h"
#include "kernels/linear.h"

namespace kernels {
namespace cpu {

// Rows of B^T (columns of C) in one register tile of the streaming micro-kernel; chunks of C's columns start at
// multiples of it.
constexpr int kStreamTileCols = 6;
// Rows of C the micro-kernel covers in one pass (4 zmm vectors); more rows run as several passes over the same
// weights while they are in L1.
constexpr int kStreamPassRows = 64;
// Largest M the path takes: past it each weight is used often enough that packing it costs little.
constexpr int kStreamMaxRows = 128;
// Smallest B (floats) the path takes: about twice a 2 MB L2, where streaming the weights is what limits.
constexpr int64_t kStreamMinBFloats = int64_t(1) << 20;

// Whether gemm_stream runs on `isa` (AVX-512 only).
bool gemm_stream_supported(CpuIsa isa);
// Whether gemm() on `isa` takes the streaming path for shape s.
bool gemm_stream_applies(const GemmShape& s, CpuIsa isa);
// Runs it (s.trans_b, s.M <= kStreamMaxRows, gemm_stream_supported): packs op(A)^T, then `threads` OpenMP threads
// share C's columns. Callers that know the shape gains (a convolution's 1x1 backward filter) call it directly.
void gemm_stream(const GemmShape& s, const float* a, const float* b, float* c, int threads);

// Rows of the packed op(A)^T: M rounded up to 16.
inline int stream_padded_rows(int M) {
  return (M + 15) / 16 * 16;
}
// K rows of the packed op(A)^T per slice: a slice (K rows, padded M) fits in about half of L2, a multiple of KC.
int stream_slice_k(int M);

// Fills packed (k1 - k0, stream_padded_rows(M)) with op(A)^T's rows [k0, k1): element (k, m) = op(A)[m][k], rows past
// M zero. 64-byte aligned rows.
void gemm_stream_pack_avx512(const GemmShape& s, const float* a, int k0, int k1, float* packed);
// C columns [n0, n1) (n0 a multiple of kStreamTileCols) for op(A)^T rows [k0, k1) (k0 a multiple of KC), packed as
// above: the slice at k0 == 0 writes C (or scales it by beta), a later one adds to it.
void gemm_stream_columns_avx512(const GemmShape& s, const float* packed, int k0, int k1, const float* b, float* c,
                                int n0, int n1);

}  // namespace cpu
}  // namespace kernels
