#pragma once
// cuDNN's convolution as the baseline of gpu_conv_bench, in the two ways issue 3 asks for, each labelled:
//   gemm_fma  only its GEMM-family algorithms (forward IMPLICIT_GEMM, IMPLICIT_PRECOMP_GEMM, GEMM; backward ALGO_0,
//             ALGO_1) under CUDNN_FMA_MATH, i.e. strict FP32 FMAs: the same arithmetic as ours, the baseline the
//             targets use. The fastest of them by cudnnFind*AlgorithmEx.
//   any       the fastest algorithm of any kind (Winograd and FFT included) by cudnnFind*AlgorithmEx under
//             CUDNN_DEFAULT_MATH, which on sm_80 and later lets FP32 convolutions use TF32 tensor cores.
// Uses cuDNN's legacy (v7-style) convolution API, still in cuDNN 9. Tensors are dense NCHW, filters KCRS, as ours.
#include <cudnn.h>

#include <string>

#include "bench/gpu_bench_support.h"
#include "kernels/conv.h"

namespace gpubench {

cudnnHandle_t cudnn();  // one handle on stream()

enum class CudnnMode { gemm_fma, any };
const char* mode_name(CudnnMode mode);

class CudnnConv {
 public:
  // Creates the descriptors and runs cudnnFind*AlgorithmEx on the given buffers (out is overwritten), with at most
  // workspace_limit bytes of workspace for any algorithm.
  CudnnConv(ConvPass pass, const kernels::ConvShape& s, CudnnMode mode, const float* in0, const float* in1, float* out);
  ~CudnnConv();
  CudnnConv(const CudnnConv&) = delete;
  CudnnConv& operator=(const CudnnConv&) = delete;

  // The pass with the chosen algorithm, alpha 1, beta 0 (out is overwritten). in0, in1 as check_conv_samples.
  void run(const float* in0, const float* in1, float* out) const;
  // "IMPLICIT_PRECOMP_GEMM, FMA math, workspace 12.3 MB, deterministic"
  const std::string& description() const { return description_; }

  static size_t workspace_limit();  // --cudnn_workspace_mb, default 4096
  static void set_workspace_limit(size_t bytes);

 private:
  ConvPass pass_;
  cudnnTensorDescriptor_t x_ = nullptr, y_ = nullptr;
  cudnnFilterDescriptor_t w_ = nullptr;
  cudnnConvolutionDescriptor_t conv_ = nullptr;
  int algo_ = -1;
  cudnnMathType_t math_ = CUDNN_DEFAULT_MATH;
  size_t workspace_bytes_ = 0;
  std::string description_;
};

}  // namespace gpubench
