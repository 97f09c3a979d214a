#pragma once
// Test harness for the GPU kernels. GPU_TEST(name) registers two doctest cases with one body:
//   "simt.<name>"  always: the CUDA source run on the host, once under each schedule (forward, reverse,
//                  random), so a missing barrier cannot hide behind a lucky order;
//   "cuda.<name>"  on a real GPU; skipped, and shown as skipped in doctest's summary, where there is none.
// In the body, `gpu` is the backend: DeviceBuffer(gpu, host) uploads, .download() reads back, and
// GPU_CALL(gpu, launcher, args...) calls kernels::cuda::launcher or kernels::simt::launcher.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kernels/gpu.h"
#include "kernels/simt/runtime.h"

namespace testing_support {

class GpuBackend {
 public:
  explicit GpuBackend(bool cuda) : cuda_(cuda) {}
  bool is_cuda() const { return cuda_; }
  const char* name() const { return cuda_ ? "cuda" : "simt"; }
  kernels::GpuStream stream() const { return nullptr; }  // the default stream

 private:
  bool cuda_;
};

#ifdef MASSMAP_HAVE_CUDA
#define GPU_CALL(gpu, fn, ...) ((gpu).is_cuda() ? kernels::cuda::fn(__VA_ARGS__) : kernels::simt::fn(__VA_ARGS__))
inline bool cuda_available() {
  return kernels::cuda::available();
}
#else
#define GPU_CALL(gpu, fn, ...) ((void)(gpu), kernels::simt::fn(__VA_ARGS__))
inline bool cuda_available() {
  return false;
}
#endif

// Says once per program, on stderr, when the cuda.* cases cannot run, so a green run is not mistaken for a GPU run.
inline const bool kCudaNoticePrinted = [] {
  if (!cuda_available())
    std::fprintf(stderr,
                 "NOTE: no CUDA GPU here: the cuda.* test cases are SKIPPED (not passed); simt.* ran the "
                 "same kernels on the host.\n");
  return true;
}();

// Every version of the conv and GEMM launchers, in the order a learner reads them, and their names for messages.
inline constexpr kernels::GpuKernelVersion kGpuKernelVersions[] = {
    kernels::GpuKernelVersion::naive, kernels::GpuKernelVersion::tiled, kernels::GpuKernelVersion::register_blocked,
    kernels::GpuKernelVersion::best};

inline const char* version_name(kernels::GpuKernelVersion v) {
  switch (v) {
    case kernels::GpuKernelVersion::naive:
      return "naive";
    case kernels::GpuKernelVersion::tiled:
      return "tiled";
    case kernels::GpuKernelVersion::register_blocked:
      return "register_blocked";
    case kernels::GpuKernelVersion::best:
      return "best";
  }
  return "?";
}

// Tolerance of a sum of `length` products against the CPU reference: about 100x float rounding, still far
// below one missing term.
inline float gemm_atol(int64_t length) {
  return 1e-5f * std::sqrt(float(length)) + 1e-6f;
}
constexpr float kGemmRtol = 1e-5f;

// A float buffer in the backend's device memory.
class DeviceBuffer {
 public:
  DeviceBuffer(const GpuBackend& gpu, size_t count) : gpu_(gpu), count_(count) {
    ptr_ = static_cast<float*>(GPU_CALL(gpu_, device_alloc, count * sizeof(float) + (count == 0)));
  }
  DeviceBuffer(const GpuBackend& gpu, const std::vector<float>& host) : DeviceBuffer(gpu, host.size()) { upload(host); }
  ~DeviceBuffer() { GPU_CALL(gpu_, device_free, ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  float* get() { return ptr_; }
  const float* get() const { return ptr_; }
  size_t size() const { return count_; }
  void upload(const std::vector<float>& host) {
    REQUIRE(host.size() == count_);
    GPU_CALL(gpu_, copy_to_device, ptr_, host.data(), count_ * sizeof(float), gpu_.stream());
  }
  std::vector<float> download() const {
    std::vector<float> host(count_);
    GPU_CALL(gpu_, copy_to_host, host.data(), ptr_, count_ * sizeof(float), gpu_.stream());
    GPU_CALL(gpu_, synchronize, gpu_.stream());
    return host;
  }

 private:
  const GpuBackend& gpu_;
  size_t count_;
  float* ptr_ = nullptr;
};

// Runs body once on cuda, or on simt once per schedule (forward, reverse, random), restoring the schedule after.
inline void run_gpu_test(bool cuda, const std::function<void(const GpuBackend&)>& body) {
  GpuBackend gpu(cuda);
  if (cuda) {
    body(gpu);
    return;
  }
  const ::simt::Schedule saved = ::simt::schedule();
  const ::simt::Schedule schedules[] = {
      {::simt::Order::forward, 0}, {::simt::Order::reverse, 0}, {::simt::Order::random, 12345}};
  for (const auto& s : schedules) {
    ::simt::set_schedule(s);
    CAPTURE(::simt::describe(s));
    body(gpu);
  }
  ::simt::set_schedule(saved);
}

}  // namespace testing_support

#define MASSMAP_GPU_TEST_CAT2(a, b) a##b
#define MASSMAP_GPU_TEST_CAT(a, b) MASSMAP_GPU_TEST_CAT2(a, b)
#define MASSMAP_GPU_TEST_IMPL(name, fn)                                        \
  static void fn(const testing_support::GpuBackend& gpu);                      \
  TEST_CASE("simt." name) {                                                    \
    testing_support::run_gpu_test(false, fn);                                  \
  }                                                                            \
  TEST_CASE("cuda." name* doctest::skip(!testing_support::cuda_available())) { \
    testing_support::run_gpu_test(true, fn);                                   \
  }                                                                            \
  static void fn(const testing_support::GpuBackend& gpu)
#define GPU_TEST(name) MASSMAP_GPU_TEST_IMPL(name, MASSMAP_GPU_TEST_CAT(gpu_test_body_, __LINE__))
