// gpu_gemm_bench: our SGEMM (kernels::cuda::sgemm, every GpuKernelVersion) against cuBLAS's cublasSgemm on square
// problems (1024-8192) and the three GEMMs of AlexNet's fc6 and fc7 at batch 128 (--fc_batch=N). cuBLAS runs in its
// default math mode, CUBLAS_DEFAULT_MATH, which for cublasSgemm is strict FP32 (TF32 tensor cores only when asked for
// with CUBLAS_TF32_TENSOR_OP_MATH): the same arithmetic as ours. bench/README.md explains the counters.
//
// Ratios in one run: the first row of each problem measures cuBLAS (mean over --baseline_min_time seconds) and
// caches it; every row of that problem divides by it. The cublas row is timed again as a row of its own, so its
// vs_cublas near 1.0 shows how steady the GPU was.
//
// Validation (a mismatch ends the program, or with --keep_going marks the row): cuBLAS's output is spot-checked
// against double-precision dot products; before timing, every row's output (NaN-poisoned first) is compared with
// cuBLAS's; after timing, the last timed output is compared with cuBLAS's again and with the row's first output
// (the label says whether it was bit-identical: ours is deterministic by design).
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/gpu_bench_support.h"
#include "kernels/gpu.h"

namespace {

using namespace gpubench;
using kernels::GemmShape;
using kernels::GpuKernelVersion;

constexpr double kTolerance = 2e-4;  // of max |C|, see gpu_bench_support.h

struct Problem {
  std::string name;  // sgemm/<name>/<impl>
  GemmShape shape;
  std::string meaning;
};

int g_fc_batch = 128;

std::vector<Problem> problems() {
  std::vector<Problem> list;
  for (int n : {1024, 2048, 4096, 8192})
    list.push_back({"square_" + std::to_string(n), kernels::gemm_shape(n, n, n), "C = A B"});
  // A linear layer's passes as kernels::cuda::linear_* run them (kernels/cuda/gemm.cu), batch N = g_fc_batch.
  struct Fc {
    const char* name;
    int in, out;
  };
  const int N = g_fc_batch;
  const std::string batch = "/N:" + std::to_string(N);
  for (const Fc& fc : {Fc{"alexnet_fc6", 9216, 4096}, Fc{"alexnet_fc7", 4096, 4096}}) {
    list.push_back({std::string(fc.name) + "/forward" + batch, kernels::gemm_shape(N, fc.out, fc.in, false, true),
                    "y (N, O) = x (N, I) w (O, I)^T"});
    list.push_back({std::string(fc.name) + "/backward_data" + batch, kernels::gemm_shape(N, fc.in, fc.out),
                    "dx (N, I) = dy (N, O) w (O, I)"});
    list.push_back({std::string(fc.name) + "/backward_weight" + batch,
                    kernels::gemm_shape(fc.out, fc.in, N, true, false), "dw (O, I) = dy (N, O)^T x (N, I)"});
  }
  return list;
}

enum class Impl { naive, tiled, register_blocked, best, cublas };
const Impl kImpls[] = {Impl::naive, Impl::tiled, Impl::register_blocked, Impl::best, Impl::cublas};
const char* impl_name(Impl impl) {
  return impl == Impl::cublas ? "cublas" : our_row_name(version_of(impl));
}
cublasHandle_t cublas() {
  static cublasHandle_t handle = [] {
    cublasHandle_t h = nullptr;
    check(cublasCreate(&h), "cublasCreate");
    check(cublasSetStream(h, stream()), "cublasSetStream");
    check(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    return h;
  }();
  return handle;
}

size_t a_count(const GemmShape& s) {
  return size_t(s.trans_a ? s.K : s.M) * s.lda;
}
size_t b_count(const GemmShape& s) {
  return size_t(s.trans_b ? s.N : s.K) * s.ldb;
}
size_t c_count(const GemmShape& s) {
  return size_t(s.M) * s.ldc;
}
double flops(const GemmShape& s) {
  return 2.0 * s.M * s.N * s.K;
}
double min_bytes(const GemmShape& s) {
  return 4.0 * (double(s.M) * s.K + double(s.K) * s.N + double(s.M) * s.N);
}

// Row-major C (M, N) is column-major C^T (N, M) = op(B)^T op(A)^T: cuBLAS gets the operands swapped, and each
// stored matrix's column-major view is already the transpose we need unless the row-major problem transposes it.
void run_cublas(const GemmShape& s, const float* a, const float* b, float* c) {
  check(cublasSgemm(cublas(), s.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, s.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, s.N, s.M,
                    s.K, &s.alpha, b, int(s.ldb), a, int(s.lda), &s.beta, c, int(s.ldc)),
        "cublasSgemm");
}

// ---- one problem's operands and cuBLAS's result, kept while its rows run ------------------------------------------
struct ProblemData {
  std::string name;
  GemmShape s;
  Buffer a, b, c_cublas;
  double cublas_seconds = 0;
};

ProblemData& problem_data(const Problem& p) {
  static std::unique_ptr<ProblemData> current;
  if (current && current->name == p.name) return *current;
  current.reset();  // free the previous problem's buffers first
  auto d = std::make_unique<ProblemData>();
  d->name = p.name, d->s = p.shape;
  d->a = Buffer(a_count(p.shape));
  d->b = Buffer(b_count(p.shape));
  d->c_cublas = Buffer(c_count(p.shape));
  fill_uniform(d->a.get(), d->a.size(), 1);
  fill_uniform(d->b.get(), d->b.size(), 2);
  fill_value(d->c_cublas.get(), d->c_cublas.size(), std::numeric_limits<float>::quiet_NaN());
  run_cublas(p.shape, d->a.get(), d->b.get(), d->c_cublas.get());
  const std::string problem = "sgemm/" + p.name + " cublas";
  const std::string bad = check_gemm_samples(p.shape, d->a.get(), d->b.get(), d->c_cublas.get(), 1e-4, problem);
  if (!bad.empty()) fail("the baseline itself is wrong (or called wrongly): " + bad);
  Buffer scratch(d->c_cublas.size());
  ProblemData& data = *d;
  d->cublas_seconds = mean_seconds_per_call([&] { run_cublas(data.s, data.a.get(), data.b.get(), scratch.get()); },
                                            flags().baseline_min_time);
  current = std::move(d);
  return *current;
}

std::string describe(const GemmShape& s) {
  std::ostringstream text;
  text << "(M,N,K)=(" << s.M << "," << s.N << "," << s.K << ") " << (s.trans_a ? "T" : "N") << (s.trans_b ? "T" : "N");
  return text.str();
}

void run_row(benchmark::State& state, const Problem& problem, Impl impl) {
  ProblemData& d = problem_data(problem);
  const GemmShape& s = d.s;
  Buffer c(c_count(s));
  fill_value(c.get(), c.size(), std::numeric_limits<float>::quiet_NaN());  // an unwritten element fails the check
  const std::function<void()> call = [&] {
    if (impl == Impl::cublas) return run_cublas(s, d.a.get(), d.b.get(), c.get());
    kernels::cuda::sgemm(s, d.a.get(), d.b.get(), c.get(), stream(), version_of(impl));
  };
  const std::string what = "sgemm/" + problem.name + "/" + impl_name(impl);
  call();
  if (!require(state, mismatch_device(c.get(), d.c_cublas.get(), c.size(), kTolerance, what + " vs cuBLAS"))) return;
  Buffer first = clone(c);

  double total = 0;
  for (auto _ : state) {
    const double seconds = time_call(call);
    state.SetIterationTime(seconds);
    total += seconds;
  }
  if (!require(state,
               mismatch_device(c.get(), d.c_cublas.get(), c.size(), kTolerance, what + " after timing vs cuBLAS")))
    return;
  const bool repeatable = compare_device(c.get(), first.get(), c.size()).exact();

  const double mean = total / double(state.iterations());
  state.counters["GFLOP/s"] = flops(s) / mean * 1e-9;
  state.counters["vs_cublas"] = d.cublas_seconds / mean;
  state.counters["of_peak"] = flops(s) / mean / device().fp32_peak_flops;
  state.counters["MFLOP"] = flops(s) * 1e-6;
  state.counters["MB"] = min_bytes(s) * 1e-6;
  state.counters["flop/B"] = flops(s) / min_bytes(s);
  state.counters["GB/s"] = min_bytes(s) / mean * 1e-9;
  std::string label = describe(s) + ", " + problem.meaning + "; ";
  label += impl == Impl::cublas ? "cublasSgemm, CUBLAS_DEFAULT_MATH (strict FP32)" : "checked vs cuBLAS";
  label += repeatable ? "; bit-repeatable" : "; NOT bit-repeatable";
  state.SetLabel(label);
}

void register_rows() {
  for (const Problem& problem : problems()) {
    for (Impl impl : kImpls) {
      const std::string name = "sgemm/" + problem.name + "/" + impl_name(impl);
      benchmark::RegisterBenchmark(name.c_str(), [problem, impl](benchmark::State& st) { run_row(st, problem, impl); })
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
}

// Our own flag; a bad value ends the program.
bool parse_own_flag(const char* arg) {
  const char* v = flag_value(arg, "--fc_batch");
  if (!v) return false;
  g_fc_batch = std::atoi(v);
  if (g_fc_batch < 1) fail("--fc_batch must be at least 1");
  return true;
}

void add_context() {
  benchmark::AddCustomContext("cublas_math", "CUBLAS_DEFAULT_MATH: strict FP32 for cublasSgemm (no TF32)");
  benchmark::AddCustomContext("baselines", "cuBLAS cached before the first row of each problem, mean over >= " +
                                               std::to_string(flags().baseline_min_time) + " s of GPU time");
}

}  // namespace

int main(int argc, char** argv) {
  return run_benchmark_main(argc, argv, parse_own_flag, add_context, register_rows);
}
