#pragma once
// What an op family header needs to declare its GPU launchers once for both GPU namespaces: kernels::cuda (nvcc's
// build, a real GPU) and kernels::simt (the same CUDA source run on the host by kernels/simt). Launchers take the
// family's shape struct, device pointers of their backend (kernels::<ns>::device_alloc) and a stream.
namespace kernels {

using GpuStream = void*;  // a cudaStream_t on cuda; ignored by simt (launches run to completion)

// Which hand-written GPU kernel runs a GEMM-shaped op (GEMM, linear, convolution as implicit GEMM), in the order a
// learner meets them: one thread per output; shared-memory tiles; register blocking with 16-byte loads. `best`
// lets the launcher pick (the register-blocked kernel, or a special path such as conv's 1x1 or single-channel).
enum class GpuKernelVersion { naive, tiled, register_blocked, best };

}  // namespace kernels

// Inside namespace kernels: declares the launchers of `list` in kernels::cuda and in kernels::simt.
#define MASSMAP_GPU_LAUNCHERS(list) \
  namespace cuda {                  \
  list                              \
  }                                 \
  namespace simt {                  \
  list                              \
  }
