#pragma once
// Internal to the CPU GEMM: what one thread computes (a rectangle of C over the whole K) and each instruction
// set's blocking. gemm.cpp (portable flags) splits C and calls the block function of the chosen ISA; each
// gemm_<isa>.cpp is compiled with that ISA's flags and must only be called when the CPU supports it.
#include <cstdint>

#include "kernels/linear.h"

namespace kernels {
namespace cpu {

// Register tile MR x NR of C; cache blocks: an A sliver (KC, MR) stays in L1, a packed B block (KC, NC) in L2,
// a packed A block (MC, KC) in L3. MC is a multiple of MR and NC of NR.
struct GemmBlocking {
  int mr, nr, kc, mc, nc;
};

// AVX-512: 8 x 48 = 24 zmm accumulators (+3 B vectors, 1 broadcast), 48 B rows are 3 cache lines.
constexpr GemmBlocking kBlockingAvx512{8, 48, 384, 1024, 480};
// AVX2+FMA: 6 x 16 = 12 ymm accumulators (+2 B vectors, 1 broadcast) of the 16 registers.
constexpr GemmBlocking kBlockingAvx2{6, 16, 256, 1020, 512};
// Portable: 4 x 8, which compilers keep in 8 SSE registers.
constexpr GemmBlocking kBlockingPortable{4, 8, 256, 512, 512};

struct GemmBlock {
  const GemmShape* s;
  const float* a;
  const float* b;
  float* c;
  int m0, m1, n0, n1;  // this thread's rows [m0, m1) and columns [n0, n1) of C
  float* a_pack;       // (MC / MR, KC, MR), 64-byte aligned
  float* b_pack;       // (NC / NR, KC, NR), 64-byte aligned
};

void gemm_block_portable(const GemmBlock& g);
void gemm_block_avx2(const GemmBlock& g);
void gemm_block_avx512(const GemmBlock& g);

// One thread's part of a team that shares the packed B (kernels/cpu/gemm_team.h): its rows [m0, m1) of C over all
// columns and the whole K. Every thread of the OpenMP team calls it (it holds barriers).
struct GemmTeamBlock {
  const GemmShape* s;
  const float* a;
  const float* b;
  float* c;
  int m0, m1;           // this thread's rows, m0 a multiple of MR
  int member, members;  // this thread's place in the team: it packs that share of every B block's panels
  float* a_pack;        // (ceil((m1 - m0) / MR), KC, MR), this thread's own, 64-byte aligned
  float* b_pack[2];     // (NC / NR, KC, NR) each, shared by the team, 64-byte aligned
};
// Whether gemm() runs shape s on `threads` threads as such a team (else as chunks the threads take in turn).
bool gemm_team_applies(const GemmShape& s, int threads);
void gemm_team_portable(const GemmTeamBlock& g);
void gemm_team_avx2(const GemmTeamBlock& g);
void gemm_team_avx512(const GemmTeamBlock& g);

// A whole A packed once (gemm_pack_a_<isa>), for GEMMs that share it: per KC block pc, ceil(M / MR) slivers
// (kc, MR), the block at offset pc * ceil(M / MR) * MR. Each call packs the slivers of rows [row_begin, row_end).
void gemm_pack_a_portable(const GemmShape& s, const float* a, float* packed, int row_begin, int row_end);
void gemm_pack_a_avx2(const GemmShape& s, const float* a, float* packed, int row_begin, int row_end);
void gemm_pack_a_avx512(const GemmShape& s, const float* a, float* packed, int row_begin, int row_end);

// One thread's C rows [m0, m1) (m0 a multiple of MR) = A (packed) * B + beta * C over the whole K, with B packed
// block by block by b.pack (kernels/cpu/gemm.h: GemmPanelSource).
struct GemmPanelSource;
struct GemmPackedBlock {
  int M, N, K;
  const float* a_packed;  // gemm_pack_a layout
  const GemmPanelSource* b;
  float* c;  // row m0 of C, rows ldc apart
  int64_t ldc;
  float beta;
  int m0, m1;
  float* b_pack;  // (NC / NR, KC, NR), 64-byte aligned
};
void gemm_packed_block_portable(const GemmPackedBlock& g);
void gemm_packed_block_avx2(const GemmPackedBlock& g);
void gemm_packed_block_avx512(const GemmPackedBlock& g);

// gemm_packed_with's loop with B read in place (kernels/cpu/gemm.h: gemm_packed_b_in_place); AVX-512 only.
struct GemmInPlaceBlock {
  int M, N, K;
  const float* a_packed;  // gemm_pack_a layout
  const float* b;         // (K, N), rows ldb apart
  int64_t ldb;
  float* c;  // row m0 of C, rows ldc apart
  int64_t ldc;
  float beta;
  int m0, m1;
};
void gemm_b_in_place_avx512(const GemmInPlaceBlock& g);

}  // namespace cpu
}  // namespace kernels
