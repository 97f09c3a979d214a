#pragma once
// `massmap evaluate`: every image of a split's part mapped as `massmap localize` maps it, the map and its geometry
// saved per image, the detections judged against each mass (scoring.h), and the part's metrics written to
// metrics.json and report.html. With the DoG baseline each image's difference-of-Gaussians map goes through the
// same peaks, NMS, judging and metrics.
//
//   EvaluateOptions o; o.weights = "model.safetensors"; o.split_file = "split.json"; o.out = "eval";
//   nlohmann::json metrics = evaluate(data::read_dataset(dataset_options), o, &warnings);
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/search/localize.h"
#include "apps/search/patch_eval.h"
#include "apps/search/scoring.h"
#include "data/dataset.h"

namespace massmap::search {

struct EvaluateOptions {
  LocalizeOptions localize;
  std::string weights, split_file, part = "test", out;
  bool baseline_dog = false;
  bool skip_bad = false;  // leave out (and list) an image that cannot be read or mapped instead of stopping
  int replicates = kBootstrapReplicates;
  uint64_t seed = 1;
  int examples = 2;                            // the best and the worst mass images shown in the report, each
  int patches_per_mass = kEvalPatchesPerMass;  // patch level: mass patches per mass (as many non-mass); 0: none
};

// Maps, scores and writes DIR/maps/<image>/, DIR/metrics.json and DIR/report.html; returns the metrics. Notes for
// the user (checkpoint defaults, few patients) go to `warnings`. BadInput naming the split file when the part holds
// no image, or the image that failed.
nlohmann::json evaluate(const data::Dataset& dataset, const EvaluateOptions& options,
                        std::vector<std::string>* warnings);

// An image id as a folder name: characters other than letters, digits, '-', '_' and '.' become '_'.
std::string folder_name(const std::string& id);

// The part's per-image records as metrics.json lists them ("images"), from which every number can be recomputed.
nlohmann::json records_json(const std::vector<ImageRecord>& records, bool with_dog);

}  // namespace massmap::search
