#pragma once
// The GPU kernels' entry points (launchers), declared twice: in kernels::cuda (nvcc build, a real GPU) and in
// kernels::simt (the same source run on the host by kernels/simt). Each op family lists its launchers once, in
// kernels/cuda/<family>.inc, with the same shape structs as the CPU kernels plus a stream. Pointers are device
// pointers of the backend (kernels::<ns>::device_alloc).
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
