#pragma once
// The GPU backends in one include: device memory and streams (below), and every op family's launchers, which each
// family header (kernels/<family>.h) declares once for both kernels::cuda (nvcc build, a real GPU) and kernels::simt
// (the same source run on the host by kernels/simt), with the same shape structs as the CPU kernels plus a stream.
//
// Which kernel a launcher runs (kernels/cuda/<file>: kernel <- launcher, version):
//   gemm.cu                gemm_naive_kernel, gemm_tiled_kernel, gemm_register_blocked_kernel <- sgemm and the
//                          linear_* passes, GpuKernelVersion naive / tiled / register_blocked (best)
//   conv_forward.cu        conv_forward_naive_kernel, conv_forward_tiled_kernel, conv_forward_register_blocked_kernel
//                          <- conv_forward by version; conv_forward_single_channel_kernel <- best with C/groups == 1;
//                          1x1 stride-1 convolutions <- best, through the batched GEMM kernels
//   conv_backward_data.cu  conv_backward_data_naive_kernel, conv_backward_data_tiled_kernel,
//                          conv_backward_data_register_blocked_kernel <- conv_backward_data by version
//   conv_backward_filter.cu conv_backward_filter_naive_kernel, conv_backward_filter_tiled_kernel,
//                          conv_backward_filter_register_blocked_kernel <- conv_backward_filter by version;
//                          conv_backward_filter_reduce_kernel <- best with a workspace (split-K, fixed-order sum)
//   elementwise.cu         bias_forward_kernel, bias_backward_kernel, relu_forward_kernel, relu_backward_kernel,
//                          add_forward_kernel, copy_kernel <- the launchers of the same names
//   pool.cu                pool_forward_kernel, pool_backward_kernel;  lrn.cu  lrn_forward_kernel, lrn_backward_kernel
//   dropout.cu             dropout_kernel <- dropout_forward and dropout_backward
//   softmax.cu             softmax_forward_kernel, softmax_backward_kernel, softmax_loss_kernel (<-
//                          softmax_loss_forward), softmax_loss_backward_kernel
//   batch_norm.cu          batch_norm_statistics_kernel, batch_norm_normalize_kernel <- batch_norm_forward_training;
//                          batch_norm_normalize_kernel <- batch_norm_forward_inference;
//                          batch_norm_backward_kernel <- batch_norm_backward
//   sgd.cu                 sgd_kernel <- sgd_update;  device.cu  fill_kernel <- fill_device
// Every launcher, and every version of the conv and GEMM launchers, is tested against the CPU reference in
// tests/<family>_test.cpp (simt.* always, cuda.* on a GPU).
#include <cstddef>
#include <cstdint>

#include "kernels/batch_norm.h"
#include "kernels/conv.h"
#include "kernels/dropout.h"
#include "kernels/elementwise.h"
#include "kernels/gpu_launchers.h"
#include "kernels/linear.h"
#include "kernels/lrn.h"
#include "kernels/pool.h"
#include "kernels/sgd.h"
#include "kernels/softmax.h"

namespace kernels {

// Device memory and streams of a GPU backend (kernels/cuda/device.cu), in both namespaces. Errors throw
// std::runtime_error with the backend's message. cuda: cudaMalloc / cudaFree / cudaMemcpyAsync on the stream. simt:
// host memory with guard zones on both sides (checked after every launch) and NaN-poisoned on allocation.
#define MASSMAP_DEVICE_GPU_FUNCTIONS                                                                           \
  /* Whether this backend can run here (cuda: a GPU is present and the CUDA runtime works; simt: always). */   \
  bool available();                                                                                            \
  /* A description for logs: "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)" or "simt: host execution, 2 threads". */ \
  const char* describe();                                                                                      \
  void* device_alloc(size_t bytes);                                                                            \
  void device_free(void* p);                                                                                   \
  void copy_to_device(void* dst, const void* src, size_t bytes, GpuStream stream);                             \
  void copy_to_host(void* dst, const void* src, size_t bytes, GpuStream stream);                               \
  void copy_device_to_device(void* dst, const void* src, size_t bytes, GpuStream stream);                      \
  void fill_device(float* dst, float value, size_t count, GpuStream stream);                                   \
  GpuStream create_stream();                                                                                   \
  void destroy_stream(GpuStream stream);                                                                       \
  void synchronize(GpuStream stream);
MASSMAP_GPU_LAUNCHERS(MASSMAP_DEVICE_GPU_FUNCTIONS)
#undef MASSMAP_DEVICE_GPU_FUNCTIONS

}  // namespace kernels
