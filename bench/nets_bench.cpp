// One training step (forward with dropout, backward, SGD update) of each net of the catalogue, full size and
// scaled (width 0.25), on every device available here, reporting images/s. Inputs are 1 channel, 2 classes
// (mammography's mass / no mass), at each net's nominal size; the solver is the net's published preset with a
// small learning rate, so the weights stay sane over many timed steps.
//
// Names: <net>/<device>/width:<w>/batch:<b>, e.g.
//   OMP_NUM_THREADS=2 build/bin/nets_bench --benchmark_filter='alexnet/cpu/width:1/' --benchmark_repetitions=5
// times AlexNet's step at batch 32 on 2 threads, the setting bench/pytorch_nets.py measures for PyTorch (VGG-16 and
// GoogLeNet likewise at batch 32: vgg16/cpu/width:1/batch:32, googlenet/cpu/width:1/batch:32).
// simt (the CUDA kernels run on the host by kernels/simt) is slow: only the tiny variants run there. On cuda and
// simt each timed step ends by reading a parameter back, so the time includes every kernel of the step.
//
// nets_bench --profile=alexnet/cpu/width:1/batch:32 times each kernel call of the step instead (cpu, simt) and
// prints the milliseconds per op and the slowest steps.
//
// --precision=bfloat16 runs the cpu's convolutions on bfloat16 operands (AMX tile units or AVX512-BF16; engine/device.h
// use_conv_precision), for the rows and the profile alike; the context line names the precision.
//
// Counters: images/s; cpu_s/step (process CPU seconds per step, every thread); GFLOP/s (2 x 3 x forward multiply-adds x
// batch per step: forward, backward-data and backward-filter counted as one forward pass each, an approximation);
// MMAC/image (forward).
// The graphs run as `massmap train` runs them: batch_norm + relu fused (fuse_batch_norm_relu; nets without batch
// norm are unchanged). The batch-normalised nets' cpu steps also run as built, rows .../unfused: the pass's gain,
// measured in the same run.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_support.h"
#include "engine/device.h"
#include "engine/executor.h"
#include "engine/passes.h"
#include "engine/solver.h"
#include "kernels/cpu/conv_bf16.h"
#include "nets/registry.h"

namespace {

using namespace massmap;

enum class Where { fast, also_simt, simt_only };  // fast: cpu and cuda; simt runs only tiny variants

struct Variant {
  const char* net;
  double width;
  int batch;
  Where where;
};

// Batch 32 at width 1 for the three nets: the comparison with PyTorch (bench/nets_vs_pytorch.sh). VGG-16 and
// GoogLeNet also at a small batch, a quicker look (a VGG-16 step at batch 32 is about 3 TFLOP). mapnet_bn_fine as the
// demo trains it (batch 64, 93-pixel crops), and mapnet_bn, the demo's earlier net (batch 64, 47-pixel crops).
const Variant kVariants[] = {
    {"alexnet", 1.0, 32, Where::fast},        {"alexnet", 0.25, 32, Where::fast},
    {"alexnet", 0.25, 1, Where::simt_only},   {"vgg16", 1.0, 32, Where::fast},
    {"vgg16", 1.0, 4, Where::fast},           {"vgg16", 0.25, 8, Where::fast},
    {"googlenet", 1.0, 32, Where::fast},      {"googlenet", 1.0, 8, Where::fast},
    {"googlenet", 0.25, 8, Where::fast},      {"smallnet", 1.0, 32, Where::fast},
    {"smallnet", 0.25, 32, Where::also_simt}, {"mapnet_bn", 1.0, 64, Where::fast},
    {"mapnet_bn_fine", 1.0, 64, Where::fast},
};

// The net as massmap train steps it (fused: false, as built).
Graph step_graph(const std::string& net, const nets::NetOptions& o, bool fused = true) {
  Graph g = nets::build_net(net, o);
  return fused ? run_passes(g, {"fuse_batch_norm_relu"}) : g;
}

// The variant as a mammogram net: 1 channel, 2 classes.
nets::NetOptions mammogram_options(const Variant& v) {
  nets::NetOptions o;
  o.channels = 1;
  o.classes = 2;
  o.batch = v.batch;
  o.width = v.width;
  return o;
}

void train_step(benchmark::State& state, Variant v, Device device, bool fused) {
  const nets::NetOptions o = mammogram_options(v);
  ExecutorOptions eo;
  eo.device = device;
  eo.training = true;
  Executor ex(step_graph(v.net, o, fused), eo);
  SolverConfig config = nets::find_net(v.net).solver();
  config.lr.base_lr = 1e-5f;
  Solver solver(ex, config);
  solver.initialise_parameters(1);
  const Shape& shape = ex.graph().value(ex.graph().at("data")).shape;
  ex.set_input("data", Tensor::from(shape, bench::random_vector(size_t(shape_numel(shape)), 3)));
  Tensor labels({int64_t(v.batch)});
  for (int i = 0; i < v.batch; ++i) labels.at(i) = float(i % 2);
  ex.set_input("label", labels);
  // The smallest parameter: reading it back waits for every kernel of the step on an asynchronous device.
  ValueId sync = ex.graph().params().front();
  for (ValueId p : ex.graph().params())
    if (shape_numel(ex.graph().value(p).shape) < shape_numel(ex.graph().value(sync).shape)) sync = p;
  const bool wait = device != Device::cpu;

  solver.step();  // warm-up: first touch of the arena, lazy GPU set-up
  if (wait) ex.read(ex.graph().value(sync).name);
  const std::clock_t cpu_start = std::clock();  // the process's CPU time, every thread
  for (auto _ : state) {
    benchmark::DoNotOptimize(solver.step());
    if (wait) ex.read(ex.graph().value(sync).name);
  }
  const double cpu_seconds = double(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  const double macs = double(ex.graph().total_macs());
  state.counters["images/s"] = benchmark::Counter(double(v.batch), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = benchmark::Counter(6 * macs * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["MMAC/image"] = macs * 1e-6 / v.batch;
  // Process CPU seconds per step, all threads (OpenMP's spin-waits included): on a loaded machine, where wall time
  // depends on what else runs, this shows the work a step costs.
  state.counters["cpu_s/step"] = cpu_seconds / double(state.iterations());
  state.counters["arena_MiB"] = double(ex.arena_bytes()) / (1 << 20);
}

// Inference: the forward pass alone (an executor without the training steps, dropout off, every parameter
// initialised as for training), rows <net>/<device>/width:<w>/batch:<b>/inference. The output is read back each
// iteration on asynchronous devices.
void inference(benchmark::State& state, Variant v, Device device) {
  const nets::NetOptions o = mammogram_options(v);
  ExecutorOptions eo;
  eo.device = device;
  Executor ex(step_graph(v.net, o), eo);
  {
    // Parameters as the solver initialises them (a training executor of the same graph shares nothing with this one,
    // so the values are copied over by name).
    ExecutorOptions to;
    to.device = Device::cpu;
    to.training = true;
    Executor trainer(step_graph(v.net, o), to);
    Solver solver(trainer, nets::find_net(v.net).solver());
    solver.initialise_parameters(1);
    for (ValueId p : ex.graph().params()) {
      const std::string& name = ex.graph().value(p).name;
      ex.set_input(name, trainer.read(name));
    }
  }
  const Shape& shape = ex.graph().value(ex.graph().at("data")).shape;
  ex.set_input("data", Tensor::from(shape, bench::random_vector(size_t(shape_numel(shape)), 3)));
  Tensor labels({int64_t(v.batch)});  // the graph's loss node still runs (one softmax per image)
  for (int i = 0; i < v.batch; ++i) labels.at(i) = float(i % 2);
  ex.set_input("label", labels);
  const bool wait = device != Device::cpu;
  RunContext run;   // training off: dropout passes through
  ex.forward(run);  // warm-up
  const std::clock_t cpu_start = std::clock();
  for (auto _ : state) {
    ex.forward(run);
    if (wait) ex.read(ex.graph().value(ex.graph().params().front()).name);
  }
  const double cpu_seconds = double(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  const double macs = double(ex.graph().total_macs());
  state.counters["images/s"] = benchmark::Counter(double(v.batch), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = benchmark::Counter(2 * macs * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["cpu_s/batch"] = cpu_seconds / double(state.iterations());
}

// --profile=<benchmark name>: runs that variant's training step by hand, one kernel call at a time, and prints where
// the time goes, per op and per pass (cpu and simt: their kernels are synchronous).
int profile(const std::string& wanted, int steps) {
  for (Device d : available_devices()) {
    for (const Variant& v : kVariants) {
      char name[128];
      std::snprintf(name, sizeof name, "%s/%s/width:%g/batch:%d", v.net, device_name(d), v.width, v.batch);
      if (wanted != name) continue;
      if (d == Device::cuda) {
        std::fprintf(stderr, "--profile times kernels one by one on the host: cpu or simt only\n");
        return 1;
      }
      const nets::NetOptions o = mammogram_options(v);
      ExecutorOptions eo;
      eo.device = d;
      eo.training = true;
      Executor ex(step_graph(v.net, o), eo);
      Solver solver(ex, nets::find_net(v.net).solver());
      solver.initialise_parameters(1);
      const Shape& shape = ex.graph().value(ex.graph().at("data")).shape;
      ex.set_input("data", Tensor::from(shape, bench::random_vector(size_t(shape_numel(shape)), 3)));
      Tensor labels({int64_t(v.batch)});
      for (int i = 0; i < v.batch; ++i) labels.at(i) = float(i % 2);
      ex.set_input("label", labels);
      solver.step();  // warm-up
      RunContext run = solver.context(true);
      run.lr = 1e-5f;
      std::map<std::string, double> per_op, per_node;
      double total = 0;
      for (int i = 0; i < steps; ++i) {
        for (const ScheduleStep& s : ex.schedule()) {
          KernelCall call = s.call;
          call.run = &run;
          const double start = bench::now_seconds();
          s.kernel(call);
          const double t = bench::now_seconds() - start;
          const Node& n = ex.graph().node(s.node);
          per_op[n.op] += t / steps;
          per_node[n.name + " (" + n.op + ")"] += t / steps;
          total += t / steps;
        }
        ++run.iteration;
      }
      std::printf("%s: %.1f ms per step (%d steps, kernels only), %.2f images/s\n\n%-48s %10s %7s\n", name, total * 1e3,
                  steps, v.batch / total, "op", "ms/step", "share");
      auto print = [&](const std::map<std::string, double>& m, size_t rows) {
        std::vector<std::pair<double, std::string>> sorted;
        for (const auto& [k, t] : m) sorted.push_back({t, k});
        std::sort(sorted.rbegin(), sorted.rend());
        for (size_t i = 0; i < sorted.size() && i < rows; ++i)
          std::printf("%-48s %10.1f %6.1f%%\n", sorted[i].second.c_str(), sorted[i].first * 1e3,
                      100 * sorted[i].first / total);
      };
      print(per_op, 100);
      std::printf("\nslowest steps:\n");
      print(per_node, 25);
      return 0;
    }
  }
  std::fprintf(stderr, "--profile: no benchmark named '%s' (see --benchmark_list_tests, without /real_time)\n",
               wanted.c_str());
  return 1;
}

void register_all() {
  for (Device d : available_devices()) {
    for (const Variant& v : kVariants) {
      if ((d == Device::simt) != (v.where != Where::fast) && v.where != Where::also_simt) continue;
      char name[128];
      std::snprintf(name, sizeof name, "%s/%s/width:%g/batch:%d", v.net, device_name(d), v.width, v.batch);
      benchmark::RegisterBenchmark(name, train_step, v, d, true)->UseRealTime()->Unit(benchmark::kMillisecond);
      if (d == Device::cpu && std::string(v.net).rfind("mapnet_bn", 0) == 0)
        benchmark::RegisterBenchmark((std::string(name) + "/unfused").c_str(), train_step, v, d, false)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
      if (v.where == Where::fast && d == Device::cpu)  // (the GPU suite's filter takes every cuda row of a net)
        benchmark::RegisterBenchmark((std::string(name) + "/inference").c_str(), inference, v, d)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string precision = "float32";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--precision=", 0) == 0) {
      precision = a.substr(12);
      std::copy(argv + i + 1, argv + argc, argv + i);  // not Google Benchmark's
      --argc, --i;
    }
  }
  try {
    precision = use_conv_precision(precision, Device::cpu);
    if (precision == "bfloat16")
      precision +=
          std::string(" on the ") + kernels::cpu::bf16_engine_name(kernels::cpu::active_bf16_engine()) + " engine";
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nets_bench: %s\n", e.what());
    return 2;
  }
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--profile=", 0) == 0) return profile(a.substr(10), 3);
  }
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("omp_max_threads", std::to_string(omp_get_max_threads()));
  benchmark::AddCustomContext("conv_precision", precision);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
