// cuDNN's convolution baselines (gpu_cudnn_conv.h).
#include "bench/gpu_cudnn_conv.h"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <vector>

namespace gpubench {
namespace {

size_t g_workspace_limit = size_t(4096) << 20;

// One workspace for every cuDNN call, grown on demand up to the limit (Find tries algorithms within it).
float* workspace(size_t bytes) {
  static Buffer buffer;
  if (buffer.bytes() < bytes) {
    buffer = Buffer();  // free first
    buffer = Buffer((bytes + sizeof(float) - 1) / sizeof(float));
  }
  return buffer.get();
}

// The fields every cudnnConvolution*AlgoPerf_t has, whatever the pass.
struct Perf {
  int algo;
  cudnnStatus_t status;
  float ms;
  size_t memory;
  cudnnDeterminism_t determinism;
  cudnnMathType_t math;
};

template <class T>
std::vector<Perf> to_perf(const T* results, int count) {
  std::vector<Perf> out;
  for (int i = 0; i < count; ++i)
    out.push_back({int(results[i].algo), results[i].status, results[i].time, results[i].memory, results[i].determinism,
                   results[i].mathType});
  return out;
}

const char* algo_name(ConvPass pass, int algo) {
  static const char* const forward[] = {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT", "FFT", "FFT_TILING",
                                        "WINOGRAD",      "WINOGRAD_NONFUSED"};
  static const char* const backward_data[] = {"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
  static const char* const backward_filter[] = {"ALGO_0",    "ALGO_1", "FFT", "ALGO_3", "WINOGRAD", "WINOGRAD_NONFUSED",
                                                "FFT_TILING"};
  if (algo < 0) return "?";
  if (pass == ConvPass::forward) return algo < 8 ? forward[algo] : "?";
  if (pass == ConvPass::backward_data) return algo < 6 ? backward_data[algo] : "?";
  return algo < 7 ? backward_filter[algo] : "?";
}

const char* math_name(cudnnMathType_t math) {
  switch (math) {
    case CUDNN_DEFAULT_MATH:
      return "DEFAULT math";
    case CUDNN_TENSOR_OP_MATH:
      return "TENSOR_OP math";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION:
      return "TENSOR_OP_ALLOW_CONVERSION math";
    case CUDNN_FMA_MATH:
      return "FMA math";
  }
  return "? math";
}

// Forward: IMPLICIT_GEMM, IMPLICIT_PRECOMP_GEMM, GEMM; backward data and filter: ALGO_0, ALGO_1.
bool gemm_family(ConvPass pass, int algo) {
  return pass == ConvPass::forward ? algo <= 2 : algo <= 1;
}

}  // namespace

cudnnHandle_t cudnn() {
  static cudnnHandle_t handle = [] {
    cudnnHandle_t h = nullptr;
    check(cudnnCreate(&h), "cudnnCreate");
    check(cudnnSetStream(h, stream()), "cudnnSetStream");
    return h;
  }();
  return handle;
}

const char* mode_name(CudnnMode mode) {
  return mode == CudnnMode::gemm_fma ? "cudnn_gemm_fma" : "cudnn_any";
}

size_t CudnnConv::workspace_limit() {
  return g_workspace_limit;
}

void CudnnConv::set_workspace_limit(size_t bytes) {
  g_workspace_limit = bytes;
}

CudnnConv::CudnnConv(ConvPass pass, const kernels::ConvShape& s, CudnnMode mode, const float* in0, const float* in1,
                     float* out)
    : pass_(pass) {
  check(cudnnCreateTensorDescriptor(&x_), "cudnnCreateTensorDescriptor");
  check(cudnnCreateTensorDescriptor(&y_), "cudnnCreateTensorDescriptor");
  check(cudnnCreateFilterDescriptor(&w_), "cudnnCreateFilterDescriptor");
  check(cudnnCreateConvolutionDescriptor(&conv_), "cudnnCreateConvolutionDescriptor");
  check(cudnnSetTensor4dDescriptor(x_, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s.N, s.C, s.H, s.W), "x descriptor");
  check(cudnnSetTensor4dDescriptor(y_, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s.N, s.K, s.P, s.Q), "y descriptor");
  check(cudnnSetFilter4dDescriptor(w_, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s.K, s.C / s.groups, s.R, s.S),
        "filter descriptor");
  // Cross-correlation, as Caffe and ours (CUDNN_CONVOLUTION would flip the filter).
  check(cudnnSetConvolution2dDescriptor(conv_, s.pad_h, s.pad_w, s.stride_h, s.stride_w, 1, 1, CUDNN_CROSS_CORRELATION,
                                        CUDNN_DATA_FLOAT),
        "convolution descriptor");
  check(cudnnSetConvolutionGroupCount(conv_, s.groups), "cudnnSetConvolutionGroupCount");
  int n = 0, k = 0, p = 0, q = 0;
  check(cudnnGetConvolution2dForwardOutputDim(conv_, x_, w_, &n, &k, &p, &q), "output size");
  if (n != s.N || k != s.K || p != s.P || q != s.Q)
    fail("cuDNN's output size " + std::to_string(p) + "x" + std::to_string(q) + " differs from ours " +
         std::to_string(s.P) + "x" + std::to_string(s.Q));

  const cudnnMathType_t find_math = mode == CudnnMode::gemm_fma ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
  check(cudnnSetConvolutionMathType(conv_, find_math), "cudnnSetConvolutionMathType");
  const size_t limit = g_workspace_limit;
  float* ws = workspace(limit);
  int returned = 0;
  std::vector<Perf> results;
  if (pass == ConvPass::forward) {
    cudnnConvolutionFwdAlgoPerf_t r[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    check(cudnnFindConvolutionForwardAlgorithmEx(cudnn(), x_, in0, w_, in1, conv_, y_, out,
                                                 CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, r, ws, limit),
          "cudnnFindConvolutionForwardAlgorithmEx");
    results = to_perf(r, returned);
  } else if (pass == ConvPass::backward_data) {
    cudnnConvolutionBwdDataAlgoPerf_t r[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    check(cudnnFindConvolutionBackwardDataAlgorithmEx(cudnn(), w_, in1, y_, in0, conv_, x_, out,
                                                      CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &returned, r, ws, limit),
          "cudnnFindConvolutionBackwardDataAlgorithmEx");
    results = to_perf(r, returned);
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t r[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    check(
        cudnnFindConvolutionBackwardFilterAlgorithmEx(cudnn(), x_, in0, y_, in1, conv_, w_, out,
                                                      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &returned, r, ws, limit),
        "cudnnFindConvolutionBackwardFilterAlgorithmEx");
    results = to_perf(r, returned);
  }

  // Results come fastest first; take the first that ran and fits the mode.
  const Perf* chosen = nullptr;
  for (const Perf& r : results) {
    if (r.status != CUDNN_STATUS_SUCCESS || r.memory > limit) continue;
    if (mode == CudnnMode::gemm_fma &&
        (!gemm_family(pass, r.algo) || (r.math != CUDNN_FMA_MATH && r.math != CUDNN_DEFAULT_MATH)))
      continue;
    chosen = &r;
    break;
  }
  if (!chosen) {
    std::string tried;
    for (const Perf& r : results)
      tried += std::string(" ") + algo_name(pass, r.algo) + "(" + cudnnGetErrorString(r.status) + ", " +
               math_name(r.math) + ")";
    fail(std::string("cuDNN ") + mode_name(mode) + " " + pass_name(pass) + ": no algorithm fits:" + tried);
  }
  algo_ = chosen->algo;
  // gemm_fma runs under FMA math whatever Find reported, so no TF32 can slip in; any runs as Find measured it.
  math_ = mode == CudnnMode::gemm_fma ? CUDNN_FMA_MATH : chosen->math;
  check(cudnnSetConvolutionMathType(conv_, math_), "cudnnSetConvolutionMathType");
  workspace_bytes_ = chosen->memory;
  std::ostringstream text;
  text.precision(3);
  text << algo_name(pass, algo_) << ", " << math_name(math_) << ", workspace " << double(workspace_bytes_) * 1e-6
       << " MB, " << (chosen->determinism == CUDNN_DETERMINISTIC ? "deterministic" : "non-deterministic");
  description_ = text.str();
}

CudnnConv::~CudnnConv() {
  cudnnDestroyConvolutionDescriptor(conv_);
  cudnnDestroyFilterDescriptor(w_);
  cudnnDestroyTensorDescriptor(y_);
  cudnnDestroyTensorDescriptor(x_);
}

void CudnnConv::run(const float* in0, const float* in1, float* out) const {
  const float alpha = 1.f, beta = 0.f;
  float* ws = workspace(workspace_bytes_);
  if (pass_ == ConvPass::forward) {
    check(cudnnConvolutionForward(cudnn(), &alpha, x_, in0, w_, in1, conv_, cudnnConvolutionFwdAlgo_t(algo_), ws,
                                  workspace_bytes_, &beta, y_, out),
          "cudnnConvolutionForward");
  } else if (pass_ == ConvPass::backward_data) {
    check(cudnnConvolutionBackwardData(cudnn(), &alpha, w_, in1, y_, in0, conv_, cudnnConvolutionBwdDataAlgo_t(algo_),
                                       ws, workspace_bytes_, &beta, x_, out),
          "cudnnConvolutionBackwardData");
  } else {
    check(cudnnConvolutionBackwardFilter(cudnn(), &alpha, x_, in0, y_, in1, conv_,
                                         cudnnConvolutionBwdFilterAlgo_t(algo_), ws, workspace_bytes_, &beta, w_, out),
          "cudnnConvolutionBackwardFilter");
  }
}

}  // namespace gpubench
