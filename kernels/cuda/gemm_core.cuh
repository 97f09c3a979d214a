#pragma once
// The GEMM machinery shared by gemm.cu and the convolution kernels (which are implicit GEMMs): operand sources and
// tile loaders, output stores with a fused epilogue, and the two tiled block routines (one output per thread; a
// register-blocked 8x8 per thread). Include after kernels/cuda/portable.h.
//
// Vocabulary: the block computes a tile of C (M, N) = A (M, K) * B (K, N). Both operands are seen the same way, as
// an "i by k" matrix: i is the row m for A and the column n for B. Shared-memory tiles are always k-major,
// tile[k][i], so the inner loop reads a row of A's tile and a row of B's tile and forms their outer product.
//
// An operand Source says where element (i, k) lives; it splits the address into a part that depends on i only
// (IState, computed once per block for the i a thread loads) and a part that depends on k only (KState, computed
// once per k-slice), so an implicit GEMM pays its index divisions once per row or column, not once per element.
#include <cstdint>

namespace kernels::MASSMAP_GPU_NS {
namespace gemm {

// What happens to a sum on its way to memory: out = relu(alpha * sum + bias + beta * out).
// beta == 0 never reads out (it may be uninitialised); relu maps x < 0 to 0 and lets NaN through (as the CPU).
struct Epilogue {
  float alpha = 1.f, beta = 0.f;
  const float* row_bias = nullptr;  // (M) or null: one value per row of C (conv: per output channel)
  const float* col_bias = nullptr;  // (N) or null: one value per column of C (linear: per output feature)
  bool relu = false;
};

__device__ inline float finish(const Epilogue& e, float sum, float bias, const float* out) {
  float v = e.alpha * sum + bias;
  if (e.beta != 0.f) v += e.beta * *out;
  if (e.relu) v = v < 0.f ? 0.f : v;
  return v;
}

// ---- sources: element (i, k) of an operand --------------------------------------------------------------------

// A strided matrix: element (i, k) at base[i * i_stride + k * k_stride], zero outside (extent, k_count).
struct MatrixSource {
  const float* base;
  int64_t i_stride, k_stride;
  int extent, k_count;

  struct IState {
    const float* row;
    bool valid;
  };
  struct KState {
    int64_t offset;
    bool valid;
  };
  __device__ IState at_i(int i) const { return {base + int64_t(i) * i_stride, i < extent}; }
  __device__ KState at_k(int k) const { return {int64_t(k) * k_stride, k < k_count}; }
  __device__ float load(const IState& i, const KState& k) const { return i.valid && k.valid ? i.row[k.offset] : 0.f; }
};

// ---- stores: where C (m, n) goes, and the epilogue ------------------------------------------------------------

// C as a strided matrix: C (m, n) at base[m * ldc + n].
struct MatrixStore {
  float* base;
  int64_t ldc;
  int M, N;
  Epilogue epilogue;

  struct Row {
    float* out;
    float bias;
    bool valid;
  };
  struct Col {
    int64_t offset;
    float bias;
    bool valid;
  };
  __device__ Row row(int m) const {
    const bool valid = m < M;
    return {base + int64_t(m) * ldc, valid && epilogue.row_bias ? epilogue.row_bias[m] : 0.f, valid};
  }
  __device__ Col col(int n) const {
    const bool valid = n < N;
    return {n, valid && epilogue.col_bias ? epilogue.col_bias[n] : 0.f, valid};
  }
  __device__ void write(const Row& r, const Col& c, float sum) const {
    if (!r.valid || !c.valid) return;
    float* out = r.out + c.offset;
    *out = finish(epilogue, sum, r.bias + c.bias, out);
  }
};

// ---- the tiled block routine: one output per thread -----------------------------------------------------------
// What it buys over one thread per output: a 16x16 block loads each A and B element once into shared memory and
// every thread of the row (column) reuses it, so global traffic drops 16-fold. Each thread still does one FMA per
// two shared-memory loads, which is what register blocking fixes next.

constexpr int kTiledSize = 16;  // 16x16 threads per block, 16x16 outputs, 16-deep k-slices

template <class ASource, class BSource, class Store>
__device__ inline void tiled_block(const ASource& a, const BSource& b, int k_count, const Store& store, int row0,
                                   int col0) {
  constexpr int T = kTiledSize;
  MASSMAP_SHARED(float, a_tile, [T][T + 1]);  // (k, m) of A; +1 column: the transposed writes hit distinct banks
  MASSMAP_SHARED(float, b_tile, [T][T]);      // (k, n) of B
  const int tx = threadIdx.x, ty = threadIdx.y;
  // Consecutive threads (tx) walk k of A (a row-major A or a filter row) and n of B (a row of B or of the image),
  // so both global reads are coalesced. The i states are fixed for the whole loop.
  const typename ASource::IState a_row = a.at_i(row0 + ty);
  const typename BSource::IState b_col = b.at_i(col0 + tx);
  float sum = 0.f;
  for (int k0 = 0; k0 < k_count; k0 += T) {
    a_tile[tx][ty] = a.load(a_row, a.at_k(k0 + tx));
    b_tile[ty][tx] = b.load(b_col, b.at_k(k0 + ty));
    __syncthreads();
    MASSMAP_UNROLL
    for (int k = 0; k < T; ++k) sum += a_tile[k][ty] * b_tile[k][tx];
    __syncthreads();  // before the next slice overwrites the tiles
  }
  store.write(store.row(row0 + ty), store.col(col0 + tx), sum);
}

// ---- the register-blocked block routine ------------------------------------------------------------------------
// What it buys: each thread computes an 8x8 block of outputs from 8 values of A and 8 of B per k step: 64 FMAs per
// 16 floats read from shared memory (4 16-byte loads) instead of 1 FMA per 2, so the FMA units, not shared
// memory, set the pace. The block tile is BM x BN (128x128 or 64x128) with 8-deep k-slices, double-buffered:
// global loads of slice k+1 go to registers while slice k is multiplied, then to the other shared buffer, one
// barrier per slice.
//
// A thread's 8x8 outputs are 2x2 sub-blocks of 4x4: rows ty*4 + [0,4) and BM/2 + ty*4 + [0,4), columns tx*4 +
// [0,4) and BN/2 + tx*4 + [0,4). Then the 8 threads of a quarter-warp read 8 consecutive float4 of a tile row: 32
// consecutive words, no bank conflict (8 consecutive columns per thread would put tx and tx+4 on the same banks).

template <int BM_, int BN_>
struct BlockedTile {
  static constexpr int BM = BM_, BN = BN_, BK = 8;
  static constexpr int threads_x = BN / 8, threads_y = BM / 8;  // threads along n and m
  static constexpr int threads = threads_x * threads_y;
  static constexpr int pad = 4;  // floats of padding per tile row (one float4), see MatrixLoader
  // Blocks per SM the register budget is sized for. 2 (a 128-register cap for 256 threads) made ptxas spill the
  // loaders' pointers (16-100 bytes per kernel, measured with nvcc 13.0, sm_90), so 1: 130-160 registers, no
  // spills, 8 warps per SM, each with 64 independent FMAs per k step to hide latency.
  static constexpr int min_blocks = 1;
};

// Loads a BK x EXT tile of a strided matrix (element (i, k) at base[i * ld + k] when K_CONTIG, else base[k * ld +
// i]) with 16-byte loads when VEC (the launcher checked base and ld are multiples of 4 floats), four floats per
// load along the contiguous dimension; zero outside (extent, k_end).
//  - i-contiguous: four consecutive i of one k land in tile[k][i..i+3] as one float4 store.
//  - k-contiguous: four consecutive k of one i are stored transposed, tile[k..k+3][i]. A warp's 32 lanes cover 16
//    rows x 2 quads; with the row padded to EXT + 4 floats the lanes' writes land on 32 distinct banks.
template <int BK, int EXT, int THREADS, bool K_CONTIG, bool VEC>
struct MatrixLoader {
  static constexpr int quads = BK * EXT / (4 * THREADS);  // float4 per thread per slice
  static_assert(quads >= 1 && BK * EXT % (4 * THREADS) == 0, "tile must split evenly into quads");
  static constexpr int row4 = (EXT + 4) / 4;  // float4 per padded tile row

  const float* start[quads];  // this thread's quads at k = 0: (i, k) = (i_of(q), k_of(q))
  int64_t k_step;             // elements from k to k + 1
  int i_left[quads];          // valid i from this quad's first i on (extent - i)
  int k_end;
  float4 reg[quads];  // the slice in flight: registers between the global load and the shared store

  // Where quad q of this thread sits in the tile: i and k of its first element.
  __device__ static int i_of(int q) {
    const int linear = int(threadIdx.x) + q * THREADS;
    return K_CONTIG ? linear / (BK / 4) : linear % (EXT / 4) * 4;
  }
  __device__ static int k_of(int q) {
    const int linear = int(threadIdx.x) + q * THREADS;
    return K_CONTIG ? linear % (BK / 4) * 4 : linear / (EXT / 4);
  }

  // base: the matrix; ld: elements between its stored rows; rows [i0, i0 + EXT) of the operand go to this tile.
  __device__ MatrixLoader(const float* base, int64_t ld, int extent, int k_end_, int i0)
      : k_step(K_CONTIG ? 1 : ld), k_end(k_end_) {
    MASSMAP_UNROLL
    for (int q = 0; q < quads; ++q) {
      const int i = i0 + i_of(q);
      start[q] = base + (K_CONTIG ? int64_t(i) * ld + k_of(q) : int64_t(k_of(q)) * ld + i);
      i_left[q] = extent - i;
    }
  }

  __device__ void fetch(int k0) {
    MASSMAP_UNROLL
    for (int q = 0; q < quads; ++q) {
      const int k = k0 + k_of(q);
      const float* p = start[q] + k0 * k_step;
      // Elements j = 0..3 of the quad run along the contiguous dimension: k + j, or i + j.
      const bool row_ok = K_CONTIG ? i_left[q] > 0 : k < k_end;
      const int run = K_CONTIG ? k_end - k : i_left[q];  // elements of the quad inside the matrix
      if (VEC && row_ok && run >= 4) {
        reg[q] = *reinterpret_cast<const float4*>(p);
      } else {
        reg[q].x = row_ok && run > 0 ? p[0] : 0.f;
        reg[q].y = row_ok && run > 1 ? p[1] : 0.f;
        reg[q].z = row_ok && run > 2 ? p[2] : 0.f;
        reg[q].w = row_ok && run > 3 ? p[3] : 0.f;
      }
    }
  }

  __device__ void stash(float4 (*tile)[row4]) const {  // tile: (BK, EXT + 4) floats
    MASSMAP_UNROLL
    for (int q = 0; q < quads; ++q) {
      const int i = i_of(q), k = k_of(q);
      if (K_CONTIG) {
        reinterpret_cast<float*>(tile[k + 0])[i] = reg[q].x;
        reinterpret_cast<float*>(tile[k + 1])[i] = reg[q].y;
        reinterpret_cast<float*>(tile[k + 2])[i] = reg[q].z;
        reinterpret_cast<float*>(tile[k + 3])[i] = reg[q].w;
      } else {
        tile[k][i / 4] = reg[q];
      }
    }
  }
};

// Loads a BK x EXT tile of an implicit-GEMM operand through a Source, one float at a time (a gather: im2col and
// its transposes). Which elements a thread loads is chosen so that a warp reads along the operand's contiguous
// dimension in global memory and writes distinct banks in shared memory:
//  - K_FAST (the k index walks memory, e.g. r, s of a filter row, or q of an output row): the 8 k of a slice go
//    to 8 consecutive lanes; a thread keeps one k and EXT*BK/THREADS values of i.
//  - otherwise (the i index walks memory, e.g. q of an im2col column): the 32 lanes of a warp take 32
//    consecutive i; a thread keeps EXT/32 values of i and BK/(THREADS/32) values of k.
// Either way a thread computes its IStates once and its KStates once per slice.
template <int BK, int EXT, int THREADS, bool K_FAST, class Source>
struct GatherLoader {
  static constexpr int warps = THREADS / 32;
  static constexpr int nk = K_FAST ? 1 : BK / warps;                 // k rows per thread per slice
  static constexpr int ni = K_FAST ? EXT * BK / THREADS : EXT / 32;  // i per thread
  static_assert(K_FAST ? THREADS % BK == 0 && EXT * BK % THREADS == 0 : EXT % 32 == 0 && BK % warps == 0,
                "tile must split evenly across threads");
  static constexpr int row4 = (EXT + 4) / 4;

  Source src;
  int k_end;
  typename Source::IState i_state[ni];
  float reg[nk][ni];  // the slice in flight

  __device__ int k_of(int kr) const { return K_FAST ? int(threadIdx.x) % BK : int(threadIdx.x) / 32 + kr * warps; }
  __device__ int i_of(int e) const {
    return K_FAST ? int(threadIdx.x) / BK + e * (THREADS / BK) : int(threadIdx.x) % 32 + 32 * e;
  }

  __device__ GatherLoader(const Source& source, int i0, int k_end_) : src(source), k_end(k_end_) {
    MASSMAP_UNROLL
    for (int e = 0; e < ni; ++e) i_state[e] = src.at_i(i0 + i_of(e));
  }

  __device__ void fetch(int k0) {
    MASSMAP_UNROLL
    for (int kr = 0; kr < nk; ++kr) {
      const int k = k0 + k_of(kr);
      typename Source::KState ks = src.at_k(k);
      ks.valid = ks.valid && k < k_end;
      MASSMAP_UNROLL
      for (int e = 0; e < ni; ++e) reg[kr][e] = src.load(i_state[e], ks);
    }
  }

  __device__ void stash(float4 (*tile)[row4]) const {  // tile: (BK, EXT + 4) floats
    MASSMAP_UNROLL
    for (int kr = 0; kr < nk; ++kr) {
      float* row = reinterpret_cast<float*>(tile[k_of(kr)]);
      MASSMAP_UNROLL
      for (int e = 0; e < ni; ++e) row[i_of(e)] = reg[kr][e];
    }
  }
};

// The main loop and epilogue of a register-blocked block: C tile (row0.., col0..) = A * B over k in [k_begin,
// k_end). a and b are loaders (MatrixLoader or GatherLoader) already placed at this block's rows / columns.
// k_begin is a multiple of BK (16-byte loads stay aligned).
template <class Tile, class ALoader, class BLoader, class Store>
__device__ inline void register_blocked_block(ALoader& a, BLoader& b, int k_begin, int k_end, const Store& store,
                                              int row0, int col0) {
  constexpr int BM = Tile::BM, BN = Tile::BN, BK = Tile::BK;
  // Two buffers of each tile, k-major: a_tile (2, BK, BM + 4) and b_tile (2, BK, BN + 4) floats as float4 (the
  // float4 type keeps them 16-byte aligned for the vector reads).
  MASSMAP_SHARED(float4, a_tile, [2][BK][(BM + Tile::pad) / 4]);
  MASSMAP_SHARED(float4, b_tile, [2][BK][(BN + Tile::pad) / 4]);
  const int tx = int(threadIdx.x) % Tile::threads_x, ty = int(threadIdx.x) / Tile::threads_x;

  float acc[8][8];  // this thread's outputs: rows (ty*4 + i, BM/2 + ty*4 + i), columns likewise
  MASSMAP_UNROLL
  for (int i = 0; i < 8; ++i) {
    MASSMAP_UNROLL
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.f;
  }

  a.fetch(k_begin);
  b.fetch(k_begin);
  a.stash(a_tile[0]);
  b.stash(b_tile[0]);
  __syncthreads();
  int buffer = 0;
  for (int k0 = k_begin; k0 < k_end; k0 += BK) {
    const bool more = k0 + BK < k_end;
    if (more) {  // next slice: global -> registers, in flight during the FMAs below
      a.fetch(k0 + BK);
      b.fetch(k0 + BK);
    }
    MASSMAP_UNROLL
    for (int k = 0; k < BK; ++k) {
      const float4 a_lo = a_tile[buffer][k][ty], a_hi = a_tile[buffer][k][BM / 8 + ty];
      const float4 b_lo = b_tile[buffer][k][tx], b_hi = b_tile[buffer][k][BN / 8 + tx];
      const float av[8] = {a_lo.x, a_lo.y, a_lo.z, a_lo.w, a_hi.x, a_hi.y, a_hi.z, a_hi.w};
      const float bv[8] = {b_lo.x, b_lo.y, b_lo.z, b_lo.w, b_hi.x, b_hi.y, b_hi.z, b_hi.w};
      MASSMAP_UNROLL
      for (int i = 0; i < 8; ++i) {
        MASSMAP_UNROLL
        for (int j = 0; j < 8; ++j) acc[i][j] += av[i] * bv[j];
      }
    }
    if (more) {  // the other buffer was last read before the previous barrier: free to overwrite
      a.stash(a_tile[buffer ^ 1]);
      b.stash(b_tile[buffer ^ 1]);
      buffer ^= 1;
    }
    __syncthreads();
  }

  // Epilogue, one half of the columns at a time (fewer live registers next to the 64 sums): column states once
  // per half, reused by the 8 rows (a conv column costs divisions).
  MASSMAP_UNROLL
  for (int half = 0; half < 2; ++half) {
    typename Store::Col cols[4];
    MASSMAP_UNROLL
    for (int j = 0; j < 4; ++j) cols[j] = store.col(col0 + half * (BN / 2) + tx * 4 + j);
    MASSMAP_UNROLL
    for (int i = 0; i < 8; ++i) {
      const typename Store::Row r = store.row(row0 + (i < 4 ? ty * 4 + i : BM / 2 + ty * 4 + i - 4));
      MASSMAP_UNROLL
      for (int j = 0; j < 4; ++j) store.write(r, cols[j], acc[i][half * 4 + j]);
    }
  }
}

}  // namespace gemm
}  // namespace kernels::MASSMAP_GPU_NS

namespace kernels::MASSMAP_GPU_NS {
namespace gemm {

// A batch of strided GEMMs C = A * B with a fused epilogue, as gemm.cu runs them (sgemm, linear, and conv's 1x1
// path, which is one GEMM per image and group). Problem z of the launch is (outer, inner) = (z / inner_count,
// z % inner_count); each operand starts outer * *_outer + inner * *_inner elements past its pointer.
struct Batched {
  int M = 0, N = 0, K = 0;
  bool trans_a = false, trans_b = false;  // as in GemmShape
  const float* a = nullptr;
  const float* b = nullptr;
  float* c = nullptr;
  int64_t lda = 0, ldb = 0, ldc = 0;
  Epilogue epilogue;
  int outer_count = 1, inner_count = 1;
  int64_t a_outer = 0, a_inner = 0, b_outer = 0, b_inner = 0, c_outer = 0, c_inner = 0;
  int64_t row_bias_inner = 0;  // row_bias advances by this per inner index (conv: a group's Kg channels)
};

// Runs a Batched GEMM with the chosen kernel version (best: register-blocked). Implemented in gemm.cu. `name`
// prefixes kernel names in errors (e.g. "conv_forward_1x1").
void run_batched(const Batched& g, const char* name, GpuStream stream, GpuKernelVersion v);

}  // namespace gemm
}  // namespace kernels::MASSMAP_GPU_NS
