#pragma once
// Helpers shared by the CPU benchmarks: deterministic data, a wall-clock timing loop for baselines, the machine's
// measured FP32 peak, and a result check that stops the program on a mismatch (a benchmark of a wrong kernel is
// worthless, so there is no "warn and go on").
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "bench/bench_flags.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace bench {

// The three passes of a layer. For a linear layer backward_filter is its backward-weight pass.
enum class Pass { forward, backward_data, backward_filter };
inline const char* pass_name(Pass p) {
  return p == Pass::forward ? "forward" : p == Pass::backward_data ? "backward_data" : "backward_filter";
}

inline double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// splitmix64 in [-1, 1). Sequential, so the first k values of a seed are the same for any length: the batch-1
// problem's inputs are a prefix of the full batch's.
inline std::vector<float> random_vector(size_t n, uint64_t seed) {
  std::vector<float> v(n);
  uint64_t state = seed * 0x2545F4914F6CDD1Dull;
  for (auto& e : v) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    e = -1.f + 2.f * float((z >> 40) * 0x1.0p-24);
  }
  return v;
}

// Mean wall seconds per call: one untimed warm-up call, then whole calls until min_seconds have passed (at least
// 3). The same statistic Google Benchmark reports (mean over its iterations), so ratios compare like with like.
template <class Call>
double mean_seconds_per_call(Call&& call, double min_seconds) {
  call();
  int calls = 0;
  const double start = now_seconds();
  double elapsed = 0;
  while (calls < 3 || elapsed < min_seconds) {
    call();
    ++calls;
    elapsed = now_seconds() - start;
  }
  return elapsed / calls;
}

// ---- FP32 peak: measured, not looked up ------------------------------------------------------------------------
// Every OpenMP thread runs chains of independent FMAs on registers, all threads at once (so an all-core clock drop
// counts). Each thread's rate is taken over its own CPU time (CLOCK_THREAD_CPUTIME_ID), not wall time: while other
// processes share the cores a thread is descheduled part of the time, and wall time would understate the peak.
// The peak is the sum of the threads' rates, i.e. per-core rate times threads. 12 accumulators cover FMA latency
// (4-5 cycles) times 2 FMA pipes; acc = acc * m + a converges and stays far from denormals and overflow.
inline double process_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

inline double thread_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) inline float fma_chain_avx2(int64_t iterations) {
  const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-3f);
  __m256 acc[12];
  for (auto& r : acc) r = _mm256_set1_ps(1.f);
  for (int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 12  // at -O2 too: a rolled loop keeps acc on the stack and halves the rate
    for (auto& r : acc) r = _mm256_fmadd_ps(r, m, a);
  }
  __m256 sum = acc[0];
  for (int j = 1; j < 12; ++j) sum = _mm256_add_ps(sum, acc[j]);
  return _mm256_cvtss_f32(sum);
}

__attribute__((target("avx512f"))) inline float fma_chain_avx512(int64_t iterations) {
  const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-3f);
  __m512 acc[12];
  for (auto& r : acc) r = _mm512_set1_ps(1.f);
  for (int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
    for (auto& r : acc) r = _mm512_fmadd_ps(r, m, a);
  }
  __m512 sum = acc[0];
  for (int j = 1; j < 12; ++j) sum = _mm512_add_ps(sum, acc[j]);
  alignas(64) float lanes[16];  // not _mm512_reduce_add_ps: GCC 12 warns inside it (-Wuninitialized)
  _mm512_store_ps(lanes, sum);
  return lanes[0];
}
#endif

struct Peak {
  double flops_per_second = 0;  // 0 when no FMA instruction set is available to measure it
  std::string method;
};

// Best of several runs of about 20-50 ms each.
template <class Chain>
double measure_chain_rate(Chain chain, int lanes) {
  const int64_t iterations = 1 << 23;
  const double flops_per_thread = double(iterations) * 12 * lanes * 2;
  double best = 0;
  for (int repeat = 0; repeat < 5; ++repeat) {
    double rate = 0;
#pragma omp parallel reduction(+ : rate)
    {
      const double start = thread_cpu_seconds();
      volatile float sink = chain(iterations);  // keeps the chain alive
      (void)sink;
      rate += flops_per_thread / (thread_cpu_seconds() - start);
    }
    best = std::max(best, rate);
  }
  return best;
}

// AVX-512 doubles the peak on cores with two 512-bit FMA units and about matches AVX2 on cores that split 512-bit
// ops (AMD Zen 4), so the peak is the larger of the two measurements.
inline Peak measure_fp32_peak() {
  Peak peak;
#if defined(__x86_64__)
  const std::string threads = std::to_string(omp_get_max_threads());
  const char* used = nullptr;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    peak.flops_per_second = measure_chain_rate(fma_chain_avx2, 8);
    used = "AVX2";
  }
  if (__builtin_cpu_supports("avx512f")) {
    const double avx512 = measure_chain_rate(fma_chain_avx512, 16);
    if (avx512 > peak.flops_per_second) peak.flops_per_second = avx512, used = "AVX-512";
  }
  if (used)
    peak.method =
        std::string("measured: ") + used + " FMA register loop, per-thread CPU time, x " + threads + " threads";
#endif
  if (peak.flops_per_second == 0) peak.method = "unknown: no AVX2/FMA on this CPU";
  return peak;
}

// ---- result checks ---------------------------------------------------------------------------------------------
// got must match want within rel_tol of want's largest magnitude: float sums in a different order differ by about
// 1e-6..1e-5 of that scale, while a real bug (a missing tap, a wrong index, an unwritten NaN-poisoned element) is
// off by more than 1e-3 of it.
inline void require_close(const float* got, const float* want, size_t n, const std::string& what,
                          double rel_tol = 2e-4) {
  double scale = 0;
  for (size_t i = 0; i < n; ++i) scale = std::max(scale, std::fabs(double(want[i])));
  const double tol = rel_tol * scale + 1e-6;
  size_t bad = 0, first = 0;
  double worst = 0;
  for (size_t i = 0; i < n; ++i) {
    const double err = std::fabs(double(got[i]) - double(want[i]));
    if (!(err <= tol)) {  // also catches NaN
      if (bad++ == 0) first = i;
    }
    if (err > worst || std::isnan(err)) worst = err;
  }
  if (bad == 0) return;
  std::fprintf(stderr,
               "\nVALIDATION FAILED: %s\n  %zu of %zu elements differ by more than %.3g (%.1e of max |expected| "
               "%.4g); first at index %zu: got %.7g, expected %.7g; max abs error %.4g\n",
               what.c_str(), bad, n, tol, rel_tol, scale, first, got[first], want[first], worst);
  std::exit(1);
}

// Copy rate of 2 x 256 MiB buffers, every OpenMP thread copying its own part, best of 5: the memory side of the
// roofline (bytes read + bytes written per second).
inline double measure_copy_bandwidth() {
  const size_t n = size_t(64) << 20;  // floats per buffer
  std::vector<float> from(n, 1.f), to(n, 0.f);
  double best = 0;
  for (int repeat = 0; repeat < 5; ++repeat) {
    const double start = now_seconds();
#pragma omp parallel
    {
      const size_t parts = size_t(omp_get_num_threads()), part = size_t(omp_get_thread_num());
      const size_t begin = n * part / parts, end = n * (part + 1) / parts;
      std::memcpy(to.data() + begin, from.data() + begin, (end - begin) * sizeof(float));
    }
    best = std::max(best, 2.0 * n * sizeof(float) / (now_seconds() - start));
  }
  return best;
}

}  // namespace bench
