#pragma once
// The GPU kernels' entry points (launchers), declared twice: in kernels::cuda (nvcc build, a real GPU) and in
// kernels::simt (the same source run on the host by kernels/simt). Each op family lists its launchers once, in
// kernels/cuda/<family>.inc, with the same shape structs as the CPU kernels plus a stream. Pointers are device
// pointers of the backend (kernels::<ns>::device_alloc).
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
//   sgd.cu                 sgd_kernel <- sgd_update;  device.cu  fill_kernel <- fill_device
// Every launcher, and every version of the conv and GEMM launchers, is tested against the CPU reference in
// tests/gpu_<family>_test.cpp (simt.* always, cuda.* on a GPU).
#include <cstddef>
#include <cstdint>

#include "kernels/conv.h"
#include "kernels/dropout.h"
#include "kernels/elementwise.h"
#include "kernels/linear.h"
#include "kernels/lrn.h"
#include "kernels/pool.h"
#include "kernels/sgd.h"
#include "kernels/softmax.h"

namespace kernels {

using GpuStream = void*;  // a cudaStream_t on cuda; ignored by simt (launches run to completion)

namespace cuda {
#include "kernels/cuda/device.inc"
#include "kernels/cuda/gemm.inc"
#include "kernels/cuda/conv.inc"
#include "kernels/cuda/elementwise.inc"
#include "kernels/cuda/pool.inc"
#include "kernels/cuda/lrn.inc"
#include "kernels/cuda/dropout.inc"
#include "kernels/cuda/softmax.inc"
#include "kernels/cuda/sgd.inc"
}  // namespace cuda

namespace simt {
#include "kernels/cuda/device.inc"
#include "kernels/cuda/gemm.inc"
#include "kernels/cuda/conv.inc"
#include "kernels/cuda/elementwise.inc"
#include "kernels/cuda/pool.inc"
#include "kernels/cuda/lrn.inc"
#include "kernels/cuda/dropout.inc"
#include "kernels/cuda/softmax.inc"
#include "kernels/cuda/sgd.inc"
}  // namespace simt

}  // namespace kernels
