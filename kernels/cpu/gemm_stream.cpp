// The streaming small-M GEMM's driver (kernels/cpu/gemm_stream.h): packs op(A)^T a slice of K at a time, all threads
// together, then the threads take chunks of C's columns; each chunk's tiles stream their rows of B^T over the slice.
// Which thread computes a column never changes how it is summed, so any thread count gives the same bits.
#include "kernels/cpu/gemm_stream.h"

#include <omp.h>

#include <algorithm>

#include "kernels/cpu/gemm_block.h"
#include "kernels/cpu/gemm_pack_buffer.h"

namespace kernels {
namespace cpu {

namespace {

// The packed slice of op(A)^T stays in L2 while every tile of the chunk reads it: about half of a 2 MB L2 (the
// other half for the weights passing through, and C's tiles).
constexpr int64_t kSliceBytes = int64_t(1) << 20;
// Rows of K packed per work item when the threads pack a slice together.
constexpr int kPackRows = 128;

int ceil_div(int64_t a, int64_t b) {
  return int((a + b - 1) / b);
}

thread_local PackBuffer t_packed;  // the calling thread's packed op(A)^T slice, shared by its team

}  // namespace

bool gemm_stream_supported(CpuIsa isa) {
  return isa == CpuIsa::avx512 && cpu_isa_supported(isa);
}

bool gemm_stream_applies(const GemmShape& s, CpuIsa isa) {
  return isa == CpuIsa::avx512 && s.trans_b && s.M <= kStreamMaxRows && int64_t(s.N) * s.K >= kStreamMinBFloats;
}

int stream_slice_k(int M) {
  const int kc = kBlockingAvx512.kc;
  const int64_t rows = kSliceBytes / (int64_t(sizeof(float)) * stream_padded_rows(M));
  return int(std::max<int64_t>(kc, rows / kc * kc));
}

void gemm_stream(const GemmShape& s, const float* a, const float* b, float* c, int threads) {
  const int mp = stream_padded_rows(s.M), slice = std::min(s.K, stream_slice_k(s.M));
  float* packed = t_packed.get(size_t(slice) * mp);  // (slice, mp)
  // Chunks of C's columns, whole tiles dealt evenly, several per thread so that one that loses its core for a while
  // leaves its share to the others.
  const int tiles = ceil_div(s.N, kStreamTileCols);
  const int count = std::min(tiles, threads > 1 ? 4 * threads : 1);
  auto first_col = [&](int i) { return int(int64_t(i) * tiles / count) * kStreamTileCols; };

#pragma omp parallel num_threads(threads) if (threads > 1)
  for (int k0 = 0; k0 < s.K; k0 += slice) {
    const int k1 = std::min(s.K, k0 + slice), pieces = ceil_div(k1 - k0, kPackRows);
#pragma omp for schedule(static)
    for (int p = 0; p < pieces; ++p) {
      const int p0 = k0 + p * kPackRows;
      gemm_stream_pack_avx512(s, a, p0, std::min(k1, p0 + kPackRows), packed + int64_t(p) * kPackRows * mp);
    }
#pragma omp for schedule(dynamic, 1)
    for (int i = 0; i < count; ++i)
      gemm_stream_columns_avx512(s, packed, k0, k1, b, c, first_col(i), std::min(s.N, first_col(i + 1)));
  }
}

}  // namespace cpu
}  // namespace kernels
