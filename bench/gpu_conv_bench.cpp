// gpu_conv_bench: our CUDA convolution (kernels::cuda::conv_forward / conv_backward_data / conv_backward_filter, every
// GpuKernelVersion) against cuDNN at batch 128 (--batch=N) on the layer suite of issue 3: convnet-benchmarks L1-L5,
// AlexNet conv1-5, the VGG-16 conv layers and GoogLeNet inception_3a's convolutions. cuDNN runs two ways
// (gpu_cudnn_conv.h): cudnn_gemm_fma, its GEMM-family algorithms under CUDNN_FMA_MATH (strict FP32, the baseline of
// the targets), and cudnn_any, its fastest algorithm of any kind under default math (TF32 allowed on sm_80+).
// The conv_suite rows sum forward + backward over the whole suite: the target is ours_best >= 0.8 of cudnn_gemm_fma.
// bench/README.md explains the rows and counters.
//
// Ratios in one run: the first row of each (layer, pass) runs cudnnFind for both cuDNN modes, measures both (mean
// over --baseline_min_time seconds) and caches the times; every row of that (layer, pass) divides by them. The
// cudnn rows are timed again as rows of their own (a ratio near 1.0 shows how steady the GPU was). conv_suite rows
// use the cached times and measure whatever rows the filter left out.
//
// Validation (a mismatch ends the program, or with --keep_going marks the row): cudnn_gemm_fma's output is
// spot-checked against double-precision sums; cudnn_any's is compared with it (loosely: Winograd, FFT and TF32 round
// differently); before timing every row's output (NaN-poisoned first) is compared with cudnn_gemm_fma's; after timing
// the last timed output again, and with the row's first output (the label says whether it was bit-identical).
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/gpu_bench_support.h"
#include "bench/gpu_cudnn_conv.h"
#include "kernels/gpu.h"

namespace {

using namespace gpubench;
using kernels::ConvShape;
using kernels::GpuKernelVersion;

struct Layer {
  std::string name;
  int C, H, W, K, R, stride, pad, groups;
};

// Square filters. convnet-benchmarks' layers as its Caffe prototxts define them (no padding, L5 too); AlexNet as
// Caffe's bvlc_alexnet (groups 2 in conv2, conv4, conv5); GoogLeNet's inception_3a on its 192x28x28 input.
const std::vector<Layer>& suite() {
  static const std::vector<Layer> layers = {
      // name, C, H, W, K, R (= S), stride, pad, groups
      {"convnet_L1", 3, 128, 128, 96, 11, 1, 0, 1},
      {"convnet_L2", 64, 64, 64, 128, 9, 1, 0, 1},
      {"convnet_L3", 128, 32, 32, 128, 9, 1, 0, 1},
      {"convnet_L4", 128, 16, 16, 128, 7, 1, 0, 1},
      {"convnet_L5", 384, 13, 13, 384, 3, 1, 0, 1},
      {"alexnet_conv1", 3, 227, 227, 96, 11, 4, 0, 1},
      {"alexnet_conv2", 96, 27, 27, 256, 5, 1, 2, 2},
      {"alexnet_conv3", 256, 13, 13, 384, 3, 1, 1, 1},
      {"alexnet_conv4", 384, 13, 13, 384, 3, 1, 1, 2},
      {"alexnet_conv5", 384, 13, 13, 256, 3, 1, 1, 2},
      {"vgg16_conv1_1", 3, 224, 224, 64, 3, 1, 1, 1},
      {"vgg16_conv1_2", 64, 224, 224, 64, 3, 1, 1, 1},
      {"vgg16_conv2_1", 64, 112, 112, 128, 3, 1, 1, 1},
      {"vgg16_conv2_2", 128, 112, 112, 128, 3, 1, 1, 1},
      {"vgg16_conv3_1", 128, 56, 56, 256, 3, 1, 1, 1},
      {"vgg16_conv3_2", 256, 56, 56, 256, 3, 1, 1, 1},
      {"vgg16_conv3_3", 256, 56, 56, 256, 3, 1, 1, 1},
      {"vgg16_conv4_1", 256, 28, 28, 512, 3, 1, 1, 1},
      {"vgg16_conv4_2", 512, 28, 28, 512, 3, 1, 1, 1},
      {"vgg16_conv4_3", 512, 28, 28, 512, 3, 1, 1, 1},
      {"vgg16_conv5_1", 512, 14, 14, 512, 3, 1, 1, 1},
      {"vgg16_conv5_2", 512, 14, 14, 512, 3, 1, 1, 1},
      {"vgg16_conv5_3", 512, 14, 14, 512, 3, 1, 1, 1},
      {"inception_3a_1x1", 192, 28, 28, 64, 1, 1, 0, 1},
      {"inception_3a_3x3_reduce", 192, 28, 28, 96, 1, 1, 0, 1},
      {"inception_3a_3x3", 96, 28, 28, 128, 3, 1, 1, 1},
      {"inception_3a_5x5_reduce", 192, 28, 28, 16, 1, 1, 0, 1},
      {"inception_3a_5x5", 16, 28, 28, 32, 5, 1, 2, 1},
      {"inception_3a_pool_proj", 192, 28, 28, 32, 1, 1, 0, 1},
  };
  return layers;
}

const ConvPass kPasses[] = {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_filter};

enum class Impl { naive, tiled, register_blocked, best, cudnn_gemm_fma, cudnn_any };
const Impl kImpls[] = {Impl::naive, Impl::tiled,          Impl::register_blocked,
                       Impl::best,  Impl::cudnn_gemm_fma, Impl::cudnn_any};
const char* impl_name(Impl impl) {
  if (impl == Impl::cudnn_gemm_fma) return "cudnn_gemm_fma";
  if (impl == Impl::cudnn_any) return "cudnn_any";
  return our_row_name(version_of(impl));
}
bool is_cudnn(Impl impl) {
  return impl == Impl::cudnn_gemm_fma || impl == Impl::cudnn_any;
}
int g_batch = 128;

// Tolerances, as fractions of the largest expected magnitude. Ours against cudnn_gemm_fma: both strict FP32, only
// the order of the sums differs; backward-filter sums run over N*P*Q (6.4 million terms for VGG's conv1 at batch
// 128), so their rounding is larger. cudnn_any: Winograd, FFT and TF32 round differently (TF32 keeps 10 mantissa
// bits), a wrong call of cuDNN is off by far more.
double tolerance(ConvPass pass) {
  return pass == ConvPass::backward_filter ? 1e-3 : 2e-4;
}
constexpr double kAnyTolerance = 2e-2;
constexpr double kSpotTolerance = 1e-3;  // cudnn_gemm_fma against double precision

ConvShape shape_of(const Layer& l) {
  return kernels::conv_shape(g_batch, l.C, l.H, l.W, l.K, l.R, l.R, l.stride, l.pad, l.groups);
}
double flops(const ConvShape& s) {  // as an implicit GEMM executes them, taps on the zero padding included
  return 2.0 * s.N * s.K * s.P * s.Q * double(s.C / s.groups) * s.R * s.S;
}
size_t x_count(const ConvShape& s) {
  return size_t(s.N) * s.C * s.H * s.W;
}
size_t y_count(const ConvShape& s) {
  return size_t(s.N) * s.K * s.P * s.Q;
}
size_t w_count(const ConvShape& s) {
  return size_t(s.K) * (s.C / s.groups) * s.R * s.S;
}
size_t out_count(const ConvShape& s, ConvPass pass) {
  return pass == ConvPass::forward ? y_count(s) : pass == ConvPass::backward_data ? x_count(s) : w_count(s);
}
double min_bytes(const ConvShape& s) {  // each pass reads two of x, w, y and writes the third once
  return 4.0 * double(x_count(s) + y_count(s) + w_count(s));
}

std::string key_of(const Layer& l, ConvPass pass) {
  return "conv/" + l.name + "/" + pass_name(pass) + "/N:" + std::to_string(g_batch);
}

// Mean seconds per call of (layer, pass, impl), for the ratios and the conv_suite sums.
std::map<std::string, double>& times() {
  static std::map<std::string, double> t;
  return t;
}

// ---- one (layer, pass): inputs, both cuDNN results and their times, kept while its rows run ----------------------
struct ProblemData {
  std::string key;
  ConvPass pass;
  ConvShape s;
  Buffer in0, in1;           // forward: x, w; backward_data: dy, w; backward_filter: x, dy
  Buffer out_gemm, out_any;  // cudnn_gemm_fma's and cudnn_any's results
  Buffer our_workspace;      // backward-filter split-K partials of ours_best
  std::unique_ptr<CudnnConv> gemm, any;
  double gemm_seconds = 0, any_seconds = 0;
};

ProblemData& problem_data(const Layer& layer, ConvPass pass) {
  static std::unique_ptr<ProblemData> current;
  const std::string key = key_of(layer, pass);
  if (current && current->key == key) return *current;
  current.reset();  // free the previous problem's buffers first
  auto owned = std::make_unique<ProblemData>();
  ProblemData& d = *owned;
  d.key = key, d.pass = pass, d.s = shape_of(layer);
  const ConvShape& s = d.s;
  const size_t in0 = pass == ConvPass::backward_data ? y_count(s) : x_count(s);
  const size_t in1 = pass == ConvPass::backward_filter ? y_count(s) : w_count(s);
  d.in0 = Buffer(in0), d.in1 = Buffer(in1);
  fill_uniform(d.in0.get(), in0, 11);
  fill_uniform(d.in1.get(), in1, 12);
  const size_t n = out_count(s, pass);
  d.out_gemm = Buffer(n), d.out_any = Buffer(n);
  if (pass == ConvPass::backward_filter)
    d.our_workspace = Buffer(kernels::cuda::conv_backward_filter_workspace_floats(s));

  d.gemm = std::make_unique<CudnnConv>(pass, s, CudnnMode::gemm_fma, d.in0.get(), d.in1.get(), d.out_gemm.get());
  fill_value(d.out_gemm.get(), n, std::numeric_limits<float>::quiet_NaN());
  d.gemm->run(d.in0.get(), d.in1.get(), d.out_gemm.get());
  const std::string bad =
      check_conv_samples(pass, s, d.in0.get(), d.in1.get(), d.out_gemm.get(), kSpotTolerance, key + " cudnn_gemm_fma");
  if (!bad.empty()) fail("the baseline itself is wrong (or called wrongly): " + bad);

  d.any = std::make_unique<CudnnConv>(pass, s, CudnnMode::any, d.in0.get(), d.in1.get(), d.out_any.get());
  fill_value(d.out_any.get(), n, std::numeric_limits<float>::quiet_NaN());
  d.any->run(d.in0.get(), d.in1.get(), d.out_any.get());
  const std::string any_bad =
      mismatch_device(d.out_any.get(), d.out_gemm.get(), n, kAnyTolerance, key + " cudnn_any vs cudnn_gemm_fma");
  if (!any_bad.empty()) fail("the two cuDNN baselines disagree: " + any_bad);

  Buffer scratch(n);
  d.gemm_seconds =
      mean_seconds_per_call([&] { d.gemm->run(d.in0.get(), d.in1.get(), scratch.get()); }, flags().baseline_min_time);
  d.any_seconds =
      mean_seconds_per_call([&] { d.any->run(d.in0.get(), d.in1.get(), scratch.get()); }, flags().baseline_min_time);
  times()[key + "/" + impl_name(Impl::cudnn_gemm_fma)] = d.gemm_seconds;
  times()[key + "/" + impl_name(Impl::cudnn_any)] = d.any_seconds;
  current = std::move(owned);
  return *current;
}

void run_impl(const ProblemData& d, Impl impl, float* out) {
  const ConvShape& s = d.s;
  if (impl == Impl::cudnn_gemm_fma) return d.gemm->run(d.in0.get(), d.in1.get(), out);
  if (impl == Impl::cudnn_any) return d.any->run(d.in0.get(), d.in1.get(), out);
  const GpuKernelVersion v = version_of(impl);
  if (d.pass == ConvPass::forward)
    return kernels::cuda::conv_forward(s, d.in0.get(), d.in1.get(), nullptr, out, stream(), {}, v);
  if (d.pass == ConvPass::backward_data)
    return kernels::cuda::conv_backward_data(s, d.in0.get(), d.in1.get(), out, false, stream(), v);
  kernels::cuda::conv_backward_filter(s, d.in0.get(), d.in1.get(), out, false, d.our_workspace.get(),
                                      d.our_workspace.size(), stream(), v);
}

// The row's result against cudnn_gemm_fma's (cudnn_any's against its own first output only: it rounds differently).
std::string check_output(const ProblemData& d, Impl impl, const float* out, const std::string& what) {
  const size_t n = out_count(d.s, d.pass);
  if (impl == Impl::cudnn_any)
    return mismatch_device(out, d.out_any.get(), n, kAnyTolerance, what + " vs its Find run");
  return mismatch_device(out, d.out_gemm.get(), n, tolerance(d.pass), what + " vs cudnn_gemm_fma");
}

void set_counters(benchmark::State& state, const ProblemData& d, double mean) {
  const double f = flops(d.s), bytes = min_bytes(d.s);
  state.counters["GFLOP/s"] = f / mean * 1e-9;
  state.counters["vs_cudnn_gemm"] = d.gemm_seconds / mean;
  state.counters["vs_cudnn_any"] = d.any_seconds / mean;
  state.counters["of_peak"] = f / mean / device().fp32_peak_flops;
  state.counters["MFLOP"] = f * 1e-6;
  state.counters["MB"] = bytes * 1e-6;
  state.counters["flop/B"] = f / bytes;
  state.counters["GB/s"] = bytes / mean * 1e-9;
}

void run_row(benchmark::State& state, const Layer& layer, ConvPass pass, Impl impl) {
  ProblemData& d = problem_data(layer, pass);
  const std::string what = d.key + "/" + impl_name(impl);
  Buffer out(out_count(d.s, pass));
  fill_value(out.get(), out.size(), std::numeric_limits<float>::quiet_NaN());  // an unwritten element fails
  const auto call = [&] { run_impl(d, impl, out.get()); };
  call();
  if (!require(state, check_output(d, impl, out.get(), what))) return;
  Buffer first = clone(out);

  double total = 0;
  for (auto _ : state) {
    const double seconds = time_call(call);
    state.SetIterationTime(seconds);
    total += seconds;
  }
  if (!require(state, check_output(d, impl, out.get(), what + " after timing"))) return;
  const bool repeatable = compare_device(out.get(), first.get(), out.size()).exact();
  const double mean = total / double(state.iterations());
  if (impl == Impl::best) times()[what] = mean;
  set_counters(state, d, mean);

  const ConvShape& s = d.s;
  std::ostringstream label;
  label << s.C << "x" << s.H << "x" << s.W << " -> " << s.K << "x" << s.P << "x" << s.Q << ", " << s.R << "x" << s.S
        << " s" << s.stride_h << " p" << s.pad_h;
  if (s.groups > 1) label << " g" << s.groups;
  label << "; ";
  if (impl == Impl::cudnn_gemm_fma)
    label << d.gemm->description();
  else if (impl == Impl::cudnn_any)
    label << d.any->description();
  else
    label << "checked vs cudnn_gemm_fma";
  label << (repeatable ? "; bit-repeatable" : "; NOT bit-repeatable");
  state.SetLabel(label.str());
}

// ---- conv_suite: forward + backward summed over the whole suite ---------------------------------------------------
// Measures ours_best for any (layer, pass) whose row did not run (a --benchmark_filter), validated as a row is.
double ours_best_seconds(benchmark::State& state, const Layer& layer, ConvPass pass) {
  const std::string key = key_of(layer, pass) + "/" + impl_name(Impl::best);
  auto found = times().find(key);
  if (found != times().end()) return found->second;
  ProblemData& d = problem_data(layer, pass);
  Buffer out(out_count(d.s, pass));
  fill_value(out.get(), out.size(), std::numeric_limits<float>::quiet_NaN());
  run_impl(d, Impl::best, out.get());
  if (!require(state, check_output(d, Impl::best, out.get(), key))) return -1;
  const double seconds = mean_seconds_per_call([&] { run_impl(d, Impl::best, out.get()); }, flags().baseline_min_time);
  times()[key] = seconds;
  return seconds;
}

struct Sums {
  double ours = 0, gemm = 0, any = 0, flops = 0;
  int passes = 0;
};

void run_suite_row(benchmark::State& state, int pass_filter /* -1: all passes */, Impl impl) {
  Sums sum;
  for (const Layer& layer : suite()) {
    for (ConvPass pass : kPasses) {
      if (pass_filter >= 0 && int(pass) != pass_filter) continue;
      const double ours = ours_best_seconds(state, layer, pass);
      if (ours < 0) return;  // a failed check under --keep_going
      const std::string key = key_of(layer, pass);
      if (!times().count(key + "/cudnn_gemm_fma")) problem_data(layer, pass);
      sum.ours += ours;
      sum.gemm += times()[key + "/cudnn_gemm_fma"];
      sum.any += times()[key + "/cudnn_any"];
      sum.flops += flops(shape_of(layer));
      ++sum.passes;
    }
  }
  const double seconds = impl == Impl::best ? sum.ours : impl == Impl::cudnn_gemm_fma ? sum.gemm : sum.any;
  for (auto _ : state) state.SetIterationTime(seconds);
  state.counters["GFLOP/s"] = sum.flops / seconds * 1e-9;
  state.counters["vs_cudnn_gemm"] = sum.gemm / seconds;
  state.counters["vs_cudnn_any"] = sum.any / seconds;
  state.counters["of_peak"] = sum.flops / seconds / device().fp32_peak_flops;
  state.counters["MFLOP"] = sum.flops * 1e-6;
  state.counters["layer_passes"] = sum.passes;
  std::ostringstream label;
  label << "sum of mean times over " << suite().size() << " layers x "
        << (pass_filter < 0 ? "3 passes" : pass_name(ConvPass(pass_filter))) << " at batch " << g_batch;
  if (impl == Impl::best && pass_filter < 0) {
    const double ratio = sum.gemm / sum.ours;
    label << "; target vs_cudnn_gemm >= 0.80: " << (ratio >= 0.8 ? "met" : "NOT met");
  }
  state.SetLabel(label.str());
}

void register_rows() {
  for (const Layer& layer : suite()) {
    for (ConvPass pass : kPasses) {
      for (Impl impl : kImpls) {
        const std::string name = key_of(layer, pass) + "/" + impl_name(impl);
        benchmark::RegisterBenchmark(name.c_str(),
                                     [layer, pass, impl](benchmark::State& st) { run_row(st, layer, pass, impl); })
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
  for (int pass = -1; pass < 3; ++pass) {
    for (Impl impl : {Impl::best, Impl::cudnn_gemm_fma, Impl::cudnn_any}) {
      const std::string scope = pass < 0 ? "all_passes" : pass_name(ConvPass(pass));
      const std::string name = "conv_suite/" + scope + "/" + impl_name(impl) + "/N:" + std::to_string(g_batch);
      benchmark::RegisterBenchmark(name.c_str(), [pass, impl](benchmark::State& st) { run_suite_row(st, pass, impl); })
          ->UseManualTime()
          ->Iterations(1)
          ->Unit(benchmark::kMillisecond);
    }
  }
}

// Our own flags; a bad value ends the program.
bool parse_own_flag(const char* arg) {
  if (const char* v = flag_value(arg, "--batch")) {
    g_batch = std::atoi(v);
    if (g_batch < 1) fail("--batch must be at least 1");
    return true;
  }
  if (const char* v = flag_value(arg, "--cudnn_workspace_mb")) {
    CudnnConv::set_workspace_limit(size_t(std::atol(v)) << 20);
    return true;
  }
  return false;
}

void add_context() {
  benchmark::AddCustomContext("batch", std::to_string(g_batch));
  benchmark::AddCustomContext("cudnn_gemm_fma",
                              "GEMM-family algorithms only (forward IMPLICIT_GEMM, "
                              "IMPLICIT_PRECOMP_GEMM, GEMM; backward ALGO_0, ALGO_1), "
                              "CUDNN_FMA_MATH (strict FP32), fastest by cudnnFind*Ex");
  benchmark::AddCustomContext("cudnn_any",
                              "fastest algorithm of any kind (Winograd, FFT included) by "
                              "cudnnFind*Ex under CUDNN_DEFAULT_MATH (TF32 allowed on sm_80+)");
  benchmark::AddCustomContext("cudnn_workspace_limit_MB", std::to_string(CudnnConv::workspace_limit() >> 20));
  benchmark::AddCustomContext("baselines", "cached before the first row of each layer pass, mean over >= " +
                                               std::to_string(flags().baseline_min_time) + " s of GPU time");
}

}  // namespace

int main(int argc, char** argv) {
  return run_benchmark_main(argc, argv, parse_own_flag, add_context, register_rows);
}
