// Convolution backward data on the GPU: dx[n, g*Cg+c, h, w] (+)= sum over (k in group g, r, s) with
// h = p*sh - ph + r, w = q*sw - pw + s for an output position (p, q) of w[k,c,r,s] * dy[n,k,p,q]. A gather: each
// dx entry is written by one thread, once, so no atomics and the same bits on every run. Versions:
//
//   naive             direct loops, one thread per dx entry, as kernels/cpu/conv_ref.cpp
//   tiled             implicit GEMM dx (Cg, N*H*W) = w^T (Cg, Kg*R*S) * gather(dy) (Kg*R*S, N*H*W), 16x16 tiles
//   register_blocked  the same GEMM with 128x128 or 64x128 tiles and 8x8 outputs per thread (= best)
//
// With stride > 1 most (r, s) taps of a dx position meet no output position (h + ph - r not a multiple of the
// stride): the gather reads zero there. The tiles still multiply those zeros; splitting dx into stride_h * stride_w
// phases, each a dense GEMM, would skip them (future work).
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

// Version 1: one thread per dx entry, a grid-stride loop over N*C*H*W.
__global__ void conv_backward_data_naive_kernel(Geometry geo, const float* dy, const float* w, float* dx,
                                                bool accumulate) {
  const int64_t total = int64_t(geo.N) * geo.C * geo.HW;
  for (int64_t index = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; index < total;
       index += int64_t(gridDim.x) * blockDim.x) {
    const int hw = int(index % geo.HW), ci = int(index / geo.HW % geo.C), n = int(index / geo.HW / geo.C);
    const int h = hw / geo.W, v = hw % geo.W, g = ci / geo.Cg, c = ci % geo.Cg;
    float sum = 0.f;
    for (int k = g * geo.Kg; k < (g + 1) * geo.Kg; ++k) {
      const float* dy_nk = dy + n * geo.y_batch + (geo.y_offset + k) * geo.y_channel;  // (P, Q)
      for (int r = 0; r < geo.R; ++r) {
        const int p_scaled = h + geo.pad_h - r;  // = p * stride_h for an output row p
        if (p_scaled < 0 || p_scaled % geo.stride_h != 0 || p_scaled / geo.stride_h >= geo.P) continue;
        for (int s = 0; s < geo.S; ++s) {
          const int q_scaled = v + geo.pad_w - s;
          if (q_scaled < 0 || q_scaled % geo.stride_w != 0 || q_scaled / geo.stride_w >= geo.Q) continue;
          sum += w[((int64_t(k) * geo.Cg + c) * geo.R + r) * geo.S + s] *
                 dy_nk[p_scaled / geo.stride_h * geo.Q + q_scaled / geo.stride_w];
        }
      }
    }
    float* out = dx + n * geo.x_batch + (geo.x_offset + ci) * geo.x_channel + hw;
    *out = accumulate ? *out + sum : sum;
  }
}

// The store of group g's rows: dx channels g*Cg.., (+)=.
__device__ inline conv::PlanesStore data_store(const Geometry& geo, float* dx, bool accumulate, int g) {
  conv::PlanesStore store;
  store.out = dx, store.batch = geo.x_batch, store.channel = geo.x_channel;
  store.first_channel = geo.x_offset + int64_t(g) * geo.Cg;
  store.channels = geo.Cg, store.count = geo.N * geo.HW, store.plane = geo.by_HW;
  store.bias = nullptr;
  store.accumulate = accumulate, store.relu = false;
  return store;
}

// Version 2: implicit GEMM with 16x16 shared-memory tiles.
__global__ void conv_backward_data_tiled_kernel(Geometry geo, const float* dy, const float* w, float* dx,
                                                bool accumulate) {
  const int g = blockIdx.z;
  const conv::BackwardDataWeightSource weights{w, geo, g};
  const conv::BackwardDataGradSource<false> grads{dy, geo, g};
  gemm::tiled_block(weights, grads, geo.Kg * geo.RS, data_store(geo, dx, accumulate, g), blockIdx.y * gemm::kTiledSize,
                    blockIdx.x * gemm::kTiledSize);
}

// Version 3: implicit GEMM, register-blocked. Both operands are gathers: w^T with lanes along (r, s) of a filter
// (contiguous in w), dy with a warp's lanes on 32 consecutive dx positions.
template <class Tile, bool UNIT_STRIDE>
__global__ void __launch_bounds__(Tile::threads, Tile::min_blocks)
    conv_backward_data_register_blocked_kernel(Geometry geo, const float* dy, const float* w, float* dx,
                                               bool accumulate) {
  const int g = blockIdx.z, row0 = blockIdx.y * Tile::BM, col0 = blockIdx.x * Tile::BN;
  const int k_count = geo.Kg * geo.RS;
  gemm::GatherLoader<Tile::BK, Tile::BM, Tile::threads, true, conv::BackwardDataWeightSource> weights(
      conv::BackwardDataWeightSource{w, geo, g}, row0, k_count);
  gemm::GatherLoader<Tile::BK, Tile::BN, Tile::threads, false, conv::BackwardDataGradSource<UNIT_STRIDE>> grads(
      conv::BackwardDataGradSource<UNIT_STRIDE>{dy, geo, g}, col0, k_count);
  gemm::register_blocked_block<Tile>(weights, grads, 0, k_count, data_store(geo, dx, accumulate, g), row0, col0);
}

template <class Tile>
void launch_register_blocked(const Geometry& geo, const float* dy, const float* w, float* dx, bool accumulate,
                             GpuStream stream, const char* name) {
  const dim3 grid(conv::blocks_for(int64_t(geo.N) * geo.HW, Tile::BN), conv::blocks_for(geo.Cg, Tile::BM), geo.groups);
  if (geo.stride_h == 1 && geo.stride_w == 1) {
    launch(name, conv_backward_data_register_blocked_kernel<Tile, true>, grid, dim3(Tile::threads), 0, stream, geo, dy,
           w, dx, accumulate);
  } else {
    launch(name, conv_backward_data_register_blocked_kernel<Tile, false>, grid, dim3(Tile::threads), 0, stream, geo, dy,
           w, dx, accumulate);
  }
}

}  // namespace

void conv_backward_data(const ConvShape& s, const float* dy, const float* w, float* dx, bool accumulate,
                        GpuStream stream, GpuKernelVersion v) {
  const Geometry geo = conv::checked_geometry(s, "conv_backward_data");
  switch (v) {
    case GpuKernelVersion::naive: {
      const int64_t total = int64_t(geo.N) * geo.C * geo.HW;
      const unsigned blocks = unsigned(total / 256 + 1 < 65536 ? total / 256 + 1 : 65536);
      launch("conv_backward_data_naive", conv_backward_data_naive_kernel, dim3(blocks), dim3(256), 0, stream, geo, dy,
             w, dx, accumulate);
      return;
    }
    case GpuKernelVersion::tiled: {
      constexpr int T = gemm::kTiledSize;
      const dim3 grid(conv::blocks_for(int64_t(geo.N) * geo.HW, T), conv::blocks_for(geo.Cg, T), geo.groups);
      launch("conv_backward_data_tiled", conv_backward_data_tiled_kernel, grid, dim3(T, T), 0, stream, geo, dy, w, dx,
             accumulate);
      return;
    }
    case GpuKernelVersion::register_blocked:
    case GpuKernelVersion::best:
      // Few input channels per group (Cg <= 64) would leave most of a 128-row tile idle.
      if (geo.Cg <= 64) {
        launch_register_blocked<gemm::BlockedTile<64, 128>>(geo, dy, w, dx, accumulate, stream,
                                                            "conv_backward_data_register_blocked_64x128");
      } else {
        launch_register_blocked<gemm::BlockedTile<128, 128>>(geo, dy, w, dx, accumulate, stream,
                                                             "conv_backward_data_register_blocked_128x128");
      }
      return;
  }
}

}  // namespace kernels::MASSMAP_GPU_NS
