// The whole-image map against a sliding window, and the memory of the map's schedule. For each net (1 channel, 2
// classes) over one image of H x W (default 1000 x 1600, the size; no padding, so the map has
// ((H - crop) / 32 + 1) x ((W - crop) / 32 + 1) cells):
//   - one pass of the fully convolutional net (for_inference, convolutionalize, fuse_conv_bias_relu) over the image;
//   - the sliding window a competent user would run: the classifier (for_inference, fuse_conv_bias_relu) on the
//     crops at every cell, batched (32 crops for AlexNet and GoogLeNet, 8 for VGG-16). Timing every crop would take
//     minutes to hours on a CPU (VGG-16's window is about 35 TFLOP), so each iteration times one batch of crops cut
//     from the image and the window's time is extrapolated: seconds per crop x cells (window_s_extrapolated).
// Both are timed in each iteration, one after the other, so a change in the machine's load hits both.
//
// Names: map/<net>/<device>/width:<w>/<H>x<W>. Counters:
//   map_ms             one pass over the whole image (the iteration time; cuda: until the map is read back)
//   window_ms/crop     the batched classifier per crop
//   window_s           extrapolated: window_ms/crop x cells
//   time_ratio         window_s / map time;  mac_ratio  the same ratio of multiply-adds from the layer tables
//   ratio_vs_macs      time_ratio / mac_ratio (the issue asks >= 0.8)
//   arena_MiB          the map schedule's activations as planned (shared arena, in-place ReLU, concat slices)
//   unshared_MiB       the same activations each in its own buffer;  unshared_vs_arena  their ratio
//   params_MiB         the parameters
//
//   build/bin/map_bench --benchmark_filter='map/alexnet/cpu/width:1/'
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>
#include <vector>

#include "bench/bench_support.h"
#include "engine/executor.h"
#include "engine/init.h"
#include "engine/passes.h"
#include "nets/registry.h"

namespace {

using namespace massmap;

struct Variant {
  const char* net;
  double width;
  int window_batch;
  int height, width_px;
};

const Variant kVariants[] = {
    {"alexnet", 1.0, 32, 1000, 1600},  {"vgg16", 1.0, 8, 1000, 1600},  {"googlenet", 1.0, 32, 1000, 1600},
    {"alexnet", 0.25, 32, 1000, 1600}, {"vgg16", 0.25, 8, 1000, 1600}, {"googlenet", 0.25, 32, 1000, 1600},
};

// Parameters as the builder initialises them (seeded by name): the same values in the map and the window.
void initialise_parameters(Executor& ex) {
  for (ValueId p : ex.graph().params()) {
    const Value& v = ex.graph().value(p);
    Tensor t(v.file_shape());
    initialise(t, v.param.init, 1, v.name);
    ex.tensor(p).copy_from(t);
  }
}

int64_t parameter_bytes(const Graph& g) {
  int64_t n = 0;
  for (ValueId p : g.params()) n += shape_numel(g.value(p).shape);
  return n * int64_t(sizeof(float));
}

void map_vs_window(benchmark::State& state, Variant v, Device device) {
  nets::NetOptions o;
  o.channels = 1;
  o.classes = 2;
  o.width = v.width;
  o.with_loss = true;
  const Graph classifier = nets::build_net(v.net, o);  // at the crop, batch 1
  const Graph fcn = with_input_size(
      run_passes(classifier, {"for_inference", "convolutionalize", "fuse_conv_bias_relu"}), v.height, v.width_px);
  const int64_t crop_h = fcn.crop[0], crop_w = fcn.crop[1];
  ExecutorOptions eo;
  eo.device = device;
  Executor map(fcn, eo);
  initialise_parameters(map);
  const Shape& prob_shape = map.graph().value(map.graph().at("prob")).shape;  // (1, 2, h, w)
  const int64_t cells_y = prob_shape[2], cells_x = prob_shape[3], cells = cells_y * cells_x;
  const std::vector<float> image = bench::random_vector(size_t(v.height) * size_t(v.width_px), 5);  // (H, W)
  map.set_input("data", Tensor::from({1, 1, v.height, v.width_px}, image));

  o.batch = v.window_batch;
  Executor window(run_passes(nets::build_net(v.net, o), {"for_inference", "fuse_conv_bias_relu"}), eo);
  initialise_parameters(window);
  Tensor crops({v.window_batch, 1, crop_h, crop_w});  // the first window_batch cells' crops, row-major
  for (int b = 0; b < v.window_batch; ++b) {
    const int64_t cell = b % cells, y0 = (cell / cells_x) * 32, x0 = (cell % cells_x) * 32;
    for (int64_t r = 0; r < crop_h; ++r)
      for (int64_t q = 0; q < crop_w; ++q)
        crops.at((b * crop_h + r) * crop_w + q) = image[size_t((y0 + r) * v.width_px + x0 + q)];
  }
  window.set_input("data", crops);

  auto run_map = [&] {
    map.forward(RunContext{});
    benchmark::DoNotOptimize(map.read("prob"));  // on cuda: waits for the map
  };
  auto run_window = [&] {
    window.forward(RunContext{});
    benchmark::DoNotOptimize(window.read("prob"));
  };
  run_map();  // warm-up: first touch of the arenas
  run_window();
  double map_s = 0, window_s = 0;
  for (auto _ : state) {
    double t = bench::now_seconds();
    run_map();
    const double one = bench::now_seconds() - t;
    map_s += one;
    state.SetIterationTime(one);
    t = bench::now_seconds();
    run_window();
    window_s += bench::now_seconds() - t;
  }
  const double n = double(state.iterations());
  const double per_crop = window_s / n / v.window_batch, window_total = per_crop * double(cells);
  const double mac_map = double(map.graph().total_macs());
  const double mac_window = double(window.graph().total_macs()) / v.window_batch * double(cells);
  const double time_ratio = window_total / (map_s / n), mac_ratio = mac_window / mac_map;
  state.counters["cells"] = double(cells);
  state.counters["map_ms"] = 1e3 * map_s / n;
  state.counters["window_ms/crop"] = 1e3 * per_crop;
  state.counters["window_s"] = window_total;
  state.counters["time_ratio"] = time_ratio;
  state.counters["mac_ratio"] = mac_ratio;
  state.counters["ratio_vs_macs"] = time_ratio / mac_ratio;
  state.counters["map_GMAC"] = mac_map * 1e-9;
  state.counters["arena_MiB"] = double(map.arena_bytes()) / (1 << 20);
  state.counters["unshared_MiB"] = double(map.unshared_bytes()) / (1 << 20);
  state.counters["unshared_vs_arena"] = double(map.unshared_bytes()) / double(map.arena_bytes());
  state.counters["params_MiB"] = double(parameter_bytes(map.graph())) / (1 << 20);
}

void register_all() {
  for (Device d : available_devices()) {
    if (d == Device::simt) continue;  // whole-image maps of the real nets take hours on simt
    for (const Variant& v : kVariants) {
      char name[160];
      std::snprintf(name, sizeof name, "map/%s/%s/width:%g/%dx%d", v.net, device_name(d), v.width, v.height,
                    v.width_px);
      benchmark::RegisterBenchmark(name, map_vs_window, v, d)->UseManualTime()->Unit(benchmark::kMillisecond);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("omp_max_threads", std::to_string(omp_get_max_threads()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
