#pragma once
// `massmap train` as a library: a patch classifier trained on a dataset's mass / non-mass patches, resumable bit
// for bit, its run folder written as it goes (README, "Training").
#include <atomic>
#include <cstdint>
#include <string>

#include "apps/search/operating_point.h"
#include "apps/search/patch_metrics.h"
#include "apps/search/train_settings.h"
#include "data/dataset.h"
#include "engine/device.h"

namespace massmap::search {

struct TrainJob {
  TrainSettings settings;
  data::DatasetOptions dataset;
  std::string split_file;  // a patient split (massmap data split): train, validation and test parts
  std::string cache_dir;   // prepared images, shared with data patches
  std::string out;         // the run folder
  Device device = Device::cpu;
  std::string init;    // a weights file adapted by nets/import (3 -> 1 channel, new classifier); "" for none
  std::string resume;  // a checkpoint of this net and options to continue from; "" for none
  bool progress = true;
  const std::atomic<bool>* stop = nullptr;  // checked before every step: save a checkpoint and throw Interrupted
};

// The paper's operating point: about 0.9 false positives per image.
constexpr double kOperatingFpPerImage = 0.9;

struct TrainResult {
  int64_t iteration = 0;
  PatchMetrics validation, test;   // centre-cropped patches of those parts at the end
  OperatingPoint operating_point;  // chosen on the validation images, stored in the checkpoint
  std::string checkpoint;
};

// At the end the validation images are mapped (as massmap localize maps them) and the threshold that gives
// kOperatingFpPerImage false positives per image there is stored in the final checkpoint.
// Throws Interrupted (after saving RUN/checkpoint.safetensors) when *stop is set, NumericalError naming the
// iteration and --lr on a NaN or infinite loss (the last checkpoint is left as it was).
TrainResult train(const TrainJob& job);

}  // namespace massmap::search
