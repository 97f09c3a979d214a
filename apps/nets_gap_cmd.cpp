// massmap nets gap: how far a fully convolutional map cell is from the classifier run on that cell's crop. The
// real nets pad inside, so a map cell sees real neighbouring features where the lone crop sees zeros; this
// measures the difference on random images with random He-scaled weights (which keep activations alive through
// every layer), cell by cell, and prints its distribution for border cells (whose crop touches the image edge)
// and interior cells.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "apps/nets_args.h"
#include "base/errors.h"
#include "engine/executor.h"
#include "engine/graph_rewriter.h"
#include "engine/init.h"
#include "engine/map_geometry.h"
#include "engine/ops/softmax.h"
#include "engine/passes.h"

namespace massmap::cli {

const char* const nets_gap_usage =
    "usage: massmap nets gap NAME [--cells K] [--images R] [--seed S] [--batch-crops B] [net options]\n\n"
    "Measures the gap between the fully convolutional map and true crops: random images (uniform in [-1, 1]) of\n"
    "size crop + 32 (K - 1) in both directions, random He-scaled weights (normal(0, sqrt(2 / fan_in)), biases 0),\n"
    "the map of K x K cells against the classifier run on each cell's crop. Prints, for border and interior cells,\n"
    "the median, 90th percentile and maximum of the logits' error |z_map - z_crop| relative to the crops' RMS\n"
    "logit norm, and of the absolute difference of each class probability.\n\n"
    "options:\n"
    "  --cells K          map cells per side (default 5: 9 interior cells)\n"
    "  --images R         random images, all on the same weights (default 1)\n"
    "  --seed S           weights and images seed (default 1)\n"
    "  --batch-crops B    crops per classifier batch (default 5; lower it to save memory)\n\n" MASSMAP_NET_OPTIONS;

namespace {

// The graph without its final softmax: the logits become the output, readable after a run.
Graph logits_graph(const Graph& g) {
  const NodeId last = g.num_nodes() - 1;
  if (g.node(last).op != ops::softmax) throw BadConfig("nets gap: the graph does not end in softmax");
  GraphRewriter rw(g);
  for (NodeId n = 0; n < last; ++n) rw.copy(n);
  return rw.finish();
}

std::string logits_name(const Graph& g) {
  return g.value(g.node(g.num_nodes() - 1).inputs[0]).name;
}

void he_weights(Executor& ex, uint64_t seed) {
  const Graph& g = ex.graph();
  for (ValueId p : g.params()) {
    const Value& v = g.value(p);
    Tensor t(v.file_shape());  // the parameter as stored
    InitSpec spec;             // biases: constant 0
    if (v.shape.size() > 1) spec.type = "msra";
    initialise(t, spec, seed, v.name);
    ex.tensor(p).copy_from(t);
  }
}

std::vector<double> softmax(const std::vector<double>& z) {
  const double top = *std::max_element(z.begin(), z.end());
  std::vector<double> p;  // (K)
  double sum = 0;
  for (double v : z) sum += std::exp(v - top);
  for (double v : z) p.push_back(std::exp(v - top) / sum);
  return p;
}

std::string quantiles(std::vector<double> v) {
  if (v.empty()) return "-";
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, size_t(q * double(v.size() - 1) + 0.5))]; };
  char buf[128];
  std::snprintf(buf, sizeof buf, "median %.3g, p90 %.3g, max %.3g", at(0.5), at(0.9), v.back());
  return buf;
}

}  // namespace

int run_nets_gap(Args& a, const std::string& name) {
  NetChoice c = parse_net(a, name, "gap");
  const int64_t cells = a.integer("cells", 5, 1, 1000), seed = a.integer("seed", 1, 0, INT64_MAX),
                per_batch = a.integer("batch-crops", 5, 1, nets::kMaxBatch), images = a.integer("images", 1, 1, 1000);
  a.finish();
  if (cells < 1 || seed < 0 || per_batch < 1 || images < 1)
    throw UsageError("--cells, --images and --batch-crops must be positive, --seed >= 0");
  if (c.size_given) throw UsageError("nets gap sizes the image from the crop and --cells; --input-size is the crop");
  const auto [crop_h, crop_w] = input_size(c);
  nets::NetOptions o = c.options;
  o.batch = 1;
  const Graph classifier = run_passes(nets::build_net(c.name, o), {"for_inference"});
  Graph fcn = run_passes(classifier, {"convolutionalize"});
  const MapGeometry geo = map_geometry(fcn);
  const int64_t height = crop_h + geo.y.stride * (cells - 1), width = crop_w + geo.x.stride * (cells - 1);
  fcn = with_input_size(fcn, height, width);
  const int K = c.options.classes;

  ExecutorOptions eo;
  eo.device = c.device;
  Executor map_ex(logits_graph(fcn), eo);
  he_weights(map_ex, uint64_t(seed));
  Executor crop_ex(logits_graph(with_batch(classifier, per_batch)), eo);
  he_weights(crop_ex, uint64_t(seed));
  const int64_t total = cells * cells, C = c.options.channels;
  struct Cell {
    bool interior;
    std::vector<double> map, crop;  // (K) logits
  };
  std::vector<Cell> measured;
  for (int64_t image = 0; image < images; ++image) {
    Tensor x({1, C, height, width});  // (1, C, H, W), uniform in [-1, 1)
    InitSpec uniform;
    uniform.type = "uniform";
    uniform.min = -1.f;
    uniform.max = 1.f;
    initialise(x, uniform, uint64_t(seed), "gap image " + std::to_string(image));
    map_ex.set_input("data", x);
    map_ex.forward(RunContext{});
    const Tensor map = map_ex.read(logits_name(fcn));  // (1, K, cells, cells)
    for (int64_t first = 0; first < total; first += per_batch) {
      Tensor batch = Tensor::zeros({per_batch, C, crop_h, crop_w});  // (B, C, crop_h, crop_w)
      for (int64_t b = 0; b < per_batch && first + b < total; ++b) {
        const int64_t i = (first + b) / cells, j = (first + b) % cells;
        for (int64_t ch = 0; ch < C; ++ch)
          for (int64_t r = 0; r < crop_h; ++r)
            std::copy_n(&x.at((ch * height + geo.y.crop_begin(i) + r) * width + geo.x.crop_begin(j)), crop_w,
                        &batch.at(((b * C + ch) * crop_h + r) * crop_w));
      }
      crop_ex.set_input("data", batch);
      crop_ex.forward(RunContext{});
      const Tensor z = crop_ex.read(logits_name(classifier));  // (B, K)
      for (int64_t b = 0; b < per_batch && first + b < total; ++b) {
        const int64_t i = (first + b) / cells, j = (first + b) % cells;
        Cell cell;
        cell.interior = i > 0 && j > 0 && i < cells - 1 && j < cells - 1;
        for (int k = 0; k < K; ++k) {
          cell.crop.push_back(z.at(b * K + k));
          cell.map.push_back(map.at((k * cells + i) * cells + j));
        }
        measured.push_back(cell);
      }
    }
  }
  // Logit errors relative to the crops' typical logit size (RMS over cells): a single cell's logits may be near 0.
  double scale = 0;
  for (const Cell& cell : measured)
    for (double v : cell.crop) scale += v * v;
  scale = std::sqrt(scale / double(measured.size()));
  std::vector<double> logit_gap[2], prob_gap[2];  // [0] border cells, [1] interior cells
  for (const Cell& cell : measured) {
    double diff = 0;
    for (int k = 0; k < K; ++k) diff += std::pow(cell.map[size_t(k)] - cell.crop[size_t(k)], 2);
    logit_gap[cell.interior].push_back(std::sqrt(diff) / std::max(scale, 1e-30));
    const std::vector<double> pc = softmax(cell.crop), pm = softmax(cell.map);
    for (int k = 0; k < K; ++k) prob_gap[cell.interior].push_back(std::fabs(pm[size_t(k)] - pc[size_t(k)]));
  }
  std::printf(
      "%s\n%lld images %lldx%lld, map %lldx%lld cells of crop %dx%d, stride %lld; seed %lld; rms |z_crop| %.3g\n",
      describe(c).c_str(), (long long)images, (long long)height, (long long)width, (long long)cells, (long long)cells,
      crop_h, crop_w, (long long)geo.y.stride, (long long)seed, scale);
  const char* names[2] = {"border", "interior"};
  for (int part = 0; part < 2; ++part) {
    std::printf("%-8s cells %3zu: logits |z_map - z_crop| / rms |z_crop| %s\n", names[part], logit_gap[part].size(),
                quantiles(logit_gap[part]).c_str());
    std::printf("%-8s            probabilities |difference| %s\n", "", quantiles(prob_gap[part]).c_str());
  }
  return 0;
}

}  // namespace massmap::cli
