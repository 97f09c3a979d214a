// The CPU GEMM's entry: checks the shape, picks the instruction set's block function, splits C into one rectangle
// per OpenMP thread and gives each thread its own packing buffers. The split only decides which thread computes an
// element, never how (gemm_driver.h), so any thread count gives the same bits.
#include "kernels/cpu/gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>

#include "kernels/cpu/gemm_block.h"

namespace kernels {
namespace cpu {

namespace {

void check_gemm_shape(const GemmShape& s) {
  const int64_t a_cols = s.trans_a ? s.M : s.K, b_cols = s.trans_b ? s.K : s.N;
  if (s.M < 0 || s.N < 0 || s.K < 0 || s.lda < a_cols || s.ldb < b_cols || s.ldc < s.N || s.lda < 1 || s.ldb < 1 ||
      s.ldc < 1)
    throw std::invalid_argument("cpu gemm shape: M " + std::to_string(s.M) + ", N " + std::to_string(s.N) + ", K " +
                                std::to_string(s.K) + ", lda " + std::to_string(s.lda) + ", ldb " +
                                std::to_string(s.ldb) + ", ldc " + std::to_string(s.ldc) +
                                " (sizes must be >= 0 and leading dimensions >= the stored rows' lengths)");
}

const GemmBlocking& blocking_of(CpuIsa isa) {
  return isa == CpuIsa::avx512 ? kBlockingAvx512 : isa == CpuIsa::avx2 ? kBlockingAvx2 : kBlockingPortable;
}

using BlockFunction = void (*)(const GemmBlock&);
BlockFunction block_function_of(CpuIsa isa) {
  return isa == CpuIsa::avx512 ? gemm_block_avx512 : isa == CpuIsa::avx2 ? gemm_block_avx2 : gemm_block_portable;
}

// A thread's packing buffers, kept between calls (OpenMP reuses its threads) and grown when a blocking needs more.
class PackBuffer {
 public:
  ~PackBuffer() { std::free(data_); }
  float* get(size_t floats) {
    if (floats > size_) {
      std::free(data_);
      data_ = static_cast<float*>(std::aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64));
      if (!data_) throw std::bad_alloc();
      size_ = floats;
    }
    return data_;
  }

 private:
  float* data_ = nullptr;
  size_t size_ = 0;
};

// C = beta * C when there is nothing to multiply (K == 0 or alpha == 0); beta == 0 writes zeros without reading C.
void scale_c(const GemmShape& s, float* c) {
  for (int i = 0; i < s.M; ++i) {
    float* row = c + i * s.ldc;
    for (int j = 0; j < s.N; ++j) row[j] = s.beta == 0.f ? 0.f : s.beta * row[j];
  }
}

// Splits `tiles` tiles into `parts` nearly equal runs; returns the first tile of run `part`.
int split_point(int tiles, int parts, int part) {
  return int(int64_t(tiles) * part / parts);
}

// Below this many multiply-adds a parallel region costs more than it saves.
constexpr int64_t kParallelMinMacs = int64_t(1) << 18;

// How many row parts a grid of `threads` rectangles over C has: the factorisation whose largest rectangle has the
// fewest tiles (ties: more column parts, so each thread's B block is its own).
int row_parts_for(int threads, int m_tiles, int n_tiles) {
  int row_parts = 1;
  int64_t best = -1;
  for (int rows = 1; rows <= threads; ++rows) {
    if (threads % rows) continue;
    const int64_t cols = threads / rows;
    const int64_t largest = int64_t((m_tiles + rows - 1) / rows) * ((n_tiles + cols - 1) / cols);
    if (best < 0 || largest < best) best = largest, row_parts = rows;
  }
  return row_parts;
}

}  // namespace

void gemm(const GemmShape& s, const float* a, const float* b, float* c) {
  gemm(s, a, b, c, active_cpu_isa());
}

void gemm(const GemmShape& s, const float* a, const float* b, float* c, CpuIsa isa) {
  check_gemm_shape(s);
  if (!cpu_isa_supported(isa))
    throw std::invalid_argument(std::string("cpu gemm: this CPU lacks ") + cpu_isa_name(isa));
  if (s.M == 0 || s.N == 0) return;
  if (s.K == 0 || s.alpha == 0.f) return scale_c(s, c);

  const GemmBlocking& bl = blocking_of(isa);
  const BlockFunction block = block_function_of(isa);
  const int m_tiles = (s.M + bl.mr - 1) / bl.mr, n_tiles = (s.N + bl.nr - 1) / bl.nr;
  const int64_t macs = int64_t(s.M) * s.N * s.K;
  int threads = macs < kParallelMinMacs ? 1 : omp_get_max_threads();
  if (threads > m_tiles * n_tiles) threads = m_tiles * n_tiles;
  const size_t a_floats = size_t(bl.mc) * bl.kc, b_floats = size_t(bl.nc) * bl.kc;

#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    static thread_local PackBuffer pack;
    // The team may be smaller than asked for (inside another parallel region it has one thread): split C by its
    // actual size.
    const int team = omp_get_num_threads(), row_parts = row_parts_for(team, m_tiles, n_tiles);
    const int col_parts = team / row_parts;
    const int t = omp_get_thread_num(), row_part = t / col_parts, col_part = t % col_parts;
    float* buffer = pack.get(a_floats + b_floats);
    GemmBlock g;
    g.s = &s;
    g.a = a;
    g.b = b;
    g.c = c;
    g.m0 = split_point(m_tiles, row_parts, row_part) * bl.mr;
    g.m1 = std::min(s.M, split_point(m_tiles, row_parts, row_part + 1) * bl.mr);
    g.n0 = split_point(n_tiles, col_parts, col_part) * bl.nr;
    g.n1 = std::min(s.N, split_point(n_tiles, col_parts, col_part + 1) * bl.nr);
    g.a_pack = buffer;             // (MC / MR, KC, MR)
    g.b_pack = buffer + a_floats;  // (NC / NR, KC, NR)
    if (g.m0 < g.m1 && g.n0 < g.n1) block(g);
  }
}

}  // namespace cpu
}  // namespace kernels
