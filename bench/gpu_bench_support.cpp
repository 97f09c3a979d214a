// Host side of the GPU benchmarks' helpers (gpu_bench_support.h); the kernels are in gpu_bench_kernels.cu.
#include "bench/gpu_bench_support.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <sstream>

namespace gpubench {

CommonFlags& flags() {
  static CommonFlags f;
  return f;
}

bool parse_common_flag(const char* arg) {
  if (const char* v = flag_value(arg, "--baseline_min_time")) {
    flags().baseline_min_time = std::atof(v);
    return true;
  }
  if (std::strcmp(arg, "--keep_going") == 0) {
    flags().keep_going = true;
    return true;
  }
  return false;
}

const char* our_row_name(kernels::GpuKernelVersion version) {
  switch (version) {
    case kernels::GpuKernelVersion::naive:
      return "ours_naive";
    case kernels::GpuKernelVersion::tiled:
      return "ours_tiled";
    case kernels::GpuKernelVersion::register_blocked:
      return "ours_register_blocked";
    case kernels::GpuKernelVersion::best:
      return "ours_best";
  }
  return "";
}

int run_benchmark_main(int argc, char** argv, const std::function<bool(const char*)>& own_flag,
                       const std::function<void()>& add_context, const std::function<void()>& register_rows) {
  bool list_only = false;
  bench::take_own_flags(&argc, argv, [&](const char* arg) {
    if (own_flag(arg) || parse_common_flag(arg)) return true;
    const std::string text = arg;
    if (text.rfind("--benchmark_list_tests", 0) == 0 && text != "--benchmark_list_tests=false") list_only = true;
    return false;
  });
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (!list_only) {
    add_common_context();
    add_context();
  }
  register_rows();
  try {
    benchmark::RunSpecifiedBenchmarks();
  } catch (const std::exception& e) {
    fail(e.what());
  }
  benchmark::Shutdown();
  return failures() ? 1 : 0;
}

namespace {
int g_failures = 0;
}

int failures() {
  return g_failures;
}

bool require(benchmark::State& state, const std::string& mismatch) {
  if (mismatch.empty()) return true;
  if (!flags().keep_going) fail("VALIDATION: " + mismatch);
  std::fflush(stdout);
  std::fprintf(stderr, "\nVALIDATION FAILED (--keep_going: row marked as an error): %s\n", mismatch.c_str());
  state.SkipWithError(("validation failed: " + mismatch).c_str());
  ++g_failures;
  return false;
}

void fail(const std::string& message) {
  std::fflush(stdout);
  std::fprintf(stderr, "\nGPU BENCHMARK FAILED: %s\n", message.c_str());
  std::exit(1);
}

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) fail(std::string(what) + ": CUDA error: " + cudaGetErrorString(status));
}

void check(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    fail(std::string(what) + ": cuBLAS error: " + cublasGetStatusString(status) + " (" + std::to_string(status) + ")");
}

void check(cudnnStatus_t status, const char* what) {
  if (status != CUDNN_STATUS_SUCCESS) fail(std::string(what) + ": cuDNN error: " + cudnnGetErrorString(status));
}

// ---- the device ----------------------------------------------------------------------------------------------------
namespace {

// FP32 FMA lanes per SM (CUDA C Programming Guide, arithmetic instruction throughput): 64 on sm_70/75 and on the
// A100 (sm_80); 128 on sm_86/87/89, the H100/H200 (sm_90) and Blackwell.
int fp32_lanes_per_sm(int major, int minor) {
  if (major == 7 || (major == 8 && minor == 0) || (major == 6 && minor == 0)) return 64;
  return 128;
}

DeviceInfo query_device() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0)
    fail(std::string("no CUDA GPU here (") + (status != cudaSuccess ? cudaGetErrorString(status) : "0 devices") +
         "): the GPU benchmarks need one; run them on a machine with a CUDA GPU (tools/gpu-suite.sh run)");
  DeviceInfo d;
  int dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  cudaDeviceProp prop{};  // for the name and memory size only: clock rates come from cudaDeviceGetAttribute
  check(cudaGetDeviceProperties(&prop, dev), "cudaGetDeviceProperties");
  d.name = prop.name;
  d.memory_bytes = prop.totalGlobalMem;
  check(cudaDeviceGetAttribute(&d.major, cudaDevAttrComputeCapabilityMajor, dev), "compute capability");
  check(cudaDeviceGetAttribute(&d.minor, cudaDevAttrComputeCapabilityMinor, dev), "compute capability");
  check(cudaDeviceGetAttribute(&d.sms, cudaDevAttrMultiProcessorCount, dev), "SM count");
  check(cudaDeviceGetAttribute(&d.clock_khz, cudaDevAttrClockRate, dev), "clock rate");
  d.fp32_lanes_per_sm = fp32_lanes_per_sm(d.major, d.minor);
  d.fp32_peak_flops = double(d.sms) * d.fp32_lanes_per_sm * 2.0 * d.clock_khz * 1e3;
  std::ostringstream formula;
  formula << d.sms << " SMs x " << d.fp32_lanes_per_sm << " FP32 lanes x 2 FLOP per FMA x " << d.clock_khz / 1000
          << " MHz (cudaDevAttrClockRate, the peak boost clock; under load the clock may be lower)";
  d.peak_formula = formula.str();
  return d;
}

struct Events {
  cudaEvent_t start = nullptr, stop = nullptr;
};

const Events& events() {
  static const Events e = [] {
    Events created;
    check(cudaEventCreate(&created.start), "cudaEventCreate");
    check(cudaEventCreate(&created.stop), "cudaEventCreate");
    return created;
  }();
  return e;
}

}  // namespace

const DeviceInfo& device() {
  static const DeviceInfo info = query_device();
  return info;
}

cudaStream_t stream() {
  static cudaStream_t s = [] {
    device();  // a clear message first where there is no GPU
    cudaStream_t created = nullptr;
    check(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking), "cudaStreamCreate");
    return created;
  }();
  return s;
}

void add_common_context() {
  const DeviceInfo& d = device();
  std::ostringstream text;
  text << d.name << " (sm_" << d.major << d.minor << ", " << d.sms << " SMs, " << d.clock_khz / 1000 << " MHz, "
       << d.memory_bytes / (1024 * 1024) << " MiB)";
  benchmark::AddCustomContext("gpu", text.str());
  text.str("");
  text.precision(5);
  text << d.fp32_peak_flops * 1e-9 << " = " << d.peak_formula;
  benchmark::AddCustomContext("fp32_peak_GFLOP/s", text.str());
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  text.str("");
  text << "driver " << driver / 1000 << "." << driver % 1000 / 10 << ", runtime " << runtime / 1000 << "."
       << runtime % 1000 / 10 << ", cuDNN " << cudnnGetVersion() << ", cuBLAS " << [] {
            int v = 0;
            cublasGetProperty(MAJOR_VERSION, &v);
            int minor = 0, patch = 0;
            cublasGetProperty(MINOR_VERSION, &minor);
            cublasGetProperty(PATCH_LEVEL, &patch);
            return std::to_string(v) + "." + std::to_string(minor) + "." + std::to_string(patch);
          }();
  benchmark::AddCustomContext("cuda", text.str());
  const char* tf32 = std::getenv("NVIDIA_TF32_OVERRIDE");
  benchmark::AddCustomContext("NVIDIA_TF32_OVERRIDE", tf32 ? tf32 : "(unset)");
  benchmark::AddCustomContext(
      "timing", "CUDA events around each call, a " + std::to_string(int(kSpinMicroseconds)) +
                    " us spin kernel queued before the start event to hide host launch latency; mean over iterations");
}

// ---- memory ----------------------------------------------------------------------------------------------------
Buffer::Buffer(size_t count) : count_(count) {
  const cudaError_t status = cudaMalloc(&ptr_, std::max<size_t>(count, 1) * sizeof(float));
  if (status != cudaSuccess)
    fail("cudaMalloc of " + std::to_string(count * sizeof(float) >> 20) + " MiB: " + cudaGetErrorString(status) +
         " (a smaller --batch helps)");
}

Buffer::~Buffer() {
  if (ptr_) cudaFree(ptr_);
}

Buffer::Buffer(Buffer&& other) noexcept : ptr_(other.ptr_), count_(other.count_) {
  other.ptr_ = nullptr, other.count_ = 0;
}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    if (ptr_) cudaFree(ptr_);
    ptr_ = other.ptr_, count_ = other.count_;
    other.ptr_ = nullptr, other.count_ = 0;
  }
  return *this;
}

std::vector<float> Buffer::download() const {
  std::vector<float> host(count_);
  check(cudaMemcpyAsync(host.data(), ptr_, bytes(), cudaMemcpyDeviceToHost, stream()), "download");
  check(cudaStreamSynchronize(stream()), "download");
  return host;
}

void Buffer::upload(const std::vector<float>& host) {
  if (host.size() != count_) fail("upload: size mismatch");
  check(cudaMemcpyAsync(ptr_, host.data(), bytes(), cudaMemcpyHostToDevice, stream()), "upload");
  check(cudaStreamSynchronize(stream()), "upload");
}

void copy(float* dst, const float* src, size_t count) {
  check(cudaMemcpyAsync(dst, src, count * sizeof(float), cudaMemcpyDeviceToDevice, stream()), "device copy");
}

Buffer clone(const Buffer& b) {
  Buffer out(b.size());
  copy(out.get(), b.get(), b.size());
  return out;
}

// ---- timing --------------------------------------------------------------------------------------------------------
void begin_timed_call() {
  const cudaStream_t s = stream();
  spin_microseconds(kSpinMicroseconds);
  check(cudaEventRecord(events().start, s), "cudaEventRecord");
}

double end_timed_call() {
  const Events& e = events();
  check(cudaEventRecord(e.stop, stream()), "cudaEventRecord");
  check(cudaEventSynchronize(e.stop), "the timed call");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, e.start, e.stop), "cudaEventElapsedTime");
  return ms * 1e-3;
}

// ---- checks ----------------------------------------------------------------------------------------------------
std::string Comparison::describe(double rel_tol) const {
  char text[300];
  std::snprintf(text, sizeof text,
                "max |error| %.4g vs tolerance %.3g (%.1e of max |expected| %.4g), %zu NaN elements of %zu",
                max_abs_error, rel_tol * max_abs_want + 1e-6, rel_tol, max_abs_want, nan_count, count);
  return text;
}

Comparison compare_host(const float* got, const float* want, size_t count) {
  Comparison c;
  c.count = count;
  for (size_t i = 0; i < count; ++i) {
    if (std::isnan(got[i]) || std::isnan(want[i])) {
      ++c.nan_count;
      continue;
    }
    c.max_abs_want = std::max(c.max_abs_want, double(std::fabs(want[i])));
    c.max_abs_error = std::max(c.max_abs_error, double(std::fabs(got[i] - want[i])));
  }
  return c;
}

namespace {

std::string first_difference(const float* got, const float* want, size_t count, double tol) {
  for (size_t i = 0; i < count; ++i) {
    const double err = std::fabs(double(got[i]) - double(want[i]));
    if (!(err <= tol)) {
      char text[160];
      std::snprintf(text, sizeof text, "; first at index %zu: got %.7g, expected %.7g", i, got[i], want[i]);
      return text;
    }
  }
  return "";
}

}  // namespace

std::string mismatch_host(const std::vector<float>& got, const std::vector<float>& want, double rel_tol,
                          const std::string& what) {
  if (got.size() != want.size()) return what + ": sizes differ";
  const Comparison c = compare_host(got.data(), want.data(), got.size());
  if (c.within(rel_tol)) return "";
  return what + ": " + c.describe(rel_tol) +
         first_difference(got.data(), want.data(), got.size(), rel_tol * c.max_abs_want + 1e-6);
}

std::string mismatch_device(const float* got, const float* want, size_t count, double rel_tol,
                            const std::string& what) {
  const Comparison c = compare_device(got, want, count);
  if (c.within(rel_tol)) return "";
  // Rare, so the slow path that names the first bad element is fine.
  std::vector<float> g(count), w(count);
  check(cudaMemcpyAsync(g.data(), got, count * sizeof(float), cudaMemcpyDeviceToHost, stream()), "download");
  check(cudaMemcpyAsync(w.data(), want, count * sizeof(float), cudaMemcpyDeviceToHost, stream()), "download");
  check(cudaStreamSynchronize(stream()), "download");
  return what + ": " + c.describe(rel_tol) +
         first_difference(g.data(), w.data(), count, rel_tol * c.max_abs_want + 1e-6);
}

const char* pass_name(ConvPass pass) {
  return pass == ConvPass::forward ? "forward" : pass == ConvPass::backward_data ? "backward_data" : "backward_filter";
}

}  // namespace gpubench
