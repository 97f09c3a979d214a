// loader_bench: how fast the data path feeds training, on synthetic mammograms (synth-v1) written to disk as
// 16-bit PNGs at 0.1 mm and prepared at 0.2 mm, as a DDSM scan is (at a smaller field).
//
//   prepare/uncached  decode the PNG, segment, resample, normalise: what every image costs once (then the cache has
//                     it); reported as images/s.
//   patches/workers:W the background loader over the mapped cache: 256x256 patches cut, augmented (rotation,
//                     scale, flips, crop to 227) and packed into batches of 64, W worker threads. Reported as
//                     patches/s, patches/s per core, and the cores needed to feed AlexNet at 5,000 images/s (a
//                     GPU-class training rate).
// Baseline, measured in the same run: `uncached`, a loader without the cache, which decodes and prepares the
// image for every patch it cuts (the per-patch cost of reading each sample from its file); vs_uncached is our
// per-core rate over it. The counters are explained in bench/README.md.
//
// Validation first: the loader's first batch must equal make_batch()'s single-threaded definition bit for bit.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "bench/bench_support.h"
#include "data/image_io.h"
#include "data/patch_loader.h"
#include "data/synth.h"

namespace {

using namespace massmap::data;
namespace fs = std::filesystem;

constexpr int kImages = 12;
constexpr int kBatch = 64;

struct Fixture {
  fs::path dir;
  Dataset dataset;
  PatchSetOptions options;
  PatchSet set;
  double uncached_seconds_per_patch = 0;

  Fixture() {
    dir = fs::temp_directory_path() / ("massmap-loader-bench-" + std::to_string(::getpid()));
    fs::create_directories(dir / "masks");
    SynthParams params;
    params.width = 832, params.height = 1024, params.spacing_mm = 0.1;  // 83 x 102 mm, prepared at 0.2 mm
    dataset.format = "manifest";
    for (int i = 0; i < kImages; ++i) {
      const SynthImage s = synth_image(params, 7, i);
      DatasetImage meta;
      meta.id = s.name();
      meta.path = (dir / (meta.id + ".png")).string();
      meta.patient_id = s.patient_id;
      meta.laterality = std::string(1, s.laterality);
      meta.view = s.view;
      meta.spacing_mm = s.spacing_mm;
      Image image;
      image.width = s.width, image.height = s.height, image.bits = 12, image.pixels = s.pixels;
      write_png16(meta.path, image);
      for (size_t k = 0; k < s.lesions.size(); ++k) {
        const SynthLesion& l = s.lesions[k];
        DatasetLesion lesion;
        lesion.type = lesion_type_name(l.type);
        lesion.has_box = true;
        lesion.box = l.box;
        if (!l.mask.empty()) {
          lesion.mask_path = (dir / "masks" / (meta.id + "_" + std::to_string(k) + ".png")).string();
          std::vector<uint8_t> mask(l.mask.size());  // (height, width) 0/255
          for (size_t j = 0; j < mask.size(); ++j) mask[j] = l.mask[j] ? 255 : 0;
          write_png8(lesion.mask_path, s.width, s.height, 1, mask);
        }
        meta.lesions.push_back(lesion);
      }
      dataset.images.push_back(meta);
    }
    options.cache_dir = (dir / "cache").string();
    options.seed = 3;
    options.threads = 2;
    options.progress = false;
    std::vector<int> all(kImages);
    for (int i = 0; i < kImages; ++i) all[size_t(i)] = i;
    set = build_patch_set(dataset, all, options);
    std::fprintf(stderr, "loader_bench: %s\n", set.summary().c_str());
    // The baseline: every patch decodes and prepares its image again.
    size_t next = 0;
    uncached_seconds_per_patch = bench::mean_seconds_per_call(
        [&] {
          const PatchSpec& spec = set.patches[next++ % set.patches.size()];
          const DatasetImage& meta = dataset.images[size_t(spec.image)];
          const PreparedImage p = prepare_image(read_image(meta.path), meta, options.preprocess);
          benchmark::DoNotOptimize(extract_patch(p, spec.cx, spec.cy, set.patch_size).data());
        },
        1.0);
    validate();
  }
  ~Fixture() { fs::remove_all(dir); }

  LoaderConfig loader_config(int workers) const {
    LoaderConfig c;
    c.batch_size = kBatch;
    c.workers = workers;
    c.queue_batches = 2 * std::max(workers, 1);
    c.seed = 11;
    return c;
  }

  void validate() const {
    PatchLoader loader(set, loader_config(2));
    const Batch got = loader.next();
    Batch want;
    make_batch(set, loader_config(0), epoch_order(int64_t(set.patches.size()), 11, 0), 0, 0, &want);
    if (got.images != want.images || got.labels != want.labels) {
      std::fprintf(stderr, "loader_bench: the loader's first batch differs from make_batch's: not timing a wrong loader\n");
      std::exit(1);
    }
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

void BM_prepare_uncached(benchmark::State& state) {
  Fixture& f = fixture();
  size_t i = 0;
  for (auto _ : state) {
    const DatasetImage& meta = f.dataset.images[i++ % f.dataset.images.size()];
    const PreparedImage p = prepare_image(read_image(meta.path), meta, f.options.preprocess);
    benchmark::DoNotOptimize(p.pixels.data());
  }
  state.counters["images_per_s"] = benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_prepare_uncached)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_patches(benchmark::State& state) {
  Fixture& f = fixture();
  const int workers = int(state.range(0));
  PatchLoader loader(f.set, f.loader_config(workers));
  loader.next();  // the workers are started and the first pages of the cache are touched
  const double start = bench::now_seconds();
  for (auto _ : state) benchmark::DoNotOptimize(loader.next().images.data());
  const double seconds = bench::now_seconds() - start;
  const double rate = double(state.iterations()) * kBatch / seconds;  // patches per second
  const double per_core = rate / std::max(workers, 1);
  state.counters["patches_per_s"] = rate;
  state.counters["per_core"] = per_core;
  state.counters["cores_for_5000"] = 5000.0 / per_core;  // AlexNet training at a GPU-class 5,000 images/s
  state.counters["uncached_per_s"] = 1.0 / f.uncached_seconds_per_patch;
  state.counters["vs_uncached"] = per_core * f.uncached_seconds_per_patch;
}
// workers 0: batches made on the consuming thread (one core, no queue); 1 and 2: background workers.
BENCHMARK(BM_patches)->ArgName("workers")->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
