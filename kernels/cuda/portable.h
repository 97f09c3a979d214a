#pragma once
// Included first by every CUDA source in kernels/cuda/. Each source is compiled twice: by nvcc into namespace
// kernels::cuda (a real GPU) and by the host compiler into kernels::simt (kernels/simt runs every CUDA thread as a
// fiber on the host). This header gives both builds the same vocabulary:
//
//   namespace kernels::MASSMAP_GPU_NS { ... }          the namespace of the build (cuda or simt)
//   MASSMAP_SHARED(float, tile, [32][33]);             static shared memory (one array per block)
//   MASSMAP_DYNAMIC_SHARED(float, smem);               dynamic shared memory: float* smem
//   MASSMAP_UNROLL  /  MASSMAP_UNROLL_N(4)             #pragma unroll (the host compiler warns on it)
//   launch("conv_forward_tiled", kernel, grid, block, shared_bytes, stream, args...)
//       checks the launch against GPU limits, launches, and checks the last error; errors name the kernel
//
// Inside kernels use threadIdx, blockIdx, blockDim, gridDim, __syncthreads(), __syncthreads_count/and/or,
// __shfl_sync / __shfl_up_sync / __shfl_down_sync / __shfl_xor_sync, __ballot_sync, __syncwarp, atomicAdd /
// atomicMax / atomicCAS, __ldg, and the math functions the simt runtime provides (kernels/simt/runtime.h lists
// them). No inline PTX, no spin-waits, no __CUDA_ARCH__ branches.
#include <cstddef>
#include <stdexcept>
#include <string>

#include "kernels/gpu.h"

#if defined(__CUDACC__)

#include <cuda_runtime.h>

#define MASSMAP_GPU_NS cuda
#define MASSMAP_SHARED(type, name, dims) __shared__ type name dims
#define MASSMAP_DYNAMIC_SHARED(type, name) extern __shared__ type name##_storage[]; type* name = name##_storage
#define MASSMAP_UNROLL _Pragma("unroll")
#define MASSMAP_PRAGMA(x) _Pragma(#x)
#define MASSMAP_UNROLL_N(n) MASSMAP_PRAGMA(unroll n)

namespace kernels::cuda {

inline void check_cuda(cudaError_t err, const char* kernel, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("kernel ") + kernel + ": " + what + ": " + cudaGetErrorString(err));
}

template <typename... Params, typename... Args>
void launch(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes,
            GpuStream stream, Args&&... args) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;  // nothing to do (an empty tensor)
  if (block.x * block.y * block.z > 1024)
    throw std::runtime_error(std::string("kernel ") + name + ": more than 1024 threads per block");
  if (shared_bytes > 48 * 1024) {
    check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared_bytes)), name,
               "setting the dynamic shared memory size");
  }
  kernel<<<grid, block, shared_bytes, static_cast<cudaStream_t>(stream)>>>(std::forward<Args>(args)...);
  check_cuda(cudaGetLastError(), name, "launch");
}

}  // namespace kernels::cuda

#else  // the host build: kernels/simt

#include "kernels/simt/runtime.h"

#define MASSMAP_GPU_NS simt
#define MASSMAP_SHARED(type, name, dims) MASSMAP_SIMT_SHARED(type, name, dims)
#define MASSMAP_DYNAMIC_SHARED(type, name) type* name = ::simt::dynamic_shared<type>()
#define MASSMAP_UNROLL
#define MASSMAP_UNROLL_N(n)

namespace kernels::simt {

template <typename... Params, typename... Args>
void launch(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes, GpuStream,
            Args&&... args) {
  ::simt::launch(name, kernel, grid, block, shared_bytes, std::forward<Args>(args)...);
}

}  // namespace kernels::simt

#endif
