#pragma once
// Small device functions shared by the kernels of kernels/cuda. Include after kernels/cuda/portable.h.
#include <cstdint>

#include "kernels/placement.h"

namespace kernels::MASSMAP_GPU_NS {

// Placement::plane for device code (placement.h is host-only): the offset of plane (n, c).
__device__ inline int64_t plane_at(const Placement& p, int64_t n, int64_t c) {
  return n * p.batch_stride + (p.channel_offset + c) * p.channel_stride;
}

// int min / max that read the same in both builds (std::min is host-only under nvcc without relaxed constexpr).
__device__ inline int smaller(int a, int b) {
  return a < b ? a : b;
}
__device__ inline int larger(int a, int b) {
  return a > b ? a : b;
}

// A block-wide sum in a fixed tree order: the same bits on every run, every schedule and every GPU, unlike float
// atomics. Every thread of the block calls it and gets the total. shared: blockDim.x entries of shared memory;
// blockDim.x must be a power of two.
template <typename T>
__device__ inline T block_sum(T value, T* shared) {
  const unsigned t = threadIdx.x;
  shared[t] = value;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (t < half) shared[t] += shared[t + half];
    __syncthreads();
  }
  const T total = shared[0];
  __syncthreads();  // the caller may reuse `shared` right away
  return total;
}

}  // namespace kernels::MASSMAP_GPU_NS
