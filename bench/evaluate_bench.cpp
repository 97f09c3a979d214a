// What evaluation adds to each mapped image, against the map itself: scoring one image (peaks, NMS, judging on
// masks and boxes, the ROI statistics over each mass's mask), the DoG baseline's map, and the part's metrics
// (FROC, CPM and 1000 patient-level bootstrap replicates of both, on masks and boxes, and the band's grid).
// Sizes: a DDSM-like 1000 x 1500 image at 0.2 mm with AlexNet's geometry (stride 32, 47 x 32 cells), two masses of
// 10 mm radius; parts of 100 and 400 images (4 per patient, about 10 false positives each).
//
//   score/image       detect + score_map of one image (counter roi_pixels: mask pixels interpolated)
//   dog/image         dog_map of one prepared image
//   metrics/<images>  scorer_metrics over the part (counter images)
//
//   build/bin/evaluate_bench
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "apps/search/baseline_dog.h"
#include "apps/search/scoring.h"
#include "data/regions.h"

namespace {

using namespace massmap;
using namespace massmap::search;

constexpr int kWidth = 1000, kHeight = 1500;

ImageGeometry geometry() {
  ImageGeometry g;
  for (PlaneAxis* a : {&g.plane.y, &g.plane.x}) {
    a->net_stride = a->stride = 32;
    a->crop = 227;
    a->pad = 113;
    a->first = 0;
  }
  g.plane.y.cells = kHeight / 32 + 1;
  g.plane.x.cells = kWidth / 32 + 1;
  g.original_width = g.prepared_width = kWidth;
  g.original_height = g.prepared_height = kHeight;
  g.original_spacing_mm = g.prepared_spacing_mm = 0.2;
  return g;
}

data::DatasetImage two_masses() {
  data::DatasetImage meta;
  meta.id = "bench";
  for (double c : {400.0, 900.0}) {
    data::DatasetLesion l;
    l.type = "mass";
    l.has_circle = true;
    l.circle_x = c / 2;
    l.circle_y = c;
    l.circle_radius = 50;
    meta.lesions.push_back(l);
  }
  return meta;
}

void score_image(benchmark::State& state) {
  const ImageGeometry g = geometry();
  const data::DatasetImage meta = two_masses();
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(0, 1);
  std::vector<float> map(size_t(g.plane.y.cells * g.plane.x.cells));  // (cells_y, cells_x)
  for (float& v : map) v = u(rng);
  const std::vector<uint8_t> regions(size_t(kWidth) * kHeight, data::kBreast);  // (h, w)
  int64_t roi_pixels = 0;
  for (auto _ : state) {
    const ScoredMap s = score_map(map, g, detect(map, g, regions, 10, 0.5), meta);
    roi_pixels = s.roi[0].pixels + s.roi[1].pixels;
    benchmark::DoNotOptimize(s.image_max);
  }
  state.counters["roi_pixels"] = double(roi_pixels);
}

void dog_image(benchmark::State& state) {
  const ImageGeometry g = geometry();
  data::PreparedImage p;
  p.width = kWidth;
  p.height = kHeight;
  p.spacing_mm = 0.2;
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> u(0, 1);
  p.pixels.resize(size_t(kWidth) * kHeight);  // (h, w)
  for (float& v : p.pixels) v = u(rng);
  p.regions.assign(p.pixels.size(), data::kBreast);
  for (auto _ : state) benchmark::DoNotOptimize(dog_map(p, g).data());
}

void part_metrics(benchmark::State& state) {
  const int images = int(state.range(0));
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0, 1);
  std::vector<ImageRecord> records(static_cast<size_t>(images));  // (images)
  for (int i = 0; i < images; ++i) {
    ImageRecord& r = records[size_t(i)];
    r.patient = "P" + std::to_string(i / 4);
    r.breast_cm2 = 150;
    const int masses = i % 3 == 0 ? 0 : 1 + i % 2;
    for (int m = 0; m < masses; ++m) {
      r.masses.push_back(MassInfo{"", 5 + 20 * u(rng), 1 + i % 5});
      r.cnn.on_mask.mass_best.push_back(u(rng) < 0.8f ? u(rng) : -1.f);
      r.cnn.roi.push_back(RoiStats{u(rng), u(rng) / 2, 100});
    }
    for (int k = 0; k < 10; ++k) r.cnn.on_mask.false_positives.push_back(u(rng) * u(rng));
    r.cnn.on_box = r.cnn.on_mask;
    r.cnn.image_max = u(rng);
  }
  ScoringOptions o;
  o.operating_threshold = 0.5;
  for (auto _ : state) benchmark::DoNotOptimize(scorer_metrics(records, false, o).size());
  state.counters["images"] = images;
}

BENCHMARK(score_image)->Name("score/image")->Unit(benchmark::kMillisecond);
BENCHMARK(dog_image)->Name("dog/image")->Unit(benchmark::kMillisecond);
BENCHMARK(part_metrics)->Name("metrics")->Arg(100)->Arg(400)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
