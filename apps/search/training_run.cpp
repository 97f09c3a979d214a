#include "apps/search/training_run.h"

#include <filesystem>
#include <fstream>
#include <vector>

#include "apps/search/sha256.h"
#include "engine/checkpoint_metadata.h"
#include "engine/safetensors.h"

namespace massmap::search {

namespace {

std::string run_dir(const std::string& checkpoint) {
  const std::filesystem::path dir = std::filesystem::path(checkpoint).parent_path();
  return dir.empty() ? std::string(".") : dir.string();
}

nlohmann::json read_json_or_null(const std::string& path) {
  std::ifstream in(path);
  if (!in) return nullptr;
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception&) {
    return nullptr;
  }
}

}  // namespace

nlohmann::json training_curve(const std::string& checkpoint) {
  const std::string dir = run_dir(checkpoint);
  std::ifstream log(dir + "/log.jsonl");
  if (!log) return nullptr;
  std::vector<double> iteration, loss;  // (logged iterations) each
  for (std::string line; std::getline(log, line);) {
    try {
      const nlohmann::json j = nlohmann::json::parse(line);
      if (!j.contains("iteration") || !j.contains("loss") || !j["loss"].is_number()) continue;
      iteration.push_back(j["iteration"].get<double>());
      loss.push_back(j["loss"].get<double>());
    } catch (const nlohmann::json::exception&) {
      continue;  // a line cut by an interrupted run
    }
  }
  if (iteration.empty()) return nullptr;
  // Averaged in equal runs of consecutive iterations, so a long run's curve stays small.
  const size_t per = (iteration.size() + kCurvePoints - 1) / kCurvePoints;
  nlohmann::json out = {{"run_dir", dir}, {"iteration", nlohmann::json::array()}, {"loss", nlohmann::json::array()}};
  for (size_t k = 0; k < iteration.size(); k += per) {
    const size_t end = std::min(iteration.size(), k + per);
    double sum = 0;
    for (size_t i = k; i < end; ++i) sum += loss[i];
    out["iteration"].push_back(iteration[end - 1]);
    out["loss"].push_back(sum / double(end - k));
  }
  out["validation"] = nlohmann::json::array();
  const nlohmann::json metrics = read_json_or_null(dir + "/metrics.json");
  if (metrics.is_object() && metrics.contains("validations") && metrics["validations"].is_array())
    for (const auto& v : metrics["validations"])
      if (v.contains("iteration") && v.contains("validation") && v["validation"].contains("accuracy"))
        out["validation"].push_back({{"iteration", v["iteration"]}, {"accuracy", v["validation"]["accuracy"]}});
  return out;
}

nlohmann::json training_patch_accuracy(const std::string& checkpoint, const std::string& split_file,
                                       const std::string& part) {
  auto none = [](const std::string& why) { return nlohmann::json{{"value", nullptr}, {"reason", why}}; };
  const std::string dir = run_dir(checkpoint);
  const nlohmann::json metrics = read_json_or_null(dir + "/metrics.json");
  if (!metrics.is_object() || !metrics.contains("final")) return none("no training metrics.json beside the checkpoint");
  const nlohmann::json& final = metrics["final"];
  if (!final.contains(part) || !final[part].contains("accuracy"))
    return none("the training run measured no patches of the part '" + part + "'");
  const auto meta = read_safetensors(checkpoint).metadata;
  const auto split = meta.find(metadata::split_sha256);
  if (split == meta.end() || split->second != sha256_of_file(split_file))
    return none("the checkpoint was trained on another split than " + split_file);
  const auto iteration = meta.find(metadata::iteration);
  if (iteration == meta.end() || !final.contains("iteration") ||
      iteration->second != std::to_string(final["iteration"].get<int64_t>()))
    return none("the checkpoint is not the run's final one, which the run's patch metrics describe");
  const nlohmann::json& p = final[part];
  return {{"accuracy", p["accuracy"]},
          {"roc_auc", p.value("roc_auc", nlohmann::json())},
          {"loss", p.value("loss", nlohmann::json())},
          {"patches", p.value("patches", nlohmann::json())},
          {"source", dir + "/metrics.json (final." + part + ", measured by training)"}};
}

}  // namespace massmap::search
