// massmap train: a patch classifier (AlexNet, VGG-16, GoogLeNet or smallnet) trained with SGD on a dataset's
// mass / non-mass patches; the work is apps/search/trainer, this file reads the options.
#include <atomic>
#include <climits>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "apps/cli.h"
#include "apps/dataset_args.h"
#include "apps/nets_args.h"
#include "apps/search/trainer.h"
#include "base/atomic_file.h"
#include "base/errors.h"
#include "base/interrupt.h"
#include "base/progress.h"
#include "base/text.h"
#include "base/worker_threads.h"
#include "data/patches.h"
#include "engine/checkpoint_metadata.h"
#include "nets/registry.h"

namespace massmap::cli {

const char* const train_usage =
    R"(usage: massmap train --net NAME DATASET OPTIONS --split-file S.json --cache DIR --out RUN [options]

Trains a mass / no-mass patch classifier with SGD, the paper's first module: the split's train part gives
augmented patches (random crop, translation, rotation, flips, scale, intensity), its validation part centre-cropped
patches to measure on. The solver is the net's published preset (massmap nets show NAME), overridden by --config
and the options below; the effective settings are printed and written to RUN/config.json. RUN/ also receives
log.jsonl (one line per iteration), metrics.json (validation accuracy, loss, ROC AUC and confusion matrix every
--validate-every iterations; patch accuracy on validation and test at the end), checkpoint.safetensors (every
--checkpoint-every iterations and at the end) and best.safetensors (best validation accuracy). Ctrl-C or SIGTERM
saves a checkpoint and exits 130; --resume continues from it and gives the same bytes as a run that never stopped.

options:
  --net NAME            alexnet, vgg16, googlenet, smallnet, mapnet, mapnet4, mapnet_bn or
                        mapnet_bn_fine (required)
  --width W             multiplies every layer's channels but the classifier's (default 1)
  --input-size S        the net's square input, the crop cut from each patch (default: the net's, 227 for alexnet,
                        224 for vgg16 and googlenet, 24 for smallnet, 47 for mapnet)
  --aux                 googlenet's auxiliary heads (loss weight 0.3)
  --split-file FILE     a patient split from massmap data split (required)
  --cache DIR           folder of prepared images, created or reused (required)
  --out DIR             the run folder (required)
  --device D            cpu, cuda or simt (default: cuda when a GPU is present, else cpu)
  --precision P         the cpu's convolutions: float32 (default) or bfloat16 (operands rounded to bfloat16,
                        float32 sums, on AMX or AVX512-BF16: about 1.3-1.4x the steps per second of mapnet_bn_fine)
  --iterations N        SGD iterations in all, also on resume (default 1000)
  --batch B             batch size (default 32)
  --lr X                base learning rate (default: the net's preset)
  --spacing MM          pixel spacing patches are cut at (default 0.2; smallnet 0.8)
  --default-spacing MM  spacing of images that state none (default: an error)
  --patch-size N        patch side at that spacing (default 256; smallnet 32)
  --per-mass N          mass patches per mass (default 8)
  --negative-ratio R    non-mass patches per mass patch on an image with a mass (default 1)
  --per-normal-image N  non-mass patches from every image without a mass (default 0)
  --hard-negatives F    after this fraction of the iterations, map the training images and add each one's
                        strongest peaks clear of every lesion as non-mass patches (default 0: never)
  --hard-negatives-per-image N
                        peaks kept per image (default 8; 5 mm suppression, --config's hard_negatives)
  --validate-every N    validation metrics every N iterations (default 200)
  --checkpoint-every N  a checkpoint every N iterations (default 500)
  --seed S              initialisation, sampling, batch order, augmentation and dropout (default 1)
  --workers N           loader threads (default 2)
  --threads N           threads preparing images (default 2)
  --config FILE         JSON overriding any part of RUN/config.json's settings by its keys (unknown keys: error)
  --init FILE           start from these weights (e.g. converted ImageNet weights): 3-channel first layers are
                        summed to 1 channel, a classifier of another class count is initialised afresh
  --resume FILE         continue from a checkpoint of the same net and options
)";

namespace {

nlohmann::json read_json_file(const std::string& path) {
  const std::vector<char> bytes = read_file_bytes(path);
  try {
    return nlohmann::json::parse(bytes.begin(), bytes.end());
  } catch (const nlohmann::json::exception& e) {
    throw BadInput(path + ": not valid JSON: " + e.what());
  }
}

}  // namespace

int run_train(Args& a) {
  a.set_usage(std::string(train_usage) + "\n" + dataset_options_usage);
  if (a.help()) {
    std::printf("%s", a.usage().c_str());
    return 0;
  }
  const std::string net = a.str("net", "");
  if (net.empty())
    throw UsageError(
        "missing option --net (alexnet, vgg16, googlenet, smallnet, mapnet, mapnet4, mapnet_bn or mapnet_bn_fine)");
  search::TrainSettings s = search::default_train_settings(net);
  search::TrainJob job;
  job.dataset = dataset_options(a);
  job.split_file = a.required("split-file");
  job.cache_dir = a.required("cache");
  job.out = a.required("out");
  const std::string device = a.str("device", "");
  const std::string config_file = a.str("config", "");
  job.init = a.str("init", "");
  job.resume = a.str("resume", "");
  // Options override the configuration file, which overrides the net's defaults.
  nlohmann::json options = nlohmann::json::object();
  auto integer = [&](const char* name, const char* section, const char* key, int64_t lo, int64_t hi) {
    const int64_t v = a.integer(name, INT64_MIN, lo, hi);
    if (v == INT64_MIN) return;
    if (section[0])
      options[section][key] = v;
    else
      options[key] = v;
  };
  auto number = [&](const char* name, const char* section, const char* key) {
    const double v = a.number(name, NAN);
    if (!std::isnan(v)) options[section][key] = v;
  };
  integer("iterations", "", "iterations", 1, metadata::kMaxIteration);
  integer("validate-every", "", "validate_every", 1, metadata::kMaxIteration);
  integer("checkpoint-every", "", "checkpoint_every", 1, metadata::kMaxIteration);
  integer("seed", "", "seed", 0, INT64_MAX);
  integer("workers", "", "workers", 0, kMaxWorkerThreads);
  integer("threads", "", "threads", 1, kMaxWorkerThreads);
  integer("batch", "net_options", "batch", 1, nets::kMaxBatch);
  integer("patch-size", "patches", "size", 1, data::kMaxPatchSide);
  integer("per-mass", "patches", "per_mass", 0, data::kMaxPatchesPerMass);
  integer("per-normal-image", "patches", "per_normal_image", 0, data::kMaxPatchesPerMass);
  number("negative-ratio", "patches", "negative_ratio");
  number("spacing", "preprocess", "spacing_mm");
  number("default-spacing", "preprocess", "default_spacing_mm");
  number("width", "net_options", "width");
  number("hard-negatives", "hard_negatives", "at");
  integer("hard-negatives-per-image", "hard_negatives", "per_image", 1, 10000);
  const double lr = a.number("lr", NAN);
  const int64_t input = a.integer("input-size", 0, 1, data::kMaxPatchSide);
  if (a.flag("aux")) options["net_options"]["aux"] = true;
  const std::string precision = a.str("precision", "");
  if (!precision.empty()) options["precision"] = precision;
  a.finish();
  if (!config_file.empty()) s.apply_json(read_json_file(config_file), config_file);
  if (input != 0) {
    options["net_options"]["input"] = input;
    options["augmentation"]["output"] = input;
  }
  if (!std::isnan(lr)) {
    if (!(lr > 0)) throw UsageError("--lr must be positive, got " + decimal_text(lr));
    options["solver"]["lr_policy"]["base_lr"] = lr;
  }
  s.apply_json(options, "the command line");
  job.settings = s;
  job.device = device.empty() ? default_device() : parse_device(device);
  job.progress = true;
  job.stop = &interrupt_flag();
  std::printf("settings: %s\n", s.to_json().dump().c_str());
  std::fflush(stdout);

  const search::TrainResult r = search::train(job);
  std::printf(
      "patch accuracy after %s: validation %.2f%% (%s, ROC AUC %.3f), test %.2f%% (%s, ROC AUC %.3f)\n"
      "checkpoint: %s\n",
      plural(r.iteration, "iteration").c_str(), 100 * r.validation.accuracy,
      plural(r.validation.patches, "patch", "patches").c_str(), r.validation.auc, 100 * r.test.accuracy,
      plural(r.test.patches, "patch", "patches").c_str(), r.test.auc, r.checkpoint.c_str());
  return 0;
}

}  // namespace massmap::cli
