// Device memory and streams of both GPU backends (declared in kernels/gpu.h): cudaMalloc and friends in the nvcc
// build, simt's guarded host memory in the host build. fill_device is a kernel in both.
#include <algorithm>
#include <cstring>
#include <string>

#include "kernels/cuda/portable.h"

#if !defined(__CUDACC__)
#include <thread>
#endif

namespace kernels::MASSMAP_GPU_NS {
namespace {

__global__ void fill_kernel(float* dst, float value, size_t count) {
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) dst[i] = value;
}

}  // namespace

#if defined(__CUDACC__)

namespace {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string("cuda: ") + what + ": " + cudaGetErrorString(err));
}

}  // namespace

bool available() {
  static const bool present = [] {
    int count = 0;
    const bool ok = cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
    if (!ok) cudaGetLastError();  // clear the sticky error of a failed query
    return ok;
  }();
  return present;
}

const char* describe() {
  static const std::string text = [] {
    if (!available()) return std::string("cuda: no GPU");
    int device = 0, major = 0, minor = 0, sms = 0;
    cudaDeviceProp prop{};
    if (cudaGetDevice(&device) != cudaSuccess || cudaGetDeviceProperties(&prop, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
      return std::string("cuda: device query failed");
    }
    return std::string(prop.name) + " (sm_" + std::to_string(major) + std::to_string(minor) + ", " +
           std::to_string(sms) + " SMs)";
  }();
  return text.c_str();
}

void* device_alloc(size_t bytes) {
  void* p = nullptr;
  check(cudaMalloc(&p, std::max<size_t>(bytes, 1)), ("cudaMalloc of " + std::to_string(bytes) + " bytes").c_str());
  return p;
}

void device_free(void* p) {
  if (p) check(cudaFree(p), "cudaFree");
}

void copy_to_device(void* dst, const void* src, size_t bytes, GpuStream stream) {
  if (bytes == 0) return;
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, static_cast<cudaStream_t>(stream)), "copy to device");
}

void copy_to_host(void* dst, const void* src, size_t bytes, GpuStream stream) {
  if (bytes == 0) return;
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, static_cast<cudaStream_t>(stream)), "copy to host");
}

void copy_device_to_device(void* dst, const void* src, size_t bytes, GpuStream stream) {
  if (bytes == 0) return;
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, static_cast<cudaStream_t>(stream)),
        "copy device to device");
}

GpuStream create_stream() {
  cudaStream_t s = nullptr;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  return s;
}

void destroy_stream(GpuStream stream) {
  if (stream) check(cudaStreamDestroy(static_cast<cudaStream_t>(stream)), "cudaStreamDestroy");
}

void synchronize(GpuStream stream) {
  check(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), "cudaStreamSynchronize");
}

#else  // simt: launches and copies run to completion, so streams are tokens

bool available() {
  return true;
}

const char* describe() {
  thread_local std::string text;
  text = "simt: host execution, " + std::to_string(::simt::worker_threads()) + " threads, schedule " +
         ::simt::describe(::simt::schedule());
  return text.c_str();
}

void* device_alloc(size_t bytes) {
  return ::simt::device_malloc(bytes);
}

void device_free(void* p) {
  ::simt::device_free(p);
}

void copy_to_device(void* dst, const void* src, size_t bytes, GpuStream) {
  if (bytes == 0) return;
  ::simt::check_device_range(dst, bytes, "copy_to_device");
  std::memcpy(dst, src, bytes);
}

void copy_to_host(void* dst, const void* src, size_t bytes, GpuStream) {
  if (bytes == 0) return;
  ::simt::check_device_range(src, bytes, "copy_to_host");
  std::memcpy(dst, src, bytes);
}

void copy_device_to_device(void* dst, const void* src, size_t bytes, GpuStream) {
  if (bytes == 0) return;
  ::simt::check_device_range(src, bytes, "copy_device_to_device (source)");
  ::simt::check_device_range(dst, bytes, "copy_device_to_device (destination)");
  std::memmove(dst, src, bytes);
}

GpuStream create_stream() {
  return new char(0);
}

void destroy_stream(GpuStream stream) {
  delete static_cast<char*>(stream);
}

void synchronize(GpuStream) {}

#endif

void fill_device(float* dst, float value, size_t count, GpuStream stream) {
  if (count == 0) return;
#if !defined(__CUDACC__)
  ::simt::check_device_range(dst, count * sizeof(float), "fill_device");
#endif
  const unsigned threads = 256;
  const unsigned blocks = static_cast<unsigned>(std::min<size_t>((count + threads - 1) / threads, 512));
  launch("fill_device", fill_kernel, dim3(blocks), dim3(threads), 0, stream, dst, value, count);
}

}  // namespace kernels::MASSMAP_GPU_NS
