#pragma once
// Everything that defines a training run of `massmap train`, as one value: the net, the data's preparation,
// sampling and augmentation, the solver, the schedule of reports and checkpoints. It is what RUN/config.json
// holds; a --config file overrides any part of it by the same keys (unknown keys are an error).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "apps/search/hard_negatives.h"
#include "data/patches.h"
#include "data/preprocess.h"
#include "engine/solver.h"
#include "nets/registry.h"

namespace massmap::search {

struct TrainSettings {
  std::string net = "alexnet";
  nets::NetOptions net_options;  // channels 1 and classes 2 for mammograms; input 0: the net's nominal crop
  data::PreprocessConfig preprocess;
  data::PatchConfig patches;
  data::AugmentConfig augmentation;     // output: the net's input size
  SolverConfig solver;                  // the net's preset, then overrides
  HardNegativeSettings hard_negatives;  // off unless hard_negatives.at > 0
  int64_t iterations = 1000;            // in all, also on resume
  int64_t validate_every = 200;         // validation metrics (and best.safetensors) every this many iterations
  int64_t checkpoint_every = 500;       // checkpoint.safetensors every this many iterations (and at the end)
  uint64_t seed = 1;                    // initialisation, patch sampling, batch order, augmentation, dropout
  int workers = 2;                      // loader threads
  int threads = 2;                      // threads preparing images
  // The convolutions' arithmetic on the cpu device (engine/device.h use_conv_precision): float32, or bfloat16 on a CPU
  // with AMX tile units or AVX512-BF16 (operands rounded, float32 sums: about 1.3-1.4x the steps per second of
  // mapnet_bn_fine).
  std::string precision = "float32";
  // true: trained fully convolutionally on augmentation.output-sized tiles centred like the patches, every map cell
  // labelled by the sampler's rule (a patch centred on a mass mask is a mass), so each step trains the classifier
  // on every cell's crop (net_options.input) at once. The weights are the classifier's, as with false.
  bool dense = false;

  nlohmann::json to_json() const;
  // Merges `overrides` (the keys of to_json(), nested objects merged key by key) and validates the result;
  // BadConfig naming `where` and the key on an unknown key or a bad value.
  void apply_json(const nlohmann::json& overrides, const std::string& where);
  void validate() const;

 private:
  void apply_merged(const nlohmann::json& merged, const std::string& where);
};

// The defaults for net `name`: its solver preset, its crop, the paper's 256-pixel patches at 0.2 mm (smallnet: its
// 24-pixel crop from 32-pixel patches at 0.8 mm, where a 5-30 mm mass spans 6-38 pixels).
TrainSettings default_train_settings(const std::string& name);

}  // namespace massmap::search
