// A whole training step of the small CNN (forward, backward, SGD update) through the executor, against the
// baselines of the GEMM-heavy passes the same step calls, measured in the same run:
//   vs_eigen_gemms   the im2col GEMMs of every conv / linear pass of the step in Eigen (the ceiling of our
//                    approach for those passes alone: a step that reached 1.0 would spend nothing elsewhere)
//   vs_onednn_passes oneDNN's convolution / inner-product primitives for the same passes (reorders excluded)
// Both baselines leave out ReLU, pooling, LRN, dropout, the loss and the update, so they are optimistic: a ratio
// above 1 would mean our whole step beats their GEMM passes alone.
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_support.h"
#include "bench/cpu_conv_problems.h"
#include "bench/cpu_gemm_ceiling.h"
#include "engine/executor.h"
#include "engine/ops/conv.h"
#include "engine/ops/linear.h"
#include "engine/solver.h"
#include "nets/smallnet.h"

namespace {

using massmap::Executor;
using massmap::Graph;

// The conv / linear passes in the executor's training schedule, as benchmark problems.
std::vector<bench::Problem> gemm_passes(const Executor& ex) {
  std::vector<bench::Problem> out;
  const Graph& g = ex.graph();
  for (const auto& step : ex.schedule()) {
    const massmap::Node& n = g.node(step.node);
    const massmap::Node& fwd = n.forward_of >= 0 ? g.node(n.forward_of) : n;
    bench::Pass pass;
    namespace ops = massmap::ops;
    if (n.op == ops::conv2d || n.op == ops::linear)
      pass = bench::Pass::forward;
    else if (n.op == ops::conv2d_grad_data || n.op == ops::linear_grad_data)
      pass = bench::Pass::backward_data;
    else if (n.op == ops::conv2d_grad_filter || n.op == ops::linear_grad_weight)
      pass = bench::Pass::backward_filter;
    else
      continue;
    const massmap::Shape& x = g.value(fwd.inputs[0]).shape;
    const massmap::Shape& w = g.value(fwd.inputs[1]).shape;
    bench::Layer layer = bench::linear_layer(fwd.name.c_str(), int(x[1]), int(w[0]), int(x[0]));
    if (fwd.op == ops::conv2d) {
      const auto a = massmap::read_attrs<massmap::ConvAttrs>(fwd);
      layer = bench::conv_layer(fwd.name.c_str(), int(x[1]), int(x[2]), int(x[3]), int(w[0]), int(w[2]), a.stride,
                                a.pad, a.groups, int(x[0]));
    }
    out.push_back(bench::make_problem(layer, pass, int(x[0])));
  }
  return out;
}

struct Baselines {
  double eigen_seconds = 0, onednn_seconds = 0, gemm_flops = 0;
};

Baselines measure_baselines(const Executor& ex) {
  Baselines b;
  for (const bench::Problem& p : gemm_passes(ex)) {
    bench::EigenGemmCeiling gemm(bench::im2col_gemms(p));
    b.eigen_seconds += bench::mean_seconds_per_call([&] { gemm.run(); }, 0.2);
    b.gemm_flops += p.flops();
#ifdef MASSMAP_HAVE_DNNL
    auto prim = bench::make_dnnl(p);
    b.onednn_seconds += bench::mean_seconds_per_call([&] { prim->run(); }, 0.2);
#endif
  }
  return b;
}

void BM_smallnet_train_step(benchmark::State& state) {
  massmap::nets::SmallNetOptions o;
  o.batch = int(state.range(0));
  o.width = int(state.range(1));
  massmap::ExecutorOptions eo;
  eo.training = true;
  Executor ex(massmap::nets::build_smallnet(o), eo);
  massmap::SolverConfig config;
  config.lr.base_lr = 1e-4f;  // small: the weights stay sane over thousands of timed steps
  massmap::Solver solver(ex, config);
  solver.initialise_parameters(1);
  auto data = bench::random_vector(size_t(ex.tensor("data").numel()), 3);
  std::copy(data.begin(), data.end(), ex.tensor("data").data());
  massmap::Tensor labels = ex.tensor("label");
  for (int64_t i = 0; i < labels.numel(); ++i) labels.at(i) = float(i % 2);

  const int64_t forward_macs = ex.graph().total_macs();
  static std::map<std::pair<int64_t, int64_t>, Baselines> cache;
  auto key = std::make_pair(state.range(0), state.range(1));
  if (!cache.count(key)) cache[key] = measure_baselines(ex);
  const Baselines& base = cache[key];

  const double start = bench::now_seconds();
  for (auto _ : state) benchmark::DoNotOptimize(solver.step());
  const double step_seconds = (bench::now_seconds() - start) / double(state.iterations());

  state.counters["images/s"] = benchmark::Counter(double(o.batch), benchmark::Counter::kIsIterationInvariantRate);
  // The FLOPs of the step's conv / linear passes (conv1 has no backward-data pass: its input needs no gradient).
  state.counters["GFLOP/s"] = benchmark::Counter(base.gemm_flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["vs_eigen_gemms"] = base.eigen_seconds / step_seconds;
#ifdef MASSMAP_HAVE_DNNL
  state.counters["vs_onednn_passes"] = base.onednn_seconds / step_seconds;
#endif
  state.counters["forward_MMAC"] = double(forward_macs) * 1e-6;
}

}  // namespace

BENCHMARK(BM_smallnet_train_step)->Args({32, 16})->Args({64, 32})->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
