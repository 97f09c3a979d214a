// GEMM on the GPU, three versions of one computation: C (M, N) = alpha * op(A) (M, K) * op(B) (K, N) + beta * C,
// row-major, batched over blockIdx.z, with a fused epilogue (bias per row or column, ReLU). sgemm, the linear
// layer's three passes and convolution's 1x1 path all run through run_batched.
//
//   naive             one thread per output, A and B straight from global memory (L1/L2 do the reuse, if any)
//   tiled             16x16 shared-memory tiles, one output per thread (gemm_core.cuh: tiled_block)
//   register_blocked  128x128 (or 64x128) block tiles, 8x8 outputs per thread, 8-deep k-slices, 16-byte loads,
//                     double-buffered shared memory (gemm_core.cuh: register_blocked_block)
#include "kernels/cuda/portable.h"
// (portable.h first: it opens the build's namespace vocabulary)
#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/gemm_core.cuh"

namespace kernels::MASSMAP_GPU_NS {
namespace {

using gemm::Batched;
using gemm::MatrixSource;
using gemm::MatrixStore;

// This launch's problem of the batch: the operands and the store moved to problem blockIdx.z.
struct Problem {
  MatrixSource a, b;
  MatrixStore c;
};

__device__ inline Problem problem_of(const Batched& g) {
  const int z = blockIdx.z, outer = z / g.inner_count, inner = z % g.inner_count;
  const float* a = g.a + outer * g.a_outer + inner * g.a_inner;
  const float* b = g.b + outer * g.b_outer + inner * g.b_inner;
  gemm::Epilogue e = g.epilogue;
  if (e.row_bias) e.row_bias += inner * g.row_bias_inner;
  // A (i = m): stored (M, K), or (K, M) when transposed. B (i = n): stored (K, N), or (N, K) when transposed.
  const MatrixSource a_src{a, g.trans_a ? 1 : g.lda, g.trans_a ? g.lda : 1, g.M, g.K};
  const MatrixSource b_src{b, g.trans_b ? g.ldb : 1, g.trans_b ? 1 : g.ldb, g.N, g.K};
  return {a_src, b_src, MatrixStore{g.c + outer * g.c_outer + inner * g.c_inner, g.ldc, g.M, g.N, e}};
}

// Version 1: one thread per output, the textbook triple loop. Every FMA reads two floats from global memory.
__global__ void gemm_naive_kernel(Batched g) {
  const Problem p = problem_of(g);
  const int n = blockIdx.x * blockDim.x + threadIdx.x, m = blockIdx.y * blockDim.y + threadIdx.y;
  const MatrixSource::IState a_row = p.a.at_i(m), b_col = p.b.at_i(n);
  float sum = 0.f;
  for (int k = 0; k < g.K; ++k) sum += p.a.load(a_row, p.a.at_k(k)) * p.b.load(b_col, p.b.at_k(k));
  p.c.write(p.c.row(m), p.c.col(n), sum);
}

// Version 2: shared-memory tiles (see gemm::tiled_block).
__global__ void gemm_tiled_kernel(Batched g) {
  const Problem p = problem_of(g);
  gemm::tiled_block(p.a, p.b, g.K, p.c, blockIdx.y * gemm::kTiledSize, blockIdx.x * gemm::kTiledSize);
}

// Version 3: register-blocked (see gemm::register_blocked_block). TRANS_A / TRANS_B fix which dimension of each
// operand is contiguous, so the loads are float4 along it; VEC is false when a pointer or stride is not a
// multiple of 16 bytes, and the same loads then go one float at a time.
template <class Tile, bool TRANS_A, bool TRANS_B, bool VEC>
__global__ void __launch_bounds__(Tile::threads, Tile::min_blocks) gemm_register_blocked_kernel(Batched g) {
  const int z = blockIdx.z, outer = z / g.inner_count, inner = z % g.inner_count;
  const int row0 = blockIdx.y * Tile::BM, col0 = blockIdx.x * Tile::BN;
  // A as (i = m, k): k-contiguous unless transposed. B as (i = n, k): k-contiguous only when transposed.
  gemm::MatrixLoader<Tile::BK, Tile::BM, Tile::threads, !TRANS_A, VEC> a{g.a + outer * g.a_outer + inner * g.a_inner,
                                                                         g.lda, g.M, g.K, row0};
  gemm::MatrixLoader<Tile::BK, Tile::BN, Tile::threads, TRANS_B, VEC> b{g.b + outer * g.b_outer + inner * g.b_inner,
                                                                        g.ldb, g.N, g.K, col0};
  gemm::Epilogue e = g.epilogue;
  if (e.row_bias) e.row_bias += inner * g.row_bias_inner;
  const MatrixStore c{g.c + outer * g.c_outer + inner * g.c_inner, g.ldc, g.M, g.N, e};
  gemm::register_blocked_block<Tile>(a, b, 0, g.K, c, row0, col0);
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

template <class Tile, bool TRANS_A, bool TRANS_B>
void launch_register_blocked(const Batched& g, const std::string& name, dim3 grid, GpuStream stream) {
  // 16-byte loads need every row start of A and B (in every problem of the batch) on a 16-byte boundary.
  const bool vec = aligned16(g.a) && aligned16(g.b) && g.lda % 4 == 0 && g.ldb % 4 == 0 && g.a_outer % 4 == 0 &&
                   g.a_inner % 4 == 0 && g.b_outer % 4 == 0 && g.b_inner % 4 == 0;
  const dim3 block(Tile::threads);
  if (vec) {
    launch(name.c_str(), gemm_register_blocked_kernel<Tile, TRANS_A, TRANS_B, true>, grid, block, 0, stream, g);
  } else {
    launch(name.c_str(), gemm_register_blocked_kernel<Tile, TRANS_A, TRANS_B, false>, grid, block, 0, stream, g);
  }
}

template <class Tile>
void run_register_blocked(const Batched& g, const std::string& name, GpuStream stream) {
  const dim3 grid((g.N + Tile::BN - 1) / Tile::BN, (g.M + Tile::BM - 1) / Tile::BM, g.outer_count * g.inner_count);
  if (g.trans_a) {
    if (g.trans_b) return launch_register_blocked<Tile, true, true>(g, name, grid, stream);
    return launch_register_blocked<Tile, true, false>(g, name, grid, stream);
  }
  if (g.trans_b) return launch_register_blocked<Tile, false, true>(g, name, grid, stream);
  launch_register_blocked<Tile, false, false>(g, name, grid, stream);
}

std::string describe(const GemmShape& s) {
  return "M " + std::to_string(s.M) + ", N " + std::to_string(s.N) + ", K " + std::to_string(s.K) + ", lda " +
         std::to_string(s.lda) + ", ldb " + std::to_string(s.ldb) + ", ldc " + std::to_string(s.ldc) +
         (s.trans_a ? ", A transposed" : "") + (s.trans_b ? ", B transposed" : "");
}

void check_gemm_shape(const GemmShape& s, const char* kernel) {
  const int limit = INT32_MAX - 65536;  // a tile's indices run up to 127 past the last row, column or k
  const bool ok = s.M >= 1 && s.N >= 1 && s.K >= 1 && s.M < limit && s.N < limit && s.K < limit &&
                  s.lda >= (s.trans_a ? s.M : s.K) && s.ldb >= (s.trans_b ? s.K : s.N) && s.ldc >= s.N;
  if (!ok)
    throw std::invalid_argument(std::string(kernel) + ": bad shape (" + describe(s) +
                                "): sizes must be positive, below 2^31 - 2^16, and each ld at least its row length");
}

void check_linear_shape(const LinearShape& s, const char* kernel) {
  const int limit = INT32_MAX - 65536;  // as for sgemm
  if (s.N < 1 || s.I < 1 || s.O < 1 || s.N >= limit || s.I >= limit || s.O >= limit || s.x_row_stride < s.I ||
      s.y_row_stride < s.O)
    throw std::invalid_argument(std::string(kernel) + ": bad linear shape (N " + std::to_string(s.N) + ", I " +
                                std::to_string(s.I) + ", O " + std::to_string(s.O) + ", x_row_stride " +
                                std::to_string(s.x_row_stride) + ", y_row_stride " + std::to_string(s.y_row_stride) +
                                "): sizes must be positive and row strides >= I and O");
}

Batched batched_of(const GemmShape& s, const float* a, const float* b, float* c) {
  Batched g;
  g.M = s.M, g.N = s.N, g.K = s.K, g.trans_a = s.trans_a, g.trans_b = s.trans_b;
  g.a = a, g.b = b, g.c = c, g.lda = s.lda, g.ldb = s.ldb, g.ldc = s.ldc;
  g.epilogue.alpha = s.alpha, g.epilogue.beta = s.beta;
  return g;
}

}  // namespace

namespace gemm {

void run_batched(const Batched& g, const char* name, GpuStream stream, GpuKernelVersion v) {
  const int64_t problems = int64_t(g.outer_count) * g.inner_count;
  const int64_t row_tiles = (g.M + gemm::kTiledSize - 1) / gemm::kTiledSize;
  if (problems > 65535 || row_tiles > 65535)
    throw std::invalid_argument(std::string(name) + ": " + std::to_string(problems) + " problems, M " +
                                std::to_string(g.M) + ": more than the grid's 65535 blocks in y or z");
  const std::string prefix(name);
  switch (v) {
    case GpuKernelVersion::naive: {
      const dim3 block(16, 16), grid((g.N + 15) / 16, (g.M + 15) / 16, unsigned(problems));
      launch((prefix + "_naive").c_str(), gemm_naive_kernel, grid, block, 0, stream, g);
      return;
    }
    case GpuKernelVersion::tiled: {
      constexpr int T = gemm::kTiledSize;
      const dim3 block(T, T), grid((g.N + T - 1) / T, (g.M + T - 1) / T, unsigned(problems));
      launch((prefix + "_tiled").c_str(), gemm_tiled_kernel, grid, block, 0, stream, g);
      return;
    }
    case GpuKernelVersion::register_blocked:
    case GpuKernelVersion::best:
      // A short M (a small batch in linear backward-weight's transpose, few output channels) would leave half of
      // a 128-row tile idle: 64-row tiles then.
      if (g.M <= 64) return run_register_blocked<BlockedTile<64, 128>>(g, prefix + "_register_blocked_64x128", stream);
      return run_register_blocked<BlockedTile<128, 128>>(g, prefix + "_register_blocked_128x128", stream);
  }
}

}  // namespace gemm

void sgemm(const GemmShape& s, const float* a, const float* b, float* c, GpuStream stream, GpuKernelVersion v) {
  check_gemm_shape(s, "sgemm");
  gemm::run_batched(batched_of(s, a, b, c), "sgemm", stream, v);
}

// y (N, O) = x (N, I) * w^T + b: A = x, B = w stored (O, I) = (N, K), so transposed; the bias is per column.
void linear_forward(const LinearShape& s, const float* x, const float* w, const float* b, float* y, GpuStream stream,
                    GpuKernelVersion v) {
  check_linear_shape(s, "linear_forward");
  Batched g = batched_of({s.N, s.O, s.I, false, true, s.x_row_stride, s.I, s.y_row_stride, 1.f, 0.f}, x, w, y);
  g.epilogue.col_bias = b;
  gemm::run_batched(g, "linear_forward", stream, v);
}

// dx (N, I) (+)= dy (N, O) * w (O, I): a plain NN GEMM.
void linear_backward_data(const LinearShape& s, const float* dy, const float* w, float* dx, bool accumulate,
                          GpuStream stream, GpuKernelVersion v) {
  check_linear_shape(s, "linear_backward_data");
  const GemmShape g{s.N, s.I, s.O, false, false, s.y_row_stride, s.I, s.x_row_stride, 1.f, accumulate ? 1.f : 0.f};
  gemm::run_batched(batched_of(g, dy, w, dx), "linear_backward_data", stream, v);
}

// dw (O, I) (+)= dy^T * x: A = dy stored (N, O) = (K, M), transposed; B = x (N, I) = (K, N).
void linear_backward_weight(const LinearShape& s, const float* x, const float* dy, float* dw, bool accumulate,
                            GpuStream stream, GpuKernelVersion v) {
  check_linear_shape(s, "linear_backward_weight");
  const GemmShape g{s.O, s.I, s.N, true, false, s.y_row_stride, s.x_row_stride, s.I, 1.f, accumulate ? 1.f : 0.f};
  gemm::run_batched(batched_of(g, dy, x, dw), "linear_backward_weight", stream, v);
}

}  // namespace kernels::MASSMAP_GPU_NS
