// Convolution forward on the GPU: y[n,k,p,q] = b[k] + sum_{c,r,s} w[k,c,r,s] * x[n, g*Cg+c, p*sh-ph+r, q*sw-pw+s]
// (then ReLU when the epilogue asks), all groups in one launch (blockIdx.z = group). Versions:
//
//   naive             direct loops, one thread per output, as kernels/cpu/conv_ref.cpp
//   tiled             implicit GEMM y (Kg, N*P*Q) = w (Kg, Cg*R*S) * im2col(x), 16x16 shared tiles, the im2col
//                     gather done while loading the B tile (gemm_core.cuh: tiled_block)
//   register_blocked  the same GEMM with 128x128 or 64x128 tiles, 8x8 outputs per thread, 16-byte weight loads
//   best              register_blocked, or the 1x1 path (a batched GEMM per image and group: x already is the B
//                     matrix) or the single-channel path (conv1 on a grey image: the whole filter bank of a block
//                     in shared memory)
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

__device__ inline float relu_if(bool relu, float v) {
  return relu && v < 0.f ? 0.f : v;
}

// Version 1: one thread per output y[n, k, p, q], a grid-stride loop over N*K*P*Q.
__global__ void conv_forward_naive_kernel(Geometry geo, const float* x, const float* w, const float* b, float* y,
                                          bool relu) {
  const int64_t total = int64_t(geo.N) * geo.K * geo.PQ;
  for (int64_t index = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; index < total;
       index += int64_t(gridDim.x) * blockDim.x) {
    const int pq = int(index % geo.PQ), k = int(index / geo.PQ % geo.K), n = int(index / geo.PQ / geo.K);
    const int p = pq / geo.Q, q = pq % geo.Q, g = k / geo.Kg;
    const float* w_k = w + int64_t(k) * geo.Cg * geo.RS;  // (Cg, R, S)
    float sum = b ? b[k] : 0.f;
    for (int c = 0; c < geo.Cg; ++c) {
      const float* x_nc = x + n * geo.x_batch + (geo.x_offset + int64_t(g) * geo.Cg + c) * geo.x_channel;  // (H, W)
      for (int r = 0; r < geo.R; ++r) {
        const int h = p * geo.stride_h - geo.pad_h + r;
        if (h < 0 || h >= geo.H) continue;
        for (int s = 0; s < geo.S; ++s) {
          const int v = q * geo.stride_w - geo.pad_w + s;
          if (v >= 0 && v < geo.W) sum += w_k[(c * geo.R + r) * geo.S + s] * x_nc[h * geo.W + v];
        }
      }
    }
    y[n * geo.y_batch + (geo.y_offset + k) * geo.y_channel + pq] = relu_if(relu, sum);
  }
}

// The store of group g's rows: y channels g*Kg.., bias and ReLU fused.
__device__ inline conv::PlanesStore forward_store(const Geometry& geo, const float* b, float* y, bool relu, int g) {
  conv::PlanesStore store;
  store.out = y, store.batch = geo.y_batch, store.channel = geo.y_channel;
  store.first_channel = geo.y_offset + int64_t(g) * geo.Kg;
  store.channels = geo.Kg, store.count = geo.N * geo.PQ, store.plane = geo.by_PQ;
  store.bias = b ? b + int64_t(g) * geo.Kg : nullptr;
  store.accumulate = false, store.relu = relu;
  return store;
}

// Version 2: implicit GEMM with 16x16 shared-memory tiles.
__global__ void conv_forward_tiled_kernel(Geometry geo, const float* x, const float* w, const float* b, float* y,
                                          bool relu) {
  const int g = blockIdx.z;
  const conv::ForwardImageSource image{x, geo, g};
  gemm::tiled_block(conv::forward_weight_source(w, geo, g), image, geo.Cg * geo.RS, forward_store(geo, b, y, relu, g),
                    blockIdx.y * gemm::kTiledSize, blockIdx.x * gemm::kTiledSize);
}

// Version 3: implicit GEMM, register-blocked. Weights (A) arrive as float4 along Cg*R*S when VEC (the launcher
// checked w and Cg*R*S are multiples of 4 floats); the image (B) is gathered a float at a time, a warp's 32 lanes
// on 32 consecutive output positions, each thread keeping the (n, p, q) of its columns for the whole loop.
template <class Tile, bool VEC>
__global__ void __launch_bounds__(Tile::threads, Tile::min_blocks)
    conv_forward_register_blocked_kernel(Geometry geo, const float* x, const float* w, const float* b, float* y,
                                         bool relu) {
  const int g = blockIdx.z, row0 = blockIdx.y * Tile::BM, col0 = blockIdx.x * Tile::BN;
  const int k_count = geo.Cg * geo.RS;
  gemm::MatrixLoader<Tile::BK, Tile::BM, Tile::threads, true, VEC> weights(w + int64_t(g) * geo.Kg * k_count, k_count,
                                                                           geo.Kg, k_count, row0);
  gemm::GatherLoader<Tile::BK, Tile::BN, Tile::threads, false, conv::ForwardImageSource> image(
      conv::ForwardImageSource{x, geo, g}, col0, k_count);
  gemm::register_blocked_block<Tile>(weights, image, 0, k_count, forward_store(geo, b, y, relu, g), row0, col0);
}

// The single-channel path (conv1 of a grey-level network: Cg = 1, groups = 1, e.g. 11x11 stride 4). The GEMM's
// reduction is only R*S long, so instead a block keeps the filters of 32 output channels and the input window of
// an 8x16 output tile in shared memory and each thread sums 4 channels x 4 positions straight from there: every x
// element is read from global memory once per block, no im2col index arithmetic per element.
constexpr int kSingleChannels = 32, kSingleRows = 8, kSingleCols = 16, kSingleThreads = 256;

__global__ void __launch_bounds__(kSingleThreads, 1)
    conv_forward_single_channel_kernel(Geometry geo, const float* x, const float* w, const float* b, float* y,
                                       bool relu, int patch_h, int patch_w) {
  MASSMAP_DYNAMIC_SHARED(float4, shared);
  float* filters = reinterpret_cast<float*>(shared);  // (R*S, 32): tap t of channel k0 + k at [t * 32 + k]
  float* patch = filters + geo.RS * kSingleChannels;  // (patch_h, patch_w): the tile's input window, 0 in padding
  const int tid = threadIdx.x, n = blockIdx.z, k0 = blockIdx.y * kSingleChannels;
  const int tiles_q = (geo.Q + kSingleCols - 1) / kSingleCols;
  const int p0 = blockIdx.x / tiles_q * kSingleRows, q0 = blockIdx.x % tiles_q * kSingleCols;

  for (int i = tid; i < geo.RS * kSingleChannels; i += kSingleThreads) {
    const int k = k0 + i % kSingleChannels, tap = i / kSingleChannels;
    filters[i] = k < geo.K ? w[int64_t(k) * geo.RS + tap] : 0.f;  // w (K, 1, R, S)
  }
  const float* image = x + n * geo.x_batch + geo.x_offset * geo.x_channel;  // (H, W)
  const int h_base = p0 * geo.stride_h - geo.pad_h, w_base = q0 * geo.stride_w - geo.pad_w;
  for (int i = tid; i < patch_h * patch_w; i += kSingleThreads) {
    const int h = h_base + i / patch_w, v = w_base + i % patch_w;
    patch[i] = unsigned(h) < unsigned(geo.H) && unsigned(v) < unsigned(geo.W) ? image[h * geo.W + v] : 0.f;
  }
  __syncthreads();

  // Thread: channels k0 + quad*4 + [0, 4) and positions lane + 32 * j of the 8x16 tile (row-major).
  const int quad = tid / 32, lane = tid % 32;
  int window[4];  // top-left of each position's window in the patch
  MASSMAP_UNROLL
  for (int j = 0; j < 4; ++j) {
    const int pos = lane + 32 * j;
    window[j] = pos / kSingleCols * geo.stride_h * patch_w + pos % kSingleCols * geo.stride_w;
  }
  float acc[4][4] = {};  // (channel, position)
  for (int r = 0; r < geo.R; ++r) {
    for (int s = 0; s < geo.S; ++s) {
      const float4 wv = reinterpret_cast<const float4*>(filters)[(r * geo.S + s) * (kSingleChannels / 4) + quad];
      const int tap = r * patch_w + s;
      MASSMAP_UNROLL
      for (int j = 0; j < 4; ++j) {
        const float xv = patch[window[j] + tap];
        acc[0][j] += wv.x * xv;
        acc[1][j] += wv.y * xv;
        acc[2][j] += wv.z * xv;
        acc[3][j] += wv.w * xv;
      }
    }
  }
  MASSMAP_UNROLL
  for (int c = 0; c < 4; ++c) {
    const int k = k0 + quad * 4 + c;
    if (k >= geo.K) continue;
    float* y_nk = y + n * geo.y_batch + (geo.y_offset + k) * geo.y_channel;  // (P, Q)
    const float bias = b ? b[k] : 0.f;
    MASSMAP_UNROLL
    for (int j = 0; j < 4; ++j) {
      const int pos = lane + 32 * j, p = p0 + pos / kSingleCols, q = q0 + pos % kSingleCols;
      if (p < geo.P && q < geo.Q) y_nk[p * geo.Q + q] = relu_if(relu, acc[c][j] + bias);
    }
  }
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

template <class Tile>
void launch_register_blocked(const Geometry& geo, const float* x, const float* w, const float* b, float* y, bool relu,
                             GpuStream stream, const char* name) {
  const dim3 grid(conv::blocks_for(int64_t(geo.N) * geo.PQ, Tile::BN), conv::blocks_for(geo.Kg, Tile::BM), geo.groups);
  const bool vec = aligned16(w) && geo.Cg * geo.RS % 4 == 0;  // every filter row starts on 16 bytes
  if (vec) {
    launch(name, conv_forward_register_blocked_kernel<Tile, true>, grid, dim3(Tile::threads), 0, stream, geo, x, w, b,
           y, relu);
  } else {
    launch(name, conv_forward_register_blocked_kernel<Tile, false>, grid, dim3(Tile::threads), 0, stream, geo, x, w, b,
           y, relu);
  }
}

void run_register_blocked(const Geometry& geo, const float* x, const float* w, const float* b, float* y, bool relu,
                          GpuStream stream) {
  // Few output channels per group (Kg <= 64) would leave most of a 128-row tile idle.
  if (geo.Kg <= 64) {
    launch_register_blocked<gemm::BlockedTile<64, 128>>(geo, x, w, b, y, relu, stream,
                                                        "conv_forward_register_blocked_64x128");
  } else {
    launch_register_blocked<gemm::BlockedTile<128, 128>>(geo, x, w, b, y, relu, stream,
                                                         "conv_forward_register_blocked_128x128");
  }
}

// 1x1, stride 1, no padding: for image n and group g, y_n,g (Kg, H*W) = w_g (Kg, Cg) * x_n,g (Cg, H*W), where
// x_n,g is a plain matrix with rows channel_stride apart. One batched GEMM, z = (n, g).
bool is_pointwise(const Geometry& geo) {
  return geo.R == 1 && geo.S == 1 && geo.stride_h == 1 && geo.stride_w == 1 && geo.pad_h == 0 && geo.pad_w == 0;
}

void run_pointwise(const Geometry& geo, const float* x, const float* w, const float* b, float* y, bool relu,
                   GpuStream stream, GpuKernelVersion v) {
  gemm::Batched g;
  g.M = geo.Kg, g.N = geo.HW, g.K = geo.Cg;
  g.a = w, g.lda = geo.Cg, g.a_inner = int64_t(geo.Kg) * geo.Cg;
  g.b = x + geo.x_offset * geo.x_channel, g.ldb = geo.x_channel, g.b_outer = geo.x_batch;
  g.b_inner = geo.Cg * geo.x_channel;
  g.c = y + geo.y_offset * geo.y_channel, g.ldc = geo.y_channel, g.c_outer = geo.y_batch;
  g.c_inner = geo.Kg * geo.y_channel;
  g.outer_count = geo.N, g.inner_count = geo.groups;
  g.epilogue.row_bias = b, g.row_bias_inner = geo.Kg, g.epilogue.relu = relu;
  gemm::run_batched(g, "conv_forward_1x1", stream, v);
}

// The single-channel path's shared memory (filters + input window) in bytes, or 0 where it does not apply.
size_t single_channel_bytes(const Geometry& geo, int* patch_h, int* patch_w) {
  if (geo.C != 1 || geo.groups != 1) return 0;
  *patch_h = (kSingleRows - 1) * geo.stride_h + geo.R;
  *patch_w = (kSingleCols - 1) * geo.stride_w + geo.S;
  const size_t bytes = (size_t(geo.RS) * kSingleChannels + size_t(*patch_h) * *patch_w) * sizeof(float);
  return bytes <= 48 * 1024 ? bytes : 0;
}

}  // namespace

void conv_forward(const ConvShape& s, const float* x, const float* w, const float* b, float* y, GpuStream stream,
                  ConvEpilogue epilogue, GpuKernelVersion v) {
  const Geometry geo = conv::checked_geometry(s, "conv_forward");
  const bool relu = epilogue.relu;
  switch (v) {
    case GpuKernelVersion::naive: {
      const int64_t total = int64_t(geo.N) * geo.K * geo.PQ;
      const unsigned blocks = unsigned(total / 256 + 1 < 65536 ? total / 256 + 1 : 65536);
      launch("conv_forward_naive", conv_forward_naive_kernel, dim3(blocks), dim3(256), 0, stream, geo, x, w, b, y,
             relu);
      return;
    }
    case GpuKernelVersion::tiled: {
      constexpr int T = gemm::kTiledSize;
      const dim3 grid(conv::blocks_for(int64_t(geo.N) * geo.PQ, T), conv::blocks_for(geo.Kg, T), geo.groups);
      launch("conv_forward_tiled", conv_forward_tiled_kernel, grid, dim3(T, T), 0, stream, geo, x, w, b, y, relu);
      return;
    }
    case GpuKernelVersion::register_blocked:
      run_register_blocked(geo, x, w, b, y, relu, stream);
      return;
    case GpuKernelVersion::best: {
      // 1x1: a plain GEMM per image when an image fills at least half a 128-column tile (else the implicit GEMM,
      // whose columns run across images, wastes less).
      if (is_pointwise(geo) && geo.HW >= 64 && int64_t(geo.N) * geo.groups <= 65535) {
        run_pointwise(geo, x, w, b, y, relu, stream, GpuKernelVersion::register_blocked);
        return;
      }
      int patch_h = 0, patch_w = 0;
      if (const size_t bytes = single_channel_bytes(geo, &patch_h, &patch_w)) {
        const int tiles = ((geo.P + kSingleRows - 1) / kSingleRows) * ((geo.Q + kSingleCols - 1) / kSingleCols);
        const dim3 grid(unsigned(tiles), conv::blocks_for(geo.K, kSingleChannels), unsigned(geo.N));
        launch("conv_forward_single_channel", conv_forward_single_channel_kernel, grid, dim3(kSingleThreads), bytes,
               stream, geo, x, w, b, y, relu, patch_h, patch_w);
        return;
      }
      run_register_blocked(geo, x, w, b, y, relu, stream);
      return;
    }
  }
}

}  // namespace kernels::MASSMAP_GPU_NS
