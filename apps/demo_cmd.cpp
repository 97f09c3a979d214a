// massmap demo: the whole search on synthetic mammograms, end to end on a CPU in minutes: synthesise a training
// set and a separate test set, split the training patients into train and validation, train a patch classifier,
// choose the operating threshold on validation, then evaluate on the test set as massmap evaluate does (FROC with
// intervals, the DoG baseline, the HTML report).
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "apps/cli.h"
#include "apps/search/evaluate.h"
#include "apps/search/trainer.h"
#include "base/atomic_file.h"
#include "base/errors.h"
#include "base/interrupt.h"
#include "data/patches.h"
#include "engine/checkpoint_metadata.h"
#include "engine/device.h"

namespace massmap::cli {

const char* const demo_usage = R"(usage: massmap demo [options]

The paper's search, end to end, on synthetic mammograms (synth-v1): writes a training set and, with another seed,
a held-out test set; splits the training patients into train and validation; trains a mass / no-mass patch
classifier (massmap train); chooses the operating threshold on the validation images; maps every test image in
one fully convolutional pass and evaluates the map's peaks as massmap evaluate does, beside a difference-of-Gaussians
detector: the headline is the fraction of test masses found at 0.9 false positives per image, with its patient-level
bootstrap interval. Prints each stage's time; everything lands in the run folder
(train/ is a massmap train run folder, evaluation/ a massmap evaluate folder with report.html).

options:
  --out DIR           run folder (default runs/demo; with --reference runs/demo-reference)
  --net NAME          mapnet_bn_fine, mapnet_bn, mapnet, smallnet, alexnet, vgg16 or googlenet (default
                      mapnet_bn_fine: no padding, so its map is exactly the classifier slid over the image;
                      batch-normalised; a stride-2 stem for 0.2 mm)
  --width W           multiplies every layer's channels but the classifier's (default 1)
  --iterations N      training iterations (default 3600 for mapnet_bn_fine in bfloat16, 2600 in float32, 2000 for
                      mapnet_bn, else 1000; --reference 9600 for both batch-normalised nets, else 8000)
  --batch B           batch size (default 64 for the batch-normalised nets, else 32)
  --lr X              base learning rate (default: the net's preset)
  --spacing MM        pixel spacing of patches and maps (default 0.2 for mapnet_bn_fine, 0.4 for the other
                      mapnets and smallnet, else 0.2)
  --patch-size N      patch side in pixels at that spacing (default 128 for mapnet_bn_fine, 64 for the other
                      mapnets and smallnet, else 256)
  --input-size S      the net's input, the crop cut from each patch (default 93 for mapnet_bn_fine, 47 for the
                      other mapnets, 48 for smallnet, else the net's)
  --hard-negatives F  mine the training images' strongest false peaks after this fraction of the iterations
                      and train on them too (default 0: never)
  --train-images N    synthetic training images, 4 per patient (default 480; --reference 960)
  --test-images N     synthetic test images (default 120: about 170 masses)
  --seed S            seed of the data, the split and the training (default 1)
  --device D          cpu, cuda or simt (default: cuda when a GPU is present, else cpu)
  --precision P       the cpu's convolutions: auto (default: bfloat16 where the CPU has AMX tile units or
                      AVX512-BF16, else float32), float32 or bfloat16 (operands rounded to bfloat16, float32
                      sums)
  --resume FILE       continue the training from its checkpoint (the synthetic sets are reused)
  --reference         the ceiling run: twice the training images (960) and more iterations (9600 for the
                      batch-normalised nets), the same test set (about 25 minutes on 2 CPU cores with mapnet_bn_fine
                      in bfloat16, 40 in float32; Ctrl-C and --resume run it in chunks)
  --toy               the blob-versus-bar task instead (massmap demo --toy --help)
)";

extern const char* const toy_demo_usage;
int run_toy_demo(Args& args);

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Runs `massmap synth` into `dir` unless it already holds the same set (a resumed demo reuses it).
void synthesise(const std::string& dir, int64_t images, uint64_t seed) {
  const std::string info = dir + "/synth.json";
  if (std::filesystem::exists(info)) {
    std::ifstream in(info);
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_object() && j.value("seed", uint64_t(0)) == seed && j.value("images", int64_t(0)) == images &&
        j.value("defaults", false))
      return;
  }
  Args a({"--out", dir, "--images", std::to_string(images), "--seed", std::to_string(seed)}, synth_usage);
  run_synth(a);
}

// The demo's settings, chosen by measurement on this benchmark (README, "The main job"): mapnet_bn_fine, whose map
// is exactly the classifier slid over the image, on 93-pixel crops of 128-pixel patches at 0.2 mm (19 mm of tissue
// around each cell; its stride-2 stem keeps the cost near mapnet_bn's at 0.4 mm), 2600 iterations of 64 on 480
// training images in float32, 3600 in bfloat16 (its step is about 1.4x quicker on AMX tile units, 1.3x on
// AVX512-BF16: the same time on 2 cores, or a little more), with the
// patch sampling below. Hard-negative mining is there to try (--hard-negatives); it lowered mapnet's headline and
// left mapnet_bn's within the noise.
search::TrainSettings demo_train_settings(const std::string& net, bool reference, const std::string& precision) {
  search::TrainSettings s = search::default_train_settings(net);
  const bool bn = net == "mapnet_bn" || net == "mapnet_bn_fine";
  const int64_t fine = precision == "bfloat16" ? 3600 : 2600;
  s.iterations = reference ? (bn ? 9600 : 8000) : net == "mapnet_bn_fine" ? fine : net == "mapnet_bn" ? 2000 : 1000;
  s.precision = precision;
  s.net_options.batch = bn ? 64 : 32;
  // Batches built between steps on the net's own threads rather than by loader threads beside them: the same batches,
  // 3% more patches per second on 2 cores (385 -> 397 in alternating runs), as the loader no longer takes a core from a
  // step mid-way.
  s.workers = 0;
  if (net == "mapnet_bn" || net == "mapnet" || net == "smallnet") {
    s.preprocess.spacing_mm = 0.4;
    s.patches.size = 64;
    s.net_options.input = net == "smallnet" ? 48 : 47;
    s.augmentation.output = s.net_options.input;
    s.augmentation.max_translate = 4;
  }
  if (net == "mapnet_bn_fine") {  // the same 19 mm of tissue at half the spacing
    s.preprocess.spacing_mm = 0.2;
    s.patches.size = 128;
    s.net_options.input = 93;
    s.augmentation.output = s.net_options.input;
  }
  if (bn) {
    // Positives centred on mass pixels within a pixel, negatives anywhere their centre is clear of the ROIs, and
    // eight times as many of both as mapnet's default: the patches it learns from look like the map's cells.
    s.augmentation.random_crop = false;
    s.augmentation.max_translate = 1;
    s.patches.clear_of_roi = "centre";
    s.patches.per_mass = 64;
    s.patches.per_normal_image = 96;
  }
  return s;  // hard negatives keep train's defaults: off, 8 peaks per image at 5 mm when --hard-negatives asks
}

}  // namespace

int run_demo(Args& a) {
  if (a.flag("toy")) return run_toy_demo(a);
  if (a.help()) {
    std::printf("%s", demo_usage);
    return 0;
  }
  const bool reference = a.flag("reference");
  const std::string out = a.str("out", reference ? "runs/demo-reference" : "runs/demo");
  const std::string net = a.str("net", "mapnet_bn_fine");
  // Fail before minutes of synthesis: a device that is not here, a precision it cannot run.
  const std::string device = a.str("device", "");
  const Device chosen = device.empty() ? default_device() : parse_device(device);
  search::TrainSettings s = demo_train_settings(net, reference, use_conv_precision(a.str("precision", "auto"), chosen));
  s.net_options.width = a.number("width", 1);
  s.iterations = a.integer("iterations", s.iterations, 1, metadata::kMaxIteration);
  s.net_options.batch = a.integer32("batch", s.net_options.batch, 1, nets::kMaxBatch);
  const double lr = a.number("lr", 0);
  s.preprocess.spacing_mm = a.number("spacing", s.preprocess.spacing_mm);
  s.patches.size = a.integer32("patch-size", s.patches.size, 1, data::kMaxPatchSide);
  const int64_t input = a.integer("input-size", 0, 1, data::kMaxPatchSide);
  if (input < 0) throw UsageError("--input-size must be positive");
  if (input > 0) s.net_options.input = int(input), s.augmentation.output = int(input);
  s.hard_negatives.at = a.number("hard-negatives", s.hard_negatives.at, 0, 0.99);
  const int64_t train_images = a.integer("train-images", reference ? 960 : 480, 1, 100000),
                test_images = a.integer("test-images", 120, 1, 100000);
  s.seed = uint64_t(a.integer("seed", 1, 0, INT64_MAX));
  const std::string resume = a.str("resume", "");
  a.finish();
  if (lr < 0) throw UsageError("--lr must be positive");
  if (lr > 0) s.solver.lr.base_lr = float(lr);
  if (train_images < 8 || test_images < 1)
    throw UsageError("--train-images takes at least 8 (2 patients) and --test-images at least 1");
  // Nor a checkpoint that is not there.
  if (!resume.empty() && !std::filesystem::exists(resume)) throw BadInput(resume + ": no such checkpoint to resume");
  // The learning rate falls tenfold twice, at fractions of the run whatever its length (the presets' steps are sized
  // for their own schedules): at 70% and 90% by default, which read higher than 40% and 80% in three paired runs
  // (two seeds, two summation orders; each gain inside one seed's spread) with a slightly better classifier every
  // time (README, "The main job"); the reference run keeps 40% and 80%, the schedule its figures were measured with.
  const int64_t first_step = std::max<int64_t>(1, reference ? s.iterations * 2 / 5 : s.iterations * 7 / 10);
  const int64_t second_step = std::max(first_step + 1, reference ? s.iterations * 4 / 5 : s.iterations * 9 / 10);
  s.solver.lr.type = "multistep";
  s.solver.lr.stepvalues = {first_step, second_step};
  s.solver.lr.gamma = 0.1f;
  // Two validations, half-way and at the end (four for the reference run's longer curve): each costs about 12 s of
  // the default run's 10 minutes (16k patches), time its training uses better.
  s.validate_every = std::max<int64_t>(1, s.iterations / (reference ? 4 : 2));
  s.checkpoint_every = std::max<int64_t>(1, s.iterations / (reference ? 100 : 10));
  s.solver.max_iter = s.iterations;
  s.validate();

  make_output_dir(out);
  std::vector<std::pair<std::string, double>> stages;  // (stage, seconds)
  auto stage = [&](const char* name, const std::function<void()>& work) {
    std::fprintf(stderr, "== %s\n", name);
    const auto t = std::chrono::steady_clock::now();
    work();
    stages.push_back({name, seconds_since(t)});
  };
  const std::string train_dir = out + "/synth-train", test_dir = out + "/synth-test";
  stage("synthesise the training set", [&] { synthesise(train_dir, train_images, s.seed); });
  stage("synthesise the test set", [&] { synthesise(test_dir, test_images, s.seed + 1000003); });

  search::TrainJob job;
  job.settings = s;
  job.dataset.format = "manifest";
  job.dataset.root = train_dir;
  job.split_file = out + "/split.json";
  job.cache_dir = out + "/cache";
  job.out = out + "/train";
  job.device = chosen;
  job.resume = resume;
  job.stop = &interrupt_flag();
  stage("split the training patients", [&] {
    // Train and validation only: the test set is the other synthetic set.
    const data::Split split = data::make_split(data::read_dataset(job.dataset), s.seed, 0.85, 0.15);
    data::write_split(job.split_file, split);
  });
  search::TrainResult trained;
  stage("prepare and train", [&] { trained = search::train(job); });

  nlohmann::json metrics;
  std::vector<std::string> warnings;
  const std::string evaluation = out + "/evaluation";
  stage("evaluate on the test set", [&] {
    data::DatasetOptions test_options;
    test_options.format = "manifest";
    test_options.root = test_dir;
    const data::Dataset test = data::read_dataset(test_options);
    // Every test patient in the part "test": the test set is a set of its own.
    const std::string test_split = out + "/test-split.json";
    data::write_split(test_split, data::make_split(test, s.seed, 0, 0));
    search::EvaluateOptions eo;
    eo.localize.device = job.device;
    eo.weights = trained.checkpoint;
    eo.split_file = test_split;
    eo.part = "test";
    eo.out = evaluation;
    eo.baseline_dog = true;
    eo.seed = s.seed;
    metrics = search::evaluate(test, eo, &warnings);
  });
  for (const std::string& w : warnings) std::fprintf(stderr, "note: %s\n", w.c_str());

  nlohmann::json summary = {{"metrics", evaluation + "/metrics.json"},
                            {"report", evaluation + "/report.html"},
                            {"patch_accuracy", {{"validation", trained.validation.accuracy}}},
                            {"validation_operating_point", trained.operating_point.to_json()},
                            {"device", device_name(chosen)},
                            {"precision", s.precision},
                            {"stages", nlohmann::json::array()}};
  double total = 0;
  for (const auto& [name, seconds] : stages) {
    summary["stages"].push_back({{"stage", name}, {"seconds", seconds}});
    total += seconds;
  }
  write_file_atomic(out + "/demo.json", [&](std::ostream& o) { o << summary.dump(2) << "\n"; });
  std::printf("\n%s on %s, convolutions in %s, %lld iterations\nstages:\n", net.c_str(), device_name(chosen),
              s.precision.c_str(), (long long)s.iterations);
  for (const auto& [name, seconds] : stages) std::printf("  %-32s %7.1f s\n", name.c_str(), seconds);
  std::printf("  %-32s %7.1f s\n", "total", total);
  if (trained.validation.patches > 0)
    std::printf("\npatch accuracy (validation): %.1f%% of %lld patches\n", 100 * trained.validation.accuracy,
                (long long)trained.validation.patches);
  else
    std::printf("\npatch accuracy (validation): no validation patches (too few training patients)\n");
  auto headline = [](const nlohmann::json& m) {
    const nlohmann::json& h = m.at("headline");
    char text[160];
    if (h.at("ci95").is_array())
      std::snprintf(text, sizeof text, "%.1f%% (95%% interval %.1f-%.1f%%)", 100 * h.at("sensitivity").get<double>(),
                    100 * h["ci95"][0].get<double>(), 100 * h["ci95"][1].get<double>());
    else
      std::snprintf(text, sizeof text, "%.1f%%", 100 * h.at("sensitivity").get<double>());
    return std::string(text);
  };
  std::printf("headline: %s of the test masses found at 0.9 false positives per image\n", headline(metrics).c_str());
  if (metrics.contains("baseline_dog") && metrics["baseline_dog"].is_object())
    std::printf("baseline (difference of Gaussians, no learning): %s\n", headline(metrics["baseline_dog"]).c_str());
  // Which masses are found: synth-v1's subtlety runs from 1 (faint) to 5 (obvious), as the DDSM's rating.
  if (metrics.contains("breakdowns") && metrics["breakdowns"].contains("subtlety")) {
    std::printf("found by subtlety (1 faint .. 5 obvious):");
    for (const auto& [level, cell] : metrics["breakdowns"]["subtlety"].items())
      std::printf("  %s: %lld/%lld", level.c_str(), (long long)cell.value("found", int64_t(0)),
                  (long long)cell.value("masses", int64_t(0)));
    std::printf("\n");
  }
  std::printf("report: %s/report.html\nrun folder: %s (train/: the training run; evaluation/: maps and metrics)\n",
              evaluation.c_str(), out.c_str());
  return 0;
}

}  // namespace massmap::cli
