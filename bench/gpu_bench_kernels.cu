// Device code of the GPU benchmarks' helpers (declared in gpu_bench_support.h): seeded fills, the spin kernel that
// hides launch latency from event timing, the comparison reduction, and the double-precision spot checks of the
// baselines. Plain CUDA: this is measuring equipment, not part of the engine, so it is not built for simt.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/gpu_bench_support.h"

namespace gpubench {
namespace {

constexpr int kThreads = 256;

unsigned blocks_for(size_t count) {
  return unsigned(std::min<size_t>((count + kThreads - 1) / kThreads, 4096));
}

__device__ inline uint64_t mix(uint64_t z) {  // splitmix64's finaliser
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

__device__ inline float uniform01(uint64_t seed, size_t i) {
  return float(mix(seed * 0x2545F4914F6CDD1Dull + (i + 1) * 0x9E3779B97F4A7C15ull) >> 40) * 0x1.0p-24f;
}

__global__ void fill_uniform_kernel(float* p, size_t count, uint64_t seed, float lo, float hi) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x)
    p[i] = lo + (hi - lo) * uniform01(seed, i);
}

__global__ void fill_value_kernel(float* p, size_t count, float value) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x)
    p[i] = value;
}

__global__ void fill_labels_kernel(float* p, size_t count, int classes, uint64_t seed) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x)
    p[i] = float(min(int(uniform01(seed, i) * float(classes)), classes - 1));
}

__global__ void spin_kernel(long long cycles) {
  const long long start = clock64();
  while (clock64() - start < cycles) {
  }
}

// Per block: max |want|, max |got - want|, count of NaNs in either; the host reduces the blocks.
__global__ void compare_kernel(const float* got, const float* want, size_t count, float* block_want, float* block_error,
                               unsigned long long* block_nans) {
  __shared__ float s_want[kThreads], s_error[kThreads];
  __shared__ unsigned long long s_nans[kThreads];
  float max_want = 0.f, max_error = 0.f;
  unsigned long long nans = 0;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x) {
    const float g = got[i], w = want[i];
    if (isnan(g) || isnan(w)) {
      ++nans;
      continue;
    }
    max_want = fmaxf(max_want, fabsf(w));
    max_error = fmaxf(max_error, fabsf(g - w));
  }
  s_want[threadIdx.x] = max_want, s_error[threadIdx.x] = max_error, s_nans[threadIdx.x] = nans;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (int(threadIdx.x) < half) {
      s_want[threadIdx.x] = fmaxf(s_want[threadIdx.x], s_want[threadIdx.x + half]);
      s_error[threadIdx.x] = fmaxf(s_error[threadIdx.x], s_error[threadIdx.x + half]);
      s_nans[threadIdx.x] += s_nans[threadIdx.x + half];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    block_want[blockIdx.x] = s_want[0], block_error[blockIdx.x] = s_error[0], block_nans[blockIdx.x] = s_nans[0];
  }
}

// One block per sampled element: the threads split the sum, in double, and reduce it in shared memory.
__device__ double block_sum(double partial) {
  __shared__ double s[kThreads];
  s[threadIdx.x] = partial;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (int(threadIdx.x) < half) s[threadIdx.x] += s[threadIdx.x + half];
    __syncthreads();
  }
  return s[0];
}

__global__ void gemm_sample_kernel(kernels::GemmShape g, const float* a, const float* b, const long long* index,
                                   double* out) {
  const long long m = index[blockIdx.x] / g.N, n = index[blockIdx.x] % g.N;
  double sum = 0;
  for (int k = threadIdx.x; k < g.K; k += blockDim.x) {
    const double av = g.trans_a ? a[k * g.lda + m] : a[m * g.lda + k];
    const double bv = g.trans_b ? b[n * g.ldb + k] : b[k * g.ldb + n];
    sum += av * bv;
  }
  sum = block_sum(sum);
  if (threadIdx.x == 0) out[blockIdx.x] = sum;
}

// Dense NCHW tensors, weights (K, C/G, R, S). The loops follow kernels/conv.h's formula directly.
__global__ void conv_sample_kernel(ConvPass pass, kernels::ConvShape s, const float* in0, const float* in1,
                                   const long long* index, double* out) {
  const long long Cg = s.C / s.groups, Kg = s.K / s.groups, RS = s.R * s.S;
  long long i = index[blockIdx.x];
  double sum = 0;
  if (pass == ConvPass::forward) {  // y[n,k,p,q]: x = in0, w = in1
    const long long q = i % s.Q, p = i / s.Q % s.P, k = i / (s.P * s.Q) % s.K, n = i / (s.P * s.Q * s.K);
    const long long g = k / Kg;
    for (long long j = threadIdx.x; j < Cg * RS; j += blockDim.x) {
      const long long c = j / RS, r = j % RS / s.S, t = j % s.S;
      const long long h = p * s.stride_h - s.pad_h + r, w = q * s.stride_w - s.pad_w + t;
      if (h < 0 || h >= s.H || w < 0 || w >= s.W) continue;
      sum += double(in0[((n * s.C + g * Cg + c) * s.H + h) * s.W + w]) * in1[(k * Cg + c) * RS + r * s.S + t];
    }
  } else if (pass == ConvPass::backward_data) {  // dx[n,c,h,w]: dy = in0, w = in1
    const long long w = i % s.W, h = i / s.W % s.H, c = i / (s.H * s.W) % s.C, n = i / (s.H * s.W * s.C);
    const long long g = c / Cg, cl = c % Cg;
    for (long long j = threadIdx.x; j < Kg * RS; j += blockDim.x) {
      const long long k = g * Kg + j / RS, r = j % RS / s.S, t = j % s.S;
      const long long ph = h + s.pad_h - r, qw = w + s.pad_w - t;
      if (ph < 0 || qw < 0 || ph % s.stride_h || qw % s.stride_w) continue;
      const long long p = ph / s.stride_h, q = qw / s.stride_w;
      if (p >= s.P || q >= s.Q) continue;
      sum += double(in0[((n * s.K + k) * s.P + p) * s.Q + q]) * in1[(k * Cg + cl) * RS + r * s.S + t];
    }
  } else {  // dw[k,c,r,s]: x = in0, dy = in1
    const long long t = i % s.S, r = i / s.S % s.R, c = i / RS % Cg, k = i / (RS * Cg);
    const long long g = k / Kg;
    for (long long j = threadIdx.x; j < (long long)s.N * s.P * s.Q; j += blockDim.x) {
      const long long q = j % s.Q, p = j / s.Q % s.P, n = j / (s.P * s.Q);
      const long long h = p * s.stride_h - s.pad_h + r, w = q * s.stride_w - s.pad_w + t;
      if (h < 0 || h >= s.H || w < 0 || w >= s.W) continue;
      sum += double(in0[((n * s.C + g * Cg + c) * s.H + h) * s.W + w]) * in1[((n * s.K + k) * s.P + p) * s.Q + q];
    }
  }
  sum = block_sum(sum);
  if (threadIdx.x == 0) out[blockIdx.x] = sum;
}

void check_launch(const char* what) {
  check(cudaGetLastError(), what);
}

// Indices of the sampled elements: the first, the last, and the rest spread by a large odd stride.
std::vector<long long> sample_indices(long long count, int samples) {
  std::vector<long long> index;
  for (int i = 0; i < samples && i < count; ++i)
    index.push_back(i == 0 ? 0 : i == 1 ? count - 1 : (long long)((i * 2654435761ull + 12345) % uint64_t(count)));
  return index;
}

// Runs launch(index_dev, out_dev) for the sampled elements of out and compares them with the doubles.
template <class Launch>
std::string check_samples(const float* out, long long count, int samples, double rel_tol, const std::string& what,
                          Launch&& launch) {
  const std::vector<long long> index = sample_indices(count, samples);
  const int n = int(index.size());
  long long* index_dev = nullptr;
  double* ref_dev = nullptr;
  check(cudaMalloc(&index_dev, n * sizeof(long long)), "sample indices");
  check(cudaMalloc(&ref_dev, n * sizeof(double)), "sample values");
  check(cudaMemcpyAsync(index_dev, index.data(), n * sizeof(long long), cudaMemcpyHostToDevice, stream()),
        "sample indices upload");
  launch(n, index_dev, ref_dev);
  check_launch("double-precision spot check");
  std::vector<double> ref(n);
  std::vector<float> got(n);
  check(cudaMemcpyAsync(ref.data(), ref_dev, n * sizeof(double), cudaMemcpyDeviceToHost, stream()), "spot check");
  for (int i = 0; i < n; ++i)
    check(cudaMemcpyAsync(&got[i], out + index[i], sizeof(float), cudaMemcpyDeviceToHost, stream()), "spot check");
  check(cudaStreamSynchronize(stream()), "spot check");
  check(cudaFree(index_dev), "cudaFree");
  check(cudaFree(ref_dev), "cudaFree");
  double scale = 0, worst = 0;
  int worst_at = 0;
  for (int i = 0; i < n; ++i) scale = std::max(scale, std::fabs(ref[i]));
  for (int i = 0; i < n; ++i) {
    const double err = std::fabs(double(got[i]) - ref[i]);
    if (!(err <= worst)) worst = err, worst_at = i;  // a NaN becomes the worst
  }
  if (worst <= rel_tol * scale + 1e-6) return "";
  char text[400];
  std::snprintf(text, sizeof text,
                "%s: element %lld is %.7g, its double-precision value %.7g (error %.3g > %.1e of the sampled max "
                "|value| %.4g; %d elements sampled)",
                what.c_str(), index[worst_at], got[worst_at], ref[worst_at], worst, rel_tol, scale, n);
  return text;
}

}  // namespace

void fill_uniform(float* p, size_t count, uint64_t seed, float lo, float hi) {
  fill_uniform_kernel<<<blocks_for(count), kThreads, 0, stream()>>>(p, count, seed, lo, hi);
  check_launch("fill_uniform");
}

void fill_value(float* p, size_t count, float value) {
  fill_value_kernel<<<blocks_for(count), kThreads, 0, stream()>>>(p, count, value);
  check_launch("fill_value");
}

void fill_labels(float* p, size_t count, int classes, uint64_t seed) {
  fill_labels_kernel<<<blocks_for(count), kThreads, 0, stream()>>>(p, count, classes, seed);
  check_launch("fill_labels");
}

void spin_microseconds(double microseconds) {
  spin_kernel<<<1, 1, 0, stream()>>>((long long)(microseconds * 1e-3 * device().clock_khz));
  check_launch("spin");
}

Comparison compare_device(const float* got, const float* want, size_t count) {
  Comparison result;
  result.count = count;
  if (count == 0) return result;
  const unsigned blocks = blocks_for(count);
  float *block_want = nullptr, *block_error = nullptr;
  unsigned long long* block_nans = nullptr;
  check(cudaMalloc(&block_want, blocks * sizeof(float)), "compare");
  check(cudaMalloc(&block_error, blocks * sizeof(float)), "compare");
  check(cudaMalloc(&block_nans, blocks * sizeof(unsigned long long)), "compare");
  compare_kernel<<<blocks, kThreads, 0, stream()>>>(got, want, count, block_want, block_error, block_nans);
  check_launch("compare");
  std::vector<float> want_max(blocks), error_max(blocks);
  std::vector<unsigned long long> nans(blocks);
  check(cudaMemcpyAsync(want_max.data(), block_want, blocks * sizeof(float), cudaMemcpyDeviceToHost, stream()), "c");
  check(cudaMemcpyAsync(error_max.data(), block_error, blocks * sizeof(float), cudaMemcpyDeviceToHost, stream()), "c");
  check(cudaMemcpyAsync(nans.data(), block_nans, blocks * sizeof(unsigned long long), cudaMemcpyDeviceToHost, stream()),
        "compare");
  check(cudaStreamSynchronize(stream()), "compare");
  for (unsigned i = 0; i < blocks; ++i) {
    result.max_abs_want = std::max(result.max_abs_want, double(want_max[i]));
    result.max_abs_error = std::max(result.max_abs_error, double(error_max[i]));
    result.nan_count += nans[i];
  }
  check(cudaFree(block_want), "cudaFree");
  check(cudaFree(block_error), "cudaFree");
  check(cudaFree(block_nans), "cudaFree");
  return result;
}

std::string check_gemm_samples(const kernels::GemmShape& s, const float* a, const float* b, const float* c,
                               double rel_tol, const std::string& what) {
  if (s.ldc != s.N || s.alpha != 1.f || s.beta != 0.f) fail("check_gemm_samples: dense C, alpha 1, beta 0 only");
  return check_samples(c, (long long)s.M * s.N, 64, rel_tol, what, [&](int n, const long long* index, double* out) {
    gemm_sample_kernel<<<n, kThreads, 0, stream()>>>(s, a, b, index, out);
  });
}

std::string check_conv_samples(ConvPass pass, const kernels::ConvShape& s, const float* in0, const float* in1,
                               const float* out, double rel_tol, const std::string& what) {
  const long long count = pass == ConvPass::forward         ? (long long)s.N * s.K * s.P * s.Q
                          : pass == ConvPass::backward_data ? (long long)s.N * s.C * s.H * s.W
                                                            : (long long)s.K * (s.C / s.groups) * s.R * s.S;
  // backward_filter's sums run over N*P*Q (millions of terms at batch 128): fewer samples keep it quick.
  const int samples = pass == ConvPass::backward_filter ? 24 : 64;
  return check_samples(out, count, samples, rel_tol, what, [&](int n, const long long* index, double* result) {
    conv_sample_kernel<<<n, kThreads, 0, stream()>>>(pass, s, in0, in1, index, result);
  });
}

}  // namespace gpubench
