#pragma once
// Helpers shared by the GPU benchmarks (bench/gpu_*_bench.cpp): error checks that end the program with a clear
// message, the device's facts and FP32 peak from cudaDeviceGetAttribute, device buffers with seeded contents, timing
// with CUDA events, and result checks (a benchmark of a wrong kernel is worthless). Device code lives in
// gpu_bench_support.cu; this header is plain host C++.
#include <benchmark/benchmark.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bench/bench_flags.h"
#include "kernels/conv.h"
#include "kernels/linear.h"

namespace gpubench {

// ---- errors ------------------------------------------------------------------------------------------------------
[[noreturn]] void fail(const std::string& message);  // "GPU BENCHMARK FAILED: message", exit 1
void check(cudaError_t status, const char* what);
void check(cublasStatus_t status, const char* what);
void check(cudnnStatus_t status, const char* what);

// ---- flags shared by every GPU benchmark ------------------------------------------------------------------------
struct CommonFlags {
  double baseline_min_time = 0.3;  // seconds of GPU time per cached baseline measurement
  bool keep_going = false;         // a failed check marks its row as an error instead of ending the program
};
CommonFlags& flags();
// Consumes --baseline_min_time=S and --keep_going; false for any other argument.
bool parse_common_flag(const char* arg);
using bench::flag_value;  // the value of "--name=value" in arg, or nullptr
// Where a check failed: prints it and ends the program, or (--keep_going) marks the row as an error, counts it and
// returns false. True when mismatch is empty.
bool require(benchmark::State& state, const std::string& mismatch);
int failures();  // checks that failed under --keep_going: main returns 1 when there were any

// ---- our kernel versions -----------------------------------------------------------------------------------------
// Each benchmark's Impl enum begins with our four versions, named naive, tiled, register_blocked and best; its
// library baselines follow. These map those first four.
template <class Impl>
kernels::GpuKernelVersion version_of(Impl impl) {
  return impl == Impl::naive              ? kernels::GpuKernelVersion::naive
         : impl == Impl::tiled            ? kernels::GpuKernelVersion::tiled
         : impl == Impl::register_blocked ? kernels::GpuKernelVersion::register_blocked
                                          : kernels::GpuKernelVersion::best;
}
const char* our_row_name(kernels::GpuKernelVersion version);  // "ours_naive", "ours_tiled", ...

// ---- main ----------------------------------------------------------------------------------------------------------
// The whole main() of a GPU benchmark: takes its own flags out of argv (own_flag returns true for an argument it
// consumed, and ends the program on a bad value) and the common ones, starts Google Benchmark, adds the common
// context and then add_context's (not when only listing the rows: that needs no GPU), registers the rows, runs them.
// Returns main's exit status: 1 after an unknown argument or a failed check under --keep_going.
int run_benchmark_main(int argc, char** argv, const std::function<bool(const char*)>& own_flag,
                       const std::function<void()>& add_context, const std::function<void()>& register_rows);

// ---- the device ----------------------------------------------------------------------------------------------------
struct DeviceInfo {
  std::string name;
  int major = 0, minor = 0, sms = 0, clock_khz = 0, fp32_lanes_per_sm = 0;
  size_t memory_bytes = 0;
  double fp32_peak_flops = 0;  // sms * fp32_lanes_per_sm * 2 (an FMA is 2 FLOPs) * clock_khz * 1e3
  std::string peak_formula;    // that product written out, for the context
};
// The first GPU; ends the program with a clear message where there is none.
const DeviceInfo& device();
cudaStream_t stream();  // one non-blocking stream for everything the benchmarks launch
// Context lines every GPU benchmark prints: device, versions, peak and how it is computed, the timing method.
void add_common_context();

// ---- memory ----------------------------------------------------------------------------------------------------
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t count);
  ~Buffer();
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  float* get() const { return ptr_; }
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(float); }
  std::vector<float> download() const;
  void upload(const std::vector<float>& host);

 private:
  float* ptr_ = nullptr;
  size_t count_ = 0;
};

// Uniform in [lo, hi) from (seed, element index): the same contents for any launch layout.
void fill_uniform(float* p, size_t count, uint64_t seed, float lo = -1.f, float hi = 1.f);
void fill_value(float* p, size_t count, float value);  // NaN poisons an output: an unwritten element fails a check
void fill_labels(float* p, size_t count, int classes, uint64_t seed);  // class ids 0..classes-1 as floats
void copy(float* dst, const float* src, size_t count);
Buffer clone(const Buffer& b);

// ---- timing --------------------------------------------------------------------------------------------------------
// GPU seconds of one call, between two CUDA events on stream(). A short spin kernel is queued first, so the GPU is
// still busy while the host queues the start event, the call's launches and the stop event: host launch latency
// (a few microseconds, tens for a cuDNN call) stays out of the measurement. call() must only enqueue on stream().
template <class Call>
double time_call(Call&& call);
// Mean of time_call over calls after one untimed warm-up call, until at least min_seconds of GPU time and 3 calls.
template <class Call>
double mean_seconds_per_call(Call&& call, double min_seconds);

void spin_microseconds(double microseconds);  // a one-thread kernel that keeps the GPU busy that long
void begin_timed_call();                      // spin, then the start event
double end_timed_call();                      // the stop event, wait, seconds between the two
constexpr double kSpinMicroseconds = 200;

template <class Call>
double time_call(Call&& call) {
  begin_timed_call();
  call();
  return end_timed_call();
}

template <class Call>
double mean_seconds_per_call(Call&& call, double min_seconds) {
  call();
  check(cudaStreamSynchronize(stream()), "warm-up call");
  double total = 0;
  int calls = 0;
  while (calls < 3 || total < min_seconds) {
    total += time_call(call);
    ++calls;
  }
  return total / calls;
}

// ---- checks ----------------------------------------------------------------------------------------------------
// got matches want when every |got - want| <= rel_tol * max|want| + 1e-6 (and neither holds a NaN). Float sums in
// another order differ by about 1e-6 of that scale; a real bug (a missing tap, a wrong index, an unwritten element
// still holding the NaN poison) by more than 1e-3 of it.
struct Comparison {
  double max_abs_want = 0, max_abs_error = 0;
  size_t nan_count = 0, count = 0;
  bool exact() const { return nan_count == 0 && max_abs_error == 0; }
  bool within(double rel_tol) const { return nan_count == 0 && max_abs_error <= rel_tol * max_abs_want + 1e-6; }
  std::string describe(double rel_tol) const;
};
Comparison compare_device(const float* got, const float* want, size_t count);
Comparison compare_host(const float* got, const float* want, size_t count);
// Empty when got matches want; otherwise a message naming what, the worst error, the first bad element.
std::string mismatch_device(const float* got, const float* want, size_t count, double rel_tol, const std::string& what);
std::string mismatch_host(const std::vector<float>& got, const std::vector<float>& want, double rel_tol,
                          const std::string& what);

// An independent check of a baseline's output (so a mismatch with ours can be blamed on the right side): a few
// elements recomputed on the GPU in double precision, straight from the definition, one block per element.
// Returns the empty string when every sampled element of out is within rel_tol of its double-precision value.
enum class ConvPass { forward, backward_data, backward_filter };
const char* pass_name(ConvPass pass);
std::string check_gemm_samples(const kernels::GemmShape& s, const float* a, const float* b, const float* c,
                               double rel_tol, const std::string& what);
// forward: out = y from (x, w); backward_data: out = dx from (dy, w); backward_filter: out = dw from (x, dy). Dense
// NCHW tensors; in0 and in1 are the pass's two inputs in that order.
std::string check_conv_samples(ConvPass pass, const kernels::ConvShape& s, const float* in0, const float* in1,
                               const float* out, double rel_tol, const std::string& what);

}  // namespace gpubench
