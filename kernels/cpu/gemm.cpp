// The CPU GEMM's entry: checks the shape, picks the instruction set's functions and one of three ways to thread it:
// the streaming path for a few rows against a big B^T (gemm_stream.h), one team sharing packed B for big GEMMs
// (gemm_team.h), or chunks of C that the OpenMP threads take in turn, each thread with its own packing buffers. Which
// thread computes an element, and which way, never changes how it is summed (gemm_driver.h), so any thread count
// gives the same bits.
#include "kernels/cpu/gemm.h"

#include <omp.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cpu/gemm_block.h"
#include "kernels/cpu/gemm_pack_buffer.h"
#include "kernels/cpu/gemm_stream.h"

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

using TeamFunction = void (*)(const GemmTeamBlock&);
TeamFunction team_function_of(CpuIsa isa) {
  return isa == CpuIsa::avx512 ? gemm_team_avx512 : isa == CpuIsa::avx2 ? gemm_team_avx2 : gemm_team_portable;
}

// C = beta * C when there is nothing to multiply (K == 0 or alpha == 0); beta == 0 writes zeros without reading C.
void scale_c(const GemmShape& s, float* c) {
  for (int i = 0; i < s.M; ++i) {
    float* row = c + i * s.ldc;
    for (int j = 0; j < s.N; ++j) row[j] = s.beta == 0.f ? 0.f : s.beta * row[j];
  }
}

// Below this many multiply-adds a parallel region costs more than it saves.
constexpr int64_t kParallelMinMacs = int64_t(1) << 18;

int ceil_div(int64_t a, int64_t b) {
  return int((a + b - 1) / b);
}

// C is cut into chunks, about two per thread (a row of them when M fits one packed A block), which the threads take
// one at a time: on a shared machine a thread that loses its core for a while leaves its share to the others
// instead of holding up the call. A chunk spans several B blocks where it can: its loop then walks each KC block
// across them, reading B's rows in long runs (one-block chunks made small-batch layers 10-20% slower). The tiles are
// dealt out evenly (chunk sizes differ by one tile at most): equal-sized chunks and a short last one left 1024^3's 22
// column tiles as 6, 6, 6, 4, so two threads ended with 12 and 10 and the call ran about 10% longer than its share.
struct Chunks {
  int m_count, n_count;  // chunk grid
  int m_tiles, n_tiles;  // C's tiles (MR rows, NR columns), dealt to the chunks as evenly as whole tiles allow
  int first_row(int mi, int mr) const { return int(int64_t(mi) * m_tiles / m_count) * mr; }
  int first_col(int ni, int nr) const { return int(int64_t(ni) * n_tiles / n_count) * nr; }
};

// Each chunk packs its own rows of A (once per KC block) and its own columns of B (once per KC block and MC rows of
// the chunk), so a grid of m x n chunks packs A n times and B about max(m, M / MC) times. Of the grids with at least
// the wanted number of chunks, the one that packs the fewest floats (1024^3 on 2 threads, before it ran as a team,
// packed A four times as a row of 4 chunks; 2 x 2 packs A and B twice each: 7% faster).
Chunks plan_chunks(const GemmShape& s, const GemmBlocking& bl, int threads) {
  const int m_tiles = ceil_div(s.M, bl.mr), n_tiles = ceil_div(s.N, bl.nr);
  const int wanted = threads > 1 ? 2 * threads : 1, m_least = std::min(m_tiles, ceil_div(s.M, bl.mc));
  Chunks best{m_least, 1, m_tiles, n_tiles};
  double best_cost = -1;
  for (int n = 1; n <= std::min(n_tiles, wanted); ++n) {
    const int m = std::min(m_tiles, std::max(m_least, ceil_div(wanted, n)));
    const bool enough = int64_t(m) * n >= wanted, best_enough = int64_t(best.m_count) * best.n_count >= wanted;
    const double cost = double(n) * s.M * s.K + double(std::max(m, m_least)) * s.K * s.N;
    if (best_cost < 0 || (enough && !best_enough) || (enough == best_enough && cost < best_cost))
      best = {m, n, m_tiles, n_tiles}, best_cost = cost;
  }
  return best;
}

thread_local PackBuffer t_pack;    // this thread's packing buffers
thread_local PackBuffer t_shared;  // the two B blocks a team started by this thread shares

// Big GEMMs (every thread with 256 rows or more, K and N 256 or more) run as one team that packs each B block once
// for all (kernels/cpu/gemm_team.h): 2-5% faster at 1024^3 and 2048^3 on 2 threads than the chunks, which each pack
// their own A rows and B columns (even at 3072^3 and 4096^3). The price is a barrier per B block, where a thread that
// lost its core holds up the others; the chunks below, which the threads take in turn, keep that from the smaller
// GEMMs.
constexpr int kTeamMinRowsPerThread = 256;

void run_team(const GemmShape& s, const float* a, const float* b, float* c, CpuIsa isa, int threads) {
  const GemmBlocking& bl = blocking_of(isa);
  const TeamFunction team = team_function_of(isa);
  const size_t b_floats = size_t(bl.nc) * bl.kc;
  float* shared = t_shared.get(2 * b_floats);  // two (NC / NR, KC, NR) blocks
  const int m_tiles = ceil_div(s.M, bl.mr);
#pragma omp parallel num_threads(threads)
  {
    GemmTeamBlock g;
    g.s = &s;
    g.a = a;
    g.b = b;
    g.c = c;
    g.members = omp_get_num_threads();
    g.member = omp_get_thread_num();
    // Rows dealt as whole tiles, as evenly as they go.
    g.m0 = int(int64_t(g.member) * m_tiles / g.members) * bl.mr;
    g.m1 = std::min(s.M, int(int64_t(g.member + 1) * m_tiles / g.members) * bl.mr);
    g.a_pack = t_pack.get(size_t(ceil_div(g.m1 - g.m0, bl.mr)) * bl.mr * bl.kc);
    g.b_pack[0] = shared;
    g.b_pack[1] = shared + b_floats;
    team(g);
  }
}

}  // namespace

bool gemm_team_applies(const GemmShape& s, int threads) {
  return threads > 1 && s.M >= kTeamMinRowsPerThread * threads && s.N >= 256 && s.K >= 256;
}

int gemm_tile_rows(CpuIsa isa) {
  return blocking_of(isa).mr;
}

int gemm_tile_cols(CpuIsa isa) {
  return blocking_of(isa).nr;
}

int64_t gemm_packed_a_floats(int M, int K, CpuIsa isa) {
  const int mr = blocking_of(isa).mr;
  return (int64_t(M) + mr - 1) / mr * mr * K;
}

void gemm_pack_a(const GemmShape& s, const float* a, float* packed, CpuIsa isa) {
  gemm_pack_a_rows(s, a, packed, 0, s.M, isa);
}

void gemm_pack_a_rows(const GemmShape& s, const float* a, float* packed, int row_begin, int row_end, CpuIsa isa) {
  check_gemm_shape(s);
  const int mr = blocking_of(isa).mr;
  if (row_begin < 0 || row_end > s.M || row_begin % mr != 0 || (row_end != s.M && row_end % mr != 0))
    throw std::invalid_argument("cpu gemm_pack_a_rows: rows [" + std::to_string(row_begin) + ", " +
                                std::to_string(row_end) + ") of M " + std::to_string(s.M) +
                                " (a range starts at a tile boundary and ends at one or at M)");
  if (!cpu_isa_supported(isa))
    throw std::invalid_argument(std::string("cpu gemm: this CPU lacks ") + cpu_isa_name(isa));
  if (row_end <= row_begin || s.K == 0) return;
  (isa == CpuIsa::avx512 ? gemm_pack_a_avx512
   : isa == CpuIsa::avx2 ? gemm_pack_a_avx2
                         : gemm_pack_a_portable)(s, a, packed, row_begin, row_end);
}

namespace {
// C rows (rows, N), ldc apart, = beta * C (0 without reading C when beta == 0): a packed-A GEMM with K == 0.
void scale_rows(float* c, int64_t ldc, int rows, int N, float beta) {
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < N; ++j) c[i * ldc + j] = beta == 0.f ? 0.f : beta * c[i * ldc + j];
}
}  // namespace

void gemm_packed(int M, int N, int K, const float* a_packed, const GemmPanelSource& b, float* c, int64_t ldc,
                 float beta, int m0, int m1, CpuIsa isa) {
  const GemmBlocking& bl = blocking_of(isa);
  if (M < 0 || N < 0 || K < 0 || m0 < 0 || m1 > M || m0 % bl.mr != 0 || ldc < N)
    throw std::invalid_argument("cpu gemm_packed: M " + std::to_string(M) + ", N " + std::to_string(N) + ", K " +
                                std::to_string(K) + ", rows [" + std::to_string(m0) + ", " + std::to_string(m1) +
                                "), ldc " + std::to_string(ldc) + " (rows must start at a tile boundary)");
  if (!cpu_isa_supported(isa))
    throw std::invalid_argument(std::string("cpu gemm: this CPU lacks ") + cpu_isa_name(isa));
  if (m1 <= m0 || N == 0) return;
  if (K == 0) return scale_rows(c, ldc, m1 - m0, N, beta);
  GemmPackedBlock g{M, N, K, a_packed, &b, c, ldc, beta, m0, m1, t_pack.get(size_t(bl.nc) * bl.kc)};
  (isa == CpuIsa::avx512 ? gemm_packed_block_avx512
   : isa == CpuIsa::avx2 ? gemm_packed_block_avx2
                         : gemm_packed_block_portable)(g);
}

bool gemm_b_in_place_supported(CpuIsa isa) {
  return isa == CpuIsa::avx512 && cpu_isa_supported(isa);
}

void gemm_packed_b_in_place(int M, int N, int K, const float* a_packed, const float* b, int64_t ldb, float* c,
                            int64_t ldc, float beta, int m0, int m1, CpuIsa isa) {
  const GemmBlocking& bl = blocking_of(isa);
  if (M < 0 || N < 0 || K < 0 || m0 < 0 || m1 > M || m0 % bl.mr != 0 || ldc < N || ldb < N)
    throw std::invalid_argument("cpu gemm_packed_b_in_place: M " + std::to_string(M) + ", N " + std::to_string(N) +
                                ", K " + std::to_string(K) + ", rows [" + std::to_string(m0) + ", " +
                                std::to_string(m1) + "), ldb " + std::to_string(ldb) + ", ldc " + std::to_string(ldc) +
                                " (rows must start at a tile boundary)");
  if (!gemm_b_in_place_supported(isa))
    throw std::invalid_argument(std::string("cpu gemm_packed_b_in_place: not on ") + cpu_isa_name(isa) +
                                " (AVX-512 only)");
  if (m1 <= m0 || N == 0) return;
  if (K == 0) return scale_rows(c, ldc, m1 - m0, N, beta);
  gemm_b_in_place_avx512({M, N, K, a_packed, b, ldb, c, ldc, beta, m0, m1});
}

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
  // Called from inside a parallel region (a convolution's work items) the call runs on the calling thread.
  const bool small = int64_t(s.M) * s.N * s.K < kParallelMinMacs;
  const int threads = small || omp_in_parallel() ? 1 : omp_get_max_threads();
  if (gemm_stream_applies(s, isa)) return gemm_stream(s, a, b, c, threads);
  if (gemm_team_applies(s, threads)) return run_team(s, a, b, c, isa, threads);
  const Chunks chunks = plan_chunks(s, bl, threads);
  const int count = chunks.m_count * chunks.n_count;
  const size_t a_floats = size_t(bl.mc) * bl.kc, b_floats = size_t(bl.nc) * bl.kc;

#pragma omp parallel num_threads(std::min(threads, count)) if (threads > 1 && count > 1)
  {
    float* buffer = t_pack.get(a_floats + b_floats);
    GemmBlock g;
    g.s = &s;
    g.a = a;
    g.b = b;
    g.c = c;
    g.a_pack = buffer;             // (MC / MR, KC, MR)
    g.b_pack = buffer + a_floats;  // (NC / NR, KC, NR)
#pragma omp for schedule(dynamic, 1)
    for (int chunk = 0; chunk < count; ++chunk) {
      const int mi = chunk / chunks.n_count, ni = chunk % chunks.n_count;
      g.m0 = chunks.first_row(mi, bl.mr);
      g.m1 = std::min(s.M, chunks.first_row(mi + 1, bl.mr));
      g.n0 = chunks.first_col(ni, bl.nr);
      g.n1 = std::min(s.N, chunks.first_col(ni + 1, bl.nr));
      block(g);
    }
  }
}

}  // namespace cpu
}  // namespace kernels
