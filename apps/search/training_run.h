#pragma once
// What the checkpoint's training run left beside it, when the checkpoint still sits in its run folder (massmap
// train's RUN/checkpoint.safetensors or best.safetensors): the loss curve from log.jsonl and validation accuracy
// from metrics.json for the report, and the patch accuracy on the evaluated part (the paper's Table I) when
// training measured it on the same split (the checkpoint's split_sha256 equals the split file's) and the checkpoint
// is the run's final one. Nothing here is required: a checkpoint elsewhere just has no curve.
#include <nlohmann/json.hpp>
#include <string>

namespace massmap::search {

constexpr int kCurvePoints = 200;  // the loss curve is averaged down to at most this many points

// {"run_dir", "iteration": [...], "loss": [...], "validation": [{iteration, accuracy}]}; null without log.jsonl.
nlohmann::json training_curve(const std::string& checkpoint);

// {"accuracy", "roc_auc", "loss", "patches", "source"} of the part's patches from the run's metrics.json, or
// {"value": null, "reason": why not}.
nlohmann::json training_patch_accuracy(const std::string& checkpoint, const std::string& split_file,
                                       const std::string& part);

}  // namespace massmap::search
