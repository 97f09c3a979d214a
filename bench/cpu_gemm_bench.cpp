// cpu_gemm_bench: our CPU SGEMM (kernels::cpu::gemm, one row per instruction set) against OpenBLAS on square
// problems (1024^3 .. 4096^3) and the nets' fully connected layers (each pass as kernels::cpu::linear_* calls it).
// Every row reports GFLOP/s, the fraction of the FP32 peak measured at start-up in the same run, the ratio to
// OpenBLAS, and a roofline verdict from the measured copy bandwidth.
//
// How the ratio is measured: on a shared machine the load changes from second to second, so a row's timed calls
// alternate with OpenBLAS calls on the same operands, in blocks of about 0.2 s each (as many OpenBLAS calls as the
// block had of the row's), timed too but outside the row's time; vs_openblas is the mean of those OpenBLAS calls /
// the row's mean. Both see the same load; the openblas row's own vs_openblas (OpenBLAS against itself) near 1.0
// shows how well that works. Blocks, not single calls, and a pause of 0.15 s before every block: each library's
// idle workers keep spinning after its last call (OpenBLAS's for 2^28 cycles, about 0.1 s here; libgomp's for a
// few ms), and one call after the other would time each library on cores the other's spinning threads hold.
// Within a block each library runs back to back, as in a user's loop, its own pool warm.
//
// Validation (a mismatch ends the program): per problem, OpenBLAS and our best ISA are spot-checked at 64 entries
// against sums in double; every row's output is compared with OpenBLAS's before and after timing, and the last
// timed output with the first bit for bit (the label says bit-repeatable).
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_support.h"
#include "kernels/cpu/gemm.h"

namespace {

using namespace bench;
using kernels::GemmShape;
using kernels::cpu::CpuIsa;

struct Problem {
  std::string name;  // square_<n> or <layer>/<pass>/N:<batch>
  GemmShape s;
  bool all_isas;  // rows for every ISA (else the best only: the portable kernel takes seconds on the big ones)
};

struct Settings {
  int fc_batch = 64;
  Peak peak;
  double copy_bytes_per_second = 0;
};
Settings& settings() {
  static Settings s;
  return s;
}

// The GEMMs of kernels::cpu::linear_* for x (N, I), w (O, I), y (N, O).
std::vector<Problem> fc_problems(const std::string& layer, int I, int O, int N, bool all_isas) {
  const std::string batch = "/N:" + std::to_string(N);
  return {{layer + "/forward" + batch, {N, O, I, false, true, I, I, O, 1.f, 0.f}, all_isas},
          {layer + "/backward_data" + batch, {N, I, O, false, false, O, I, I, 1.f, 0.f}, all_isas},
          {layer + "/backward_weight" + batch, {O, I, N, true, false, O, I, I, 1.f, 0.f}, all_isas}};
}

std::vector<Problem> problems() {
  std::vector<Problem> list;
  for (const int n : {1024, 2048, 3072, 4096})
    list.push_back({"square_" + std::to_string(n), kernels::gemm_shape(n, n, n), n == 1024});
  const int N = settings().fc_batch;
  for (auto group : {fc_problems("alexnet_fc6", 9216, 4096, N, false), fc_problems("alexnet_fc7", 4096, 4096, N, true),
                     fc_problems("vgg16_fc6", 25088, 4096, N, false)})
    list.insert(list.end(), group.begin(), group.end());
  return list;
}

double flops(const GemmShape& s) {
  return 2.0 * s.M * s.N * s.K;
}
// The least traffic: A, B read once, C written once, float32.
double min_bytes(const GemmShape& s) {
  return 4.0 * (double(s.M) * s.K + double(s.K) * s.N + double(s.M) * s.N);
}

void run_openblas(const GemmShape& s, const float* a, const float* b, float* c) {
  cblas_sgemm(CblasRowMajor, s.trans_a ? CblasTrans : CblasNoTrans, s.trans_b ? CblasTrans : CblasNoTrans, s.M, s.N,
              s.K, s.alpha, a, int(s.lda), b, int(s.ldb), s.beta, c, int(s.ldc));
}

// ---- one problem's operands and OpenBLAS's result, kept while its rows run -----------------------------------
struct Operands {
  std::string name;
  std::vector<float> a, b;  // op(A) (M, K) and op(B) (K, N) as stored
  std::vector<float> want;  // (M, N): OpenBLAS's C
};

// 64 entries of C against sums in double.
void spot_check(const GemmShape& s, const Operands& op, const float* c, const std::string& what) {
  std::vector<float> got, want;
  for (int i = 0; i < 64; ++i) {
    const int m = int((uint64_t(i) * 2654435761u) % uint64_t(s.M)), n = int((uint64_t(i) * 40503u + 7) % uint64_t(s.N));
    double sum = 0;
    for (int k = 0; k < s.K; ++k) {
      const double av = s.trans_a ? op.a[size_t(k) * s.lda + m] : op.a[size_t(m) * s.lda + k];
      const double bv = s.trans_b ? op.b[size_t(n) * s.ldb + k] : op.b[size_t(k) * s.ldb + n];
      sum += av * bv;
    }
    got.push_back(c[size_t(m) * s.ldc + n]);
    want.push_back(float(sum));
  }
  require_close(got.data(), want.data(), got.size(), what + " vs sums in double (64 entries)");
}

Operands& operands(const Problem& p) {
  static std::unique_ptr<Operands> current;
  if (current && current->name == p.name) return *current;
  current.reset();  // free the previous problem's buffers first
  auto op = std::make_unique<Operands>();
  const GemmShape& s = p.s;
  op->name = p.name;
  op->a = random_vector(size_t(s.trans_a ? s.K : s.M) * s.lda, 1);
  op->b = random_vector(size_t(s.trans_b ? s.N : s.K) * s.ldb, 2);
  op->want.assign(size_t(s.M) * s.ldc, std::numeric_limits<float>::quiet_NaN());
  run_openblas(s, op->a.data(), op->b.data(), op->want.data());
  spot_check(s, *op, op->want.data(), p.name + " openblas");
  std::vector<float> ours(op->want.size(), std::numeric_limits<float>::quiet_NaN());
  kernels::cpu::gemm(s, op->a.data(), op->b.data(), ours.data(), kernels::cpu::best_cpu_isa());
  spot_check(s, *op, ours.data(), p.name + " ours");
  current = std::move(op);
  return *current;
}

// ---- one row -------------------------------------------------------------------------------------------------
constexpr double kBlockSeconds = 0.2;          // one library's calls back to back before the other's
constexpr double kPoolCooldownSeconds = 0.15;  // longer than OpenBLAS's workers spin after a call (2^28 cycles)

void idle_for(double seconds) {
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

void run_row(benchmark::State& state, const Problem& p, bool openblas, CpuIsa isa) {
  const GemmShape& s = p.s;
  Operands& op = operands(p);
  std::vector<float> c(op.want.size(), std::numeric_limits<float>::quiet_NaN());  // (M, N)
  auto call = [&] {
    if (openblas) {
      run_openblas(s, op.a.data(), op.b.data(), c.data());
    } else {
      kernels::cpu::gemm(s, op.a.data(), op.b.data(), c.data(), isa);
    }
  };
  const std::string what = p.name + (openblas ? " openblas" : std::string(" ours_") + kernels::cpu::cpu_isa_name(isa));
  call();
  require_close(c.data(), op.want.data(), c.size(), what + " vs openblas, before timing");
  const std::vector<float> first = c;

  std::vector<float> scratch(c.size());  // (M, N): the interleaved OpenBLAS calls' output
  double total = 0, openblas_total = 0, cpu_seconds = 0, block_seconds = 0;
  int block_calls = 0;
  // The OpenBLAS half of a block: as many calls as the row's half had, each library's pool idle before each half.
  auto openblas_block = [&] {
    idle_for(kPoolCooldownSeconds);
    for (int i = 0; i < block_calls; ++i) {
      const double openblas_start = now_seconds();
      run_openblas(s, op.a.data(), op.b.data(), scratch.data());
      openblas_total += now_seconds() - openblas_start;
    }
    idle_for(kPoolCooldownSeconds);
    block_calls = 0, block_seconds = 0;
  };
  idle_for(kPoolCooldownSeconds);
  for (auto _ : state) {
    const double cpu_start = process_cpu_seconds(), start = now_seconds();
    call();
    const double seconds = now_seconds() - start;
    cpu_seconds += process_cpu_seconds() - cpu_start;
    state.SetIterationTime(seconds);
    total += seconds;
    block_seconds += seconds, ++block_calls;
    if (block_seconds >= kBlockSeconds) openblas_block();
  }
  if (block_calls > 0) openblas_block();
  const double cpu_util = cpu_seconds / (total * omp_get_max_threads());
  require_close(c.data(), op.want.data(), c.size(), what + " vs openblas, after timing");
  const bool repeatable = std::memcmp(c.data(), first.data(), c.size() * sizeof(float)) == 0;

  const double mean = total / double(state.iterations()), rate = flops(s) / mean;
  const double intensity = flops(s) / min_bytes(s), peak = settings().peak.flops_per_second;
  const double roof = std::min(peak, intensity * settings().copy_bytes_per_second);
  state.counters["GFLOP/s"] = rate * 1e-9;
  state.counters["of_peak"] = rate / peak;
  state.counters["vs_openblas"] = openblas_total / total;
  state.counters["flop/B"] = intensity;
  state.counters["of_roofline"] = rate / roof;
  state.counters["cpu_util"] = cpu_util;
  // The rate per CPU second this process got, against the peak: what the kernel makes of the cores it was given.
  state.counters["of_peak_cpu"] = rate / peak / cpu_util;
  std::ostringstream label;
  label << "(m,n,k)=(" << s.M << "," << s.N << "," << s.K << ")" << (s.trans_a ? " A^T" : "")
        << (s.trans_b ? " B^T" : "") << (roof < peak ? ", memory-bound" : ", compute-bound")
        << (repeatable ? ", bit-repeatable" : ", NOT bit-repeatable");
  state.SetLabel(label.str());
}

void register_rows() {
  std::vector<CpuIsa> isas = {kernels::cpu::best_cpu_isa()};
  for (const CpuIsa isa : {CpuIsa::avx512, CpuIsa::avx2, CpuIsa::portable})
    if (isa != isas[0] && kernels::cpu::cpu_isa_supported(isa)) isas.push_back(isa);
  for (const Problem& p : problems()) {
    for (size_t i = 0; i <= isas.size(); ++i) {
      const bool openblas = i == isas.size();
      if (!openblas && i > 0 && !p.all_isas) continue;
      const CpuIsa isa = openblas ? CpuIsa::portable : isas[i];
      const std::string name =
          "gemm/" + p.name + "/" +
          (openblas ? std::string("openblas") : std::string("ours_") + kernels::cpu::cpu_isa_name(isa));
      benchmark::RegisterBenchmark(name.c_str(),
                                   [p, openblas, isa](benchmark::State& st) { run_row(st, p, openblas, isa); })
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
}

bool parse_own_flag(const char* arg) {
  const char* v = flag_value(arg, "--fc_batch");
  if (v) settings().fc_batch = std::atoi(v);
  return v != nullptr;
}

void add_context() {
  const Settings& s = settings();
  std::ostringstream peak, copy, blas;
  peak.precision(4);
  peak << s.peak.flops_per_second * 1e-9 << " (" << s.peak.method << ")";
  copy.precision(4);
  copy << s.copy_bytes_per_second * 1e-9 << " (memcpy of 256 MiB, read + write counted, all threads, best of 5)";
  blas << openblas_get_config() << ", core " << openblas_get_corename() << ", " << openblas_get_num_threads()
       << " threads; blocks of about 0.2 s alternating with every row's, 0.15 s idle before each block (vs_openblas = "
          "the "
          "mean of its calls / the row's)";
  benchmark::AddCustomContext("fp32_peak_GFLOP/s", peak.str());
  benchmark::AddCustomContext("copy_GB/s", copy.str());
  benchmark::AddCustomContext("omp_threads", std::to_string(omp_get_max_threads()));
  benchmark::AddCustomContext("ours", std::string("kernels::cpu::gemm, best ISA here ") +
                                          kernels::cpu::cpu_isa_name(kernels::cpu::best_cpu_isa()) +
                                          "; other ISAs on square_1024 and alexnet_fc7 only");
  benchmark::AddCustomContext("openblas", blas.str());
}

}  // namespace

int main(int argc, char** argv) {
  take_own_flags(&argc, argv, parse_own_flag);
  openblas_set_num_threads(omp_get_max_threads());
  settings().peak = measure_fp32_peak();
  settings().copy_bytes_per_second = measure_copy_bandwidth();
  add_context();
  register_rows();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
