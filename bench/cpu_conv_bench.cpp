// cpu_conv_bench: our fast CPU convolution and linear kernels (kernels::cpu) against two baselines on AlexNet and
// VGG-16 layer shapes, GoogLeNet's inception 3a and the demo net's layers, for forward, backward-data and
// backward-filter (backward-weight):
//   eigen_sgemm  only the GEMMs of an im2col path, on operands already laid out: the ceiling of our approach;
//   onednn       oneDNN's direct convolution / inner product, in the layouts it prefers (reorders not timed).
// Every row reports GFLOP/s, its ratios to both baselines and to the measured FP32 peak, and its napkin math.
// bench/README.md explains the counters; `--conv_batch=N`, `--fc_batch=N` override the batch sizes.
// `--precision=bfloat16` runs the convolutions our bfloat16 kernels take (kernels/cpu/conv_bf16.h) in bfloat16, ours
// and oneDNN's alike (AMX tile units on both sides where the CPU has them, else AVX512-BF16).
//
// How the ratios are measured: Google Benchmark runs rows one after another, so the first row of a (layer, pass),
// ours, measures both baselines before its own timing loop, with a plain repeated-call loop (mean wall time per
// call over at least --baseline_min_time seconds, the statistic Google Benchmark reports) and caches them; every
// row of that (layer, pass) divides by those cached times. The eigen_sgemm and onednn rows are then timed again as
// rows of their own, so their vs_eigen / vs_onednn of about 1.0 shows how noisy the machine was.
//
// Validation (a benchmark of a wrong kernel is worthless, so a mismatch ends the program): before timing, ours and
// oneDNN run on batch 1 against kernels::ref; our full-batch output is compared with oneDNN's; image 0 of it with
// the batch-1 reference. After timing, the last timed output is compared with the first and the same checks rerun.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_support.h"
#include "bench/cpu_conv_problems.h"
#include "bench/cpu_dnnl_baseline.h"
#include "bench/cpu_gemm_ceiling.h"

namespace {

using namespace bench;

// Batches keep a full run within a few minutes on 2 cores: about 1-4 GFLOP per call.
const std::vector<Layer>& benchmarked_layers() {
  static const std::vector<Layer> layers = {
      //          name                 C    H    W    K  R/S str pad grp batch
      conv_layer("alexnet_conv1", 3, 227, 227, 96, 11, 4, 0, 1, 4),
      conv_layer("alexnet_conv1_c1", 1, 227, 227, 96, 11, 4, 0, 1, 4),  // one-channel mammogram input
      conv_layer("alexnet_conv2", 96, 27, 27, 256, 5, 1, 2, 2, 4),
      conv_layer("alexnet_conv3", 256, 13, 13, 384, 3, 1, 1, 1, 4),
      conv_layer("alexnet_conv4", 384, 13, 13, 384, 3, 1, 1, 2, 4),
      conv_layer("alexnet_conv5", 384, 13, 13, 256, 3, 1, 1, 2, 4),
      conv_layer("vgg16_conv1_2", 64, 224, 224, 64, 3, 1, 1, 1, 1),  // 3.7 GFLOP per image
      conv_layer("vgg16_conv3_2", 256, 56, 56, 256, 3, 1, 1, 1, 1),  // 3.7 GFLOP per image
      conv_layer("vgg16_conv5_2", 512, 14, 14, 512, 3, 1, 1, 1, 4),
      // GoogLeNet inception 3a's convolutions (28x28, 192 channels in).
      conv_layer("googlenet_3a_1x1", 192, 28, 28, 64, 1, 1, 0, 1, 8),
      conv_layer("googlenet_3a_3x3_reduce", 192, 28, 28, 96, 1, 1, 0, 1, 8),
      conv_layer("googlenet_3a_3x3", 96, 28, 28, 128, 3, 1, 1, 1, 8),
      conv_layer("googlenet_3a_5x5_reduce", 192, 28, 28, 16, 1, 1, 0, 1, 8),
      conv_layer("googlenet_3a_5x5", 16, 28, 28, 32, 5, 1, 2, 1, 8),
      conv_layer("googlenet_3a_pool_proj", 192, 28, 28, 32, 1, 1, 0, 1, 8),
      // The demo's net at its training batch; not in the suite's totals (the suite predates them).
      demo_layer("mapnet_bn_fine_conv0", 1, 93, 93, 16, 3, 1, 64),
      demo_layer("mapnet_bn_fine_conv1", 16, 91, 91, 32, 3, 2, 64),
      demo_layer("mapnet_bn_fine_conv2", 32, 45, 45, 32, 3, 1, 64),
      demo_layer("mapnet_bn_fine_conv3", 32, 21, 21, 64, 3, 1, 64),
      demo_layer("mapnet_bn_fine_conv4", 64, 19, 19, 64, 3, 1, 64),
      linear_layer("alexnet_fc6", 9216, 4096, 64),
      linear_layer("alexnet_fc7", 4096, 4096, 64),
  };
  return layers;
}

enum class Impl { ours, eigen_sgemm, onednn };
const char* impl_name(Impl impl) {
  return impl == Impl::ours ? "ours" : impl == Impl::eigen_sgemm ? "eigen_sgemm" : "onednn";
}

constexpr bool kHaveDnnl =
#ifdef MASSMAP_HAVE_DNNL
    true;
#else
    false;
#endif

struct Settings {
  int conv_batch = 0, fc_batch = 0;  // 0: each layer's default
  double baseline_min_time = 0.3;    // seconds per cached baseline measurement
  Peak peak;
  double copy_bytes_per_second = 0;  // the memory side of the roofline
};
Settings& settings() {
  static Settings s;
  return s;
}

std::string problem_key(const Layer& layer, Pass pass, int N) {
  return std::string(layer.is_conv ? "conv/" : "fc/") + layer.name + "/" + pass_name(layer, pass) +
         "/N:" + std::to_string(N);
}

// ---- the ground truth, once per (layer, pass) ------------------------------------------------------------------
const std::vector<float>& reference_batch1(const Layer& layer, Pass pass) {
  static std::map<std::string, std::vector<float>> cache;
  auto& out = cache[problem_key(layer, pass, 1)];
  if (out.empty()) {
    const Problem p = make_problem(layer, pass, 1);
    out.assign(p.out_elems, std::numeric_limits<float>::quiet_NaN());
    run_pass(kReferenceKernels, p, out.data());
  }
  return out;
}

void check_batch1_against_reference(const Layer& layer, Pass pass, Impl impl) {
  const Problem p = make_problem(layer, pass, 1);
  std::vector<float> out(p.out_elems, std::numeric_limits<float>::quiet_NaN());
  if (impl == Impl::ours) run_pass(kOurKernels, p, out.data());
#ifdef MASSMAP_HAVE_DNNL
  if (impl == Impl::onednn) {
    auto prim = make_dnnl(p);
    prim->run();
    out = prim->output();
  }
#endif
  const auto& ref = reference_batch1(layer, pass);
  require_close(out.data(), ref.data(), ref.size(),
                problem_key(layer, pass, 1) + " " + impl_name(impl) + " vs kernels::ref");
}

// ---- baselines, measured once per (layer, pass, N) before the first row that needs them -----------------------
double baseline_seconds(const Layer& layer, Pass pass, int N, Impl impl) {
  static std::map<std::string, double> cache;
  const std::string key = problem_key(layer, pass, N) + "/" + impl_name(impl);
  auto found = cache.find(key);
  if (found != cache.end()) return found->second;
  double seconds = 0;
  const Problem p = make_problem(layer, pass, N);
  if (impl == Impl::eigen_sgemm) {
    EigenGemmCeiling gemms(im2col_gemms(p));
    seconds = mean_seconds_per_call([&] { gemms.run(); }, settings().baseline_min_time);
  }
#ifdef MASSMAP_HAVE_DNNL
  if (impl == Impl::onednn) {
    auto prim = make_dnnl(p);
    seconds = mean_seconds_per_call([&] { prim->run(); }, settings().baseline_min_time);
  }
#endif
  cache[key] = seconds;
  return seconds;
}

// ---- one row -----------------------------------------------------------------------------------------------------
// Google Benchmark calls a row's function again with more iterations until --benchmark_min_time is reached, so the
// setup and the first validation live here, made once per row (only the current row is kept).
struct Row {
  std::string key;
  Problem problem;
  std::function<void()> call;                    // the timed call
  std::function<std::vector<float>()> output;    // the current full-batch result (empty for eigen_sgemm)
  std::vector<float> out;                        // ours writes here
  std::vector<float> first_output, dnnl_output;  // the first call's result; oneDNN's, to cross-check ours
  std::unique_ptr<EigenGemmCeiling> gemms;
#ifdef MASSMAP_HAVE_DNNL
  std::unique_ptr<DnnlPrimitive> dnnl;
#endif
  std::string label;
};

void check_full_batch(const Row& row, Impl impl, const std::vector<float>& result, const char* when) {
  const Problem& p = row.problem;
  const std::string what = row.key + " " + when;
  if (!row.first_output.empty())
    require_close(result.data(), row.first_output.data(), result.size(), what + " vs its first call");
  if (p.output_per_image()) {
    const auto& ref = reference_batch1(p.layer, p.pass);
    require_close(result.data(), ref.data(), ref.size(), what + ", image 0 vs kernels::ref");
  }
  if (impl == Impl::ours && !row.dnnl_output.empty())
    require_close(result.data(), row.dnnl_output.data(), result.size(), what + " vs oneDNN");
}

Row& prepare_row(const Layer& layer, Pass pass, int N, Impl impl) {
  static std::unique_ptr<Row> current;
  const std::string key = problem_key(layer, pass, N) + "/" + impl_name(impl);
  if (current && current->key == key) return *current;
  current.reset();  // free the previous row's buffers first
  auto row = std::make_unique<Row>();
  Row& r = *row;
  r.key = key;
  r.problem = make_problem(layer, pass, N);
  const Problem& p = r.problem;
  if (impl == Impl::ours) {
    r.out.assign(p.out_elems, std::numeric_limits<float>::quiet_NaN());  // an unwritten element fails the check
    r.call = [&r] { run_pass(kOurKernels, r.problem, r.out.data()); };
    r.output = [&r] { return r.out; };
    r.label = kHaveDnnl ? "checked vs kernels::ref and oneDNN" : "checked vs kernels::ref";
#ifdef MASSMAP_HAVE_DNNL
    r.dnnl = make_dnnl(p);  // also timed call by call beside ours
    r.dnnl->run();
    r.dnnl_output = r.dnnl->output();
#endif
  } else if (impl == Impl::eigen_sgemm) {
    const GemmBatch g = im2col_gemms(p);
    r.gemms = std::make_unique<EigenGemmCeiling>(g);
    r.call = [&r] { r.gemms->run(); };
    std::ostringstream label;
    label << "GEMMs only: " << g.images * g.groups << " x (m,n,k)=(" << g.m << "," << g.n << "," << g.k << ")";
    r.label = label.str();
  } else {
#ifdef MASSMAP_HAVE_DNNL
    r.dnnl = make_dnnl(p);
    r.call = [&r] { r.dnnl->run(); };
    r.output = [&r] { return r.dnnl->output(); };
    r.label = r.dnnl->description();
#endif
  }
  if (r.output) {
    check_batch1_against_reference(layer, pass, impl);
    r.call();
    const auto result = r.output();
    check_full_batch(r, impl, result, "before timing");
    r.first_output = result;
  }
  current = std::move(row);
  return *current;
}

// Each row's mean seconds per call, ours and the oneDNN calls interleaved with ours, from the row's last run (Google
// Benchmark calls a row function again with more iterations until it has run long enough, and reports the last).
struct Totals {
  double ours = 0, onednn = 0;
};
// The suite's convolutions, its linear layers and the demo's layers.
constexpr int kTotalKinds = 3;
const char* const kTotalNames[kTotalKinds] = {"conv", "fc", "demo"};
int total_kind(const Layer& layer) {
  return !layer.in_suite ? 2 : layer.is_conv ? 0 : 1;
}
struct RowTime {
  std::string pass;
  int kind;
  Totals seconds;
};
std::map<std::string, RowTime>& row_times() {  // by problem key
  static std::map<std::string, RowTime> t;
  return t;
}

// Sums of the rows' mean seconds per call, per pass and kind.
void print_totals() {
  if (row_times().empty()) return;
  std::map<std::string, std::array<Totals, kTotalKinds>> by_pass;
  for (const auto& [key, row] : row_times()) {
    Totals& t = by_pass[row.pass][size_t(row.kind)];
    t.ours += row.seconds.ours;
    t.onednn += row.seconds.onednn;
  }
  std::printf("\nsuite totals (sum of mean ms per call; vs_onednn = oneDNN's sum / ours, interleaved calls):\n");
  Totals all[kTotalKinds];
  for (auto& [pass, t] : by_pass) {
    for (int i = 0; i < kTotalKinds; ++i) {
      if (t[i].ours == 0) continue;
      std::printf("  %-5s %-16s ours %9.1f  onednn %9.1f  vs_onednn %.3f\n", kTotalNames[i], pass.c_str(),
                  t[i].ours * 1e3, t[i].onednn * 1e3, t[i].onednn / t[i].ours);
      all[i].ours += t[i].ours;
      all[i].onednn += t[i].onednn;
    }
  }
  for (int i = 0; i < kTotalKinds; ++i)
    if (all[i].ours > 0)
      std::printf("  %-5s %-16s ours %9.1f  onednn %9.1f  vs_onednn %.3f\n", kTotalNames[i], "all passes",
                  all[i].ours * 1e3, all[i].onednn * 1e3, all[i].onednn / all[i].ours);
}

void run_row(benchmark::State& state, const Layer& layer, Pass pass, Impl impl) {
  const int N = int(state.range(0));
  Row& row = prepare_row(layer, pass, N, impl);
  const double eigen_seconds = baseline_seconds(layer, pass, N, Impl::eigen_sgemm);
  const double dnnl_seconds = kHaveDnnl ? baseline_seconds(layer, pass, N, Impl::onednn) : 0;

  // ours: one oneDNN call after each timed call (outside the row's time), so both see the same load.
  const bool interleave = impl == Impl::ours && kHaveDnnl;
  double total = 0, dnnl_total = 0, cpu_seconds = 0;
  for (auto _ : state) {
    const double cpu_start = process_cpu_seconds(), start = now_seconds();
    row.call();
    const double seconds = now_seconds() - start;
    cpu_seconds += process_cpu_seconds() - cpu_start;
    state.SetIterationTime(seconds);
    total += seconds;
#ifdef MASSMAP_HAVE_DNNL
    if (interleave) {
      const double dnnl_start = now_seconds();
      row.dnnl->run();
      dnnl_total += now_seconds() - dnnl_start;
    }
#endif
  }
  // How much of the cores this process had while timed: near 1 on a quiet machine, lower while others run.
  const double cpu_util = cpu_seconds / (total * omp_get_max_threads());
  if (row.output) check_full_batch(row, impl, row.output(), "after timing");

  const double mean = total / double(state.iterations()), flops = row.problem.flops();
  const double bytes = row.problem.min_bytes();
  state.counters["GFLOP/s"] = flops / mean * 1e-9;
  state.counters["GB/s"] = bytes / mean * 1e-9;
  state.counters["MFLOP"] = flops * 1e-6;
  state.counters["MB"] = bytes * 1e-6;
  state.counters["flop/B"] = flops / bytes;
  if (settings().peak.flops_per_second > 0) state.counters["of_peak"] = flops / mean / settings().peak.flops_per_second;
  state.counters["vs_eigen"] = eigen_seconds / mean;
  state.counters["cpu_util"] = cpu_util;
  if (kHaveDnnl) state.counters["vs_onednn"] = dnnl_seconds / mean;
  if (interleave) {
    state.counters["vs_onednn"] = dnnl_total / total;  // the interleaved calls replace the cached baseline
    state.counters["vs_onednn_cached"] = dnnl_seconds / mean;
    row_times()[problem_key(layer, pass, N)] = {
        pass_name(layer, pass), total_kind(layer), {mean, dnnl_total / double(state.iterations())}};
  }
  // Roofline: the least traffic at the measured copy rate, against the measured peak.
  const double peak = settings().peak.flops_per_second;
  const double roof = std::min(peak, flops / bytes * settings().copy_bytes_per_second);
  state.counters["of_roofline"] = flops / mean / roof;
  const bool memory_bound = roof < peak;

  std::string label = std::string(memory_bound ? "memory-bound; " : "compute-bound; ") + row.label;
#ifdef MASSMAP_HAVE_DNNL
  if (impl == Impl::onednn) {
    if (row.dnnl->has_reorders()) {
      const double with = mean_seconds_per_call([&] { row.dnnl->run_with_reorders(); }, 0.1);
      std::ostringstream text;
      text.precision(3);
      text << "; reorders (*) excluded, with them " << flops / with * 1e-9 << " GFLOP/s";
      label += text.str();
    } else {
      label += "; no reorders needed";
    }
  }
#endif
  state.SetLabel(label);
}

void register_rows() {
  const Settings& s = settings();
  for (const Layer& layer : benchmarked_layers()) {
    const int override_batch = layer.is_conv ? s.conv_batch : s.fc_batch;
    const int N = override_batch > 0 ? override_batch : layer.default_batch;
    for (Pass pass : {Pass::forward, Pass::backward_data, Pass::backward_filter}) {
      for (Impl impl : {Impl::ours, Impl::eigen_sgemm, Impl::onednn}) {
        if (impl == Impl::onednn && !kHaveDnnl) continue;
        const std::string name = std::string(layer.is_conv ? "conv/" : "fc/") + layer.name + "/" +
                                 pass_name(layer, pass) + "/" + impl_name(impl);
        benchmark::RegisterBenchmark(name.c_str(),
                                     [layer, pass, impl](benchmark::State& st) { run_row(st, layer, pass, impl); })
            ->Arg(N)
            ->ArgName("N")
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
}

// Our own flags.
bool parse_own_flag(const char* arg) {
  if (const char* v = flag_value(arg, "--conv_batch"))
    settings().conv_batch = std::atoi(v);
  else if (const char* v = flag_value(arg, "--fc_batch"))
    settings().fc_batch = std::atoi(v);
  else if (const char* v = flag_value(arg, "--baseline_min_time"))
    settings().baseline_min_time = std::atof(v);
  else if (const char* v = flag_value(arg, "--precision")) {
    try {
      kernels::cpu::set_conv_precision(kernels::cpu::parse_conv_precision(v));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "cpu_conv_bench: %s\n", e.what());
      std::exit(2);
    }
  } else
    return false;
  return true;
}

void add_context() {
  const Settings& s = settings();
  std::ostringstream peak;
  peak.precision(4);
  peak << s.peak.flops_per_second * 1e-9 << " (" << s.peak.method << ")";
  benchmark::AddCustomContext("fp32_peak_GFLOP/s", peak.str());
  std::ostringstream copy;
  copy.precision(4);
  copy << s.copy_bytes_per_second * 1e-9 << " (memcpy of 256 MiB, read + write counted, all threads, best of 5)";
  benchmark::AddCustomContext("copy_GB/s", copy.str());
  benchmark::AddCustomContext("omp_threads", std::to_string(omp_get_max_threads()));
  benchmark::AddCustomContext(
      "conv_precision",
      std::string(kernels::cpu::conv_precision_name(kernels::cpu::active_conv_precision())) +
          (kernels::cpu::active_conv_precision() == kernels::cpu::ConvPrecision::bfloat16
               ? std::string(" on the ") + kernels::cpu::bf16_engine_name(kernels::cpu::active_bf16_engine()) +
                     " engine where kernels::cpu::conv_bf16_applies (inputs rounded to bfloat16 when made; oneDNN in "
                     "bf16 there too; of_peak still against the float32 peak)"
               : std::string()));
  benchmark::AddCustomContext("eigen_simd", Eigen::SimdInstructionSetsInUse());
  std::ostringstream baselines;
  baselines << "oneDNN: one call after each timed call of the ours row (vs_onednn); also cached before the first row "
               "of each layer pass, mean over >= "
            << s.baseline_min_time << " s (vs_onednn_cached, vs_eigen)";
  benchmark::AddCustomContext("baselines", baselines.str());
#ifdef MASSMAP_HAVE_DNNL
  const dnnl_version_t* v = dnnl_version();
  std::ostringstream dnnl;
  dnnl << v->major << "." << v->minor << "." << v->patch << " (" << v->hash << "), ISA "
       << dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa())
       << "; layouts chosen by oneDNN, reorders from/to ours excluded from timing";
  benchmark::AddCustomContext("onednn", dnnl.str());
#else
  benchmark::AddCustomContext("onednn", "not built (libdnnl-dev missing): no vs_onednn column");
#endif
}

}  // namespace

int main(int argc, char** argv) {
  take_own_flags(&argc, argv, parse_own_flag);
  settings().peak = measure_fp32_peak();
  settings().copy_bytes_per_second = measure_copy_bandwidth();
  add_context();
  register_rows();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  print_totals();
  benchmark::Shutdown();
  return 0;
}
