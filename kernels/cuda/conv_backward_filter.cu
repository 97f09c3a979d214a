// Convolution backward filter on the GPU: dw[k,c,r,s] (+)= sum_{n,p,q} dy[n,k,p,q] * x[n, g*Cg+c, p*sh-ph+r,
// q*sw-pw+s]. The sum over N*P*Q is the GEMM's reduction; each dw entry is owned by one thread, which sums in a
// fixed order, so there are no atomics and two runs give the same bits. Versions:
//
//   naive             direct loops, one thread per dw entry, as kernels/cpu/conv_ref.cpp
//   tiled             implicit GEMM dw (Kg, Cg*R*S) = dy (Kg, N*P*Q) * im2col(x)^T (N*P*Q, Cg*R*S), 16x16 tiles
//   register_blocked  the same GEMM with 128x128 or 64x128 tiles and 8x8 outputs per thread; each block loops over
//                     all of N*P*Q for its dw tile
//   best              register_blocked, and with a workspace split-K: when dw has too few tiles to fill the GPU,
//                     the N*P*Q range is cut into fixed chunks, each block writes its chunk's partial tile into the
//                     workspace, and a second kernel adds the partials in chunk order (still deterministic)
#include "kernels/cuda/portable.h"
// (portable.h first: it opens the build's namespace vocabulary)
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/conv_common.cuh"
#include "kernels/cuda/gemm_core.cuh"

namespace kernels::MASSMAP_GPU_NS {
namespace {

using conv::Geometry;

// Version 1: one thread per dw entry, a grid-stride loop over K*Cg*R*S, each summing all of N*P*Q.
__global__ void conv_backward_filter_naive_kernel(Geometry geo, const float* x, const float* dy, float* dw,
                                                  bool accumulate) {
  const int64_t total = int64_t(geo.K) * geo.Cg * geo.RS;
  for (int64_t index = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; index < total;
       index += int64_t(gridDim.x) * blockDim.x) {
    const int rs = int(index % geo.RS), c = int(index / geo.RS % geo.Cg), k = int(index / geo.RS / geo.Cg);
    const int r = rs / geo.S, s = rs % geo.S, g = k / geo.Kg;
    float sum = 0.f;
    for (int n = 0; n < geo.N; ++n) {
      const float* x_nc = x + n * geo.x_batch + (geo.x_offset + int64_t(g) * geo.Cg + c) * geo.x_channel;  // (H, W)
      const float* dy_nk = dy + n * geo.y_batch + (geo.y_offset + k) * geo.y_channel;                      // (P, Q)
      for (int p = 0; p < geo.P; ++p) {
        const int h = p * geo.stride_h - geo.pad_h + r;
        if (h < 0 || h >= geo.H) continue;
        for (int q = 0; q < geo.Q; ++q) {
          const int v = q * geo.stride_w - geo.pad_w + s;
          if (v >= 0 && v < geo.W) sum += dy_nk[p * geo.Q + q] * x_nc[h * geo.W + v];
        }
      }
    }
    dw[index] = accumulate ? dw[index] + sum : sum;  // dw (K, Cg, R, S)
  }
}

// Group g's block of dw, (Kg, Cg*R*S) rows Cg*R*S apart, or of a split's workspace slice.
__device__ inline gemm::MatrixStore filter_store(const Geometry& geo, float* out, bool accumulate, int g) {
  const int columns = geo.Cg * geo.RS;
  gemm::Epilogue e;
  e.beta = accumulate ? 1.f : 0.f;
  return {out + int64_t(g) * geo.Kg * columns, columns, geo.Kg, columns, e};
}

// Version 2: implicit GEMM with 16x16 shared-memory tiles.
__global__ void conv_backward_filter_tiled_kernel(Geometry geo, const float* x, const float* dy, float* dw,
                                                  bool accumulate) {
  const int g = blockIdx.z;
  const conv::BackwardFilterGradSource grads{dy, geo, g};
  const conv::BackwardFilterImageSource image{x, geo, g};
  gemm::tiled_block(grads, image, geo.N * geo.PQ, filter_store(geo, dw, accumulate, g), blockIdx.y * gemm::kTiledSize,
                    blockIdx.x * gemm::kTiledSize);
}

// Version 3: implicit GEMM, register-blocked. Both operands are gathers with the 8 lanes of a k-slice on 8
// consecutive output positions (n, p, q), which walk memory in dy and (times the stride) in x.
// blockIdx.z = split * groups + g; split s sums k in [s * chunk, (s + 1) * chunk) and, with more than one split,
// writes the partial tile to out = workspace + s * K*Cg*R*S (accumulate is then false).
template <class Tile>
__global__ void __launch_bounds__(Tile::threads, Tile::min_blocks)
    conv_backward_filter_register_blocked_kernel(Geometry geo, const float* x, const float* dy, float* out,
                                                 bool accumulate, int chunk) {
  const int g = blockIdx.z % geo.groups, split = blockIdx.z / geo.groups;
  const int row0 = blockIdx.y * Tile::BM, col0 = blockIdx.x * Tile::BN;
  const int k_count = geo.N * geo.PQ, k_begin = split * chunk;
  const int k_end = k_count - k_begin < chunk ? k_count : k_begin + chunk;
  gemm::GatherLoader<Tile::BK, Tile::BM, Tile::threads, true, conv::BackwardFilterGradSource> grads(
      conv::BackwardFilterGradSource{dy, geo, g}, row0, k_end);
  gemm::GatherLoader<Tile::BK, Tile::BN, Tile::threads, true, conv::BackwardFilterImageSource> image(
      conv::BackwardFilterImageSource{x, geo, g}, col0, k_end);
  float* slice = out + int64_t(split) * geo.K * geo.Cg * geo.RS;
  gemm::register_blocked_block<Tile>(grads, image, k_begin, k_end, filter_store(geo, slice, accumulate, g), row0, col0);
}

// Split-K's second pass: dw[i] (+)= sum over splits s, in order, of workspace[s][i]. workspace (splits, K*Cg*R*S).
__global__ void conv_backward_filter_reduce_kernel(const float* workspace, int splits, int64_t count, float* dw,
                                                   bool accumulate) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    float sum = 0.f;
    for (int s = 0; s < splits; ++s) sum += workspace[s * count + i];
    dw[i] = accumulate ? dw[i] + sum : sum;
  }
}

// How split-K cuts N*P*Q for this shape: `splits` chunks of `chunk` (a multiple of the k-slice). Depends on the
// shape only (not on the GPU), so a shape always sums in the same order.
struct SplitPlan {
  int splits = 1, chunk = 0;
};

template <class Tile>
SplitPlan split_plan(const Geometry& geo) {
  constexpr int kTargetBlocks = 264;        // 2 per SM of a 132-SM H100: enough to fill the GPU
  constexpr int kMinChunk = 32 * Tile::BK;  // keep each split's main loop long enough to pay for its epilogue
  const int k_count = geo.N * geo.PQ;
  const int64_t tiles =
      int64_t(conv::blocks_for(geo.Kg, Tile::BM)) * conv::blocks_for(geo.Cg * geo.RS, Tile::BN) * geo.groups;
  int64_t splits = (kTargetBlocks + tiles - 1) / tiles;
  if (splits > k_count / kMinChunk) splits = k_count / kMinChunk;
  if (splits * geo.groups > 65535) splits = 65535 / geo.groups;
  SplitPlan plan;
  if (splits <= 1) {
    plan.chunk = k_count;
    return plan;
  }
  plan.chunk = int((k_count + splits - 1) / splits + Tile::BK - 1) / Tile::BK * Tile::BK;
  plan.splits = (k_count + plan.chunk - 1) / plan.chunk;
  return plan;
}

template <class Tile>
void run_register_blocked(const Geometry& geo, const float* x, const float* dy, float* dw, bool accumulate,
                          float* workspace, size_t workspace_floats, GpuStream stream, const char* name) {
  const int64_t dw_count = int64_t(geo.K) * geo.Cg * geo.RS;
  SplitPlan plan = split_plan<Tile>(geo);
  if (plan.splits > 1 && (workspace == nullptr || workspace_floats < size_t(plan.splits) * size_t(dw_count)))
    plan = SplitPlan{1, geo.N * geo.PQ};  // no room for the partials: one block per tile sums everything
  const dim3 grid(conv::blocks_for(geo.Cg * geo.RS, Tile::BN), conv::blocks_for(geo.Kg, Tile::BM),
                  unsigned(plan.splits * geo.groups));
  if (plan.splits == 1) {
    launch(name, conv_backward_filter_register_blocked_kernel<Tile>, grid, dim3(Tile::threads), 0, stream, geo, x, dy,
           dw, accumulate, plan.chunk);
    return;
  }
  launch(name, conv_backward_filter_register_blocked_kernel<Tile>, grid, dim3(Tile::threads), 0, stream, geo, x, dy,
         workspace, false, plan.chunk);
  const unsigned blocks = unsigned(dw_count / 256 + 1 < 65536 ? dw_count / 256 + 1 : 65536);
  launch("conv_backward_filter_split_reduce", conv_backward_filter_reduce_kernel, dim3(blocks), dim3(256), 0, stream,
         workspace, plan.splits, dw_count, dw, accumulate);
}

void run_register_blocked(const Geometry& geo, const float* x, const float* dy, float* dw, bool accumulate,
                          float* workspace, size_t workspace_floats, GpuStream stream) {
  // Few output channels per group (Kg <= 64) would leave most of a 128-row tile idle.
  if (geo.Kg <= 64) {
    run_register_blocked<gemm::BlockedTile<64, 128>>(geo, x, dy, dw, accumulate, workspace, workspace_floats, stream,
                                                     "conv_backward_filter_register_blocked_64x128");
  } else {
    run_register_blocked<gemm::BlockedTile<128, 128>>(geo, x, dy, dw, accumulate, workspace, workspace_floats, stream,
                                                      "conv_backward_filter_register_blocked_128x128");
  }
}

}  // namespace

size_t conv_backward_filter_workspace_floats(const ConvShape& s) {
  const Geometry geo = conv::checked_geometry(s, "conv_backward_filter");
  const SplitPlan plan =
      geo.Kg <= 64 ? split_plan<gemm::BlockedTile<64, 128>>(geo) : split_plan<gemm::BlockedTile<128, 128>>(geo);
  return plan.splits > 1 ? size_t(plan.splits) * size_t(geo.K) * geo.Cg * geo.RS : 0;
}

void conv_backward_filter(const ConvShape& s, const float* x, const float* dy, float* dw, bool accumulate,
                          float* workspace, size_t workspace_floats, GpuStream stream, GpuKernelVersion v) {
  const Geometry geo = conv::checked_geometry(s, "conv_backward_filter");
  switch (v) {
    case GpuKernelVersion::naive: {
      const int64_t total = int64_t(geo.K) * geo.Cg * geo.RS;
      const unsigned blocks = unsigned(total / 256 + 1 < 65536 ? total / 256 + 1 : 65536);
      launch("conv_backward_filter_naive", conv_backward_filter_naive_kernel, dim3(blocks), dim3(256), 0, stream, geo,
             x, dy, dw, accumulate);
      return;
    }
    case GpuKernelVersion::tiled: {
      constexpr int T = gemm::kTiledSize;
      const dim3 grid(conv::blocks_for(geo.Cg * geo.RS, T), conv::blocks_for(geo.Kg, T), geo.groups);
      launch("conv_backward_filter_tiled", conv_backward_filter_tiled_kernel, grid, dim3(T, T), 0, stream, geo, x, dy,
             dw, accumulate);
      return;
    }
    case GpuKernelVersion::register_blocked:
      run_register_blocked(geo, x, dy, dw, accumulate, nullptr, 0, stream);
      return;
    case GpuKernelVersion::best:
      run_register_blocked(geo, x, dy, dw, accumulate, workspace, workspace_floats, stream);
      return;
  }
}

void conv_backward_filter(const ConvShape& s, const float* x, const float* dy, float* dw, bool accumulate,
                          GpuStream stream, GpuKernelVersion v) {
  conv_backward_filter(s, x, dy, dw, accumulate, nullptr, 0, stream, v);
}

}  // namespace kernels::MASSMAP_GPU_NS
