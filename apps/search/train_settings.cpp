#include "apps/search/train_settings.h"

#include "base/errors.h"
#include "base/worker_threads.h"
#include "data/json_fields.h"
#include "nets/registry.h"

namespace massmap::search {

namespace {

nlohmann::json net_options_json(const TrainSettings& s) {
  return {{"channels", s.net_options.channels}, {"classes", s.net_options.classes}, {"input", s.net_options.input},
          {"width", s.net_options.width},       {"batch", s.net_options.batch},     {"aux", s.net_options.aux}};
}

}  // namespace

nlohmann::json TrainSettings::to_json() const {
  return {{"net", net},
          {"net_options", net_options_json(*this)},
          {"preprocess", preprocess.to_json()},
          {"patches", patches.to_json()},
          {"augmentation", augmentation.to_json()},
          {"solver", solver_config_to_json(solver)},
          {"hard_negatives", hard_negatives.to_json()},
          {"dense", dense},
          {"iterations", iterations},
          {"validate_every", validate_every},
          {"checkpoint_every", checkpoint_every},
          {"seed", seed},
          {"workers", workers},
          {"threads", threads},
          {"precision", precision}};
}

void TrainSettings::apply_json(const nlohmann::json& overrides, const std::string& where) {
  if (!overrides.is_object()) throw BadConfig(where + ": expected a JSON object");
  nlohmann::json merged = to_json();
  for (const auto& [key, value] : overrides.items())
    if (!merged.contains(key))
      throw BadConfig(where + ": unknown key '" + key +
                      "' (keys: net_options, preprocess, patches, augmentation, solver, hard_negatives, dense, "
                      "iterations, validate_every, "
                      "checkpoint_every, seed, workers, threads, precision)");
  if (overrides.contains("net"))
    throw BadConfig(where + ": 'net' is chosen on the command line (--net), not in a configuration file");
  merged.merge_patch(overrides);
  TrainSettings next = *this;  // *this changes only when every value is good
  next.apply_merged(merged, where);
  *this = next;
}

void TrainSettings::apply_merged(const nlohmann::json& merged, const std::string& where) {
  try {
    const nlohmann::json& n = merged.at("net_options");
    for (const auto& [key, value] : n.items())
      if (!net_options_json(*this).contains(key))
        throw BadConfig(where + ": net_options: unknown key '" + key +
                        "' (channels, classes, input, width, batch, aux)");
    namespace f = data::json_fields;  // get<int>() would wrap 4294967297 to 1
    net_options.channels = f::integer(n.at("channels"), "net_options", "channels");
    net_options.classes = f::integer(n.at("classes"), "net_options", "classes");
    net_options.input = f::integer(n.at("input"), "net_options", "input");
    net_options.width = n.at("width").get<double>();
    net_options.batch = f::integer(n.at("batch"), "net_options", "batch");
    net_options.aux = n.at("aux").get<bool>();
    dense = f::boolean(merged.at("dense"), where, "dense");
    iterations = merged.at("iterations").get<int64_t>();
    validate_every = merged.at("validate_every").get<int64_t>();
    checkpoint_every = merged.at("checkpoint_every").get<int64_t>();
    seed = merged.at("seed").get<uint64_t>();
    workers = data::json_fields::integer(merged.at("workers"), where, "workers");
    threads = data::json_fields::integer(merged.at("threads"), where, "threads");
    precision = merged.at("precision").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    throw BadConfig(where + ": " + e.what());
  }
  preprocess = data::PreprocessConfig::from_json(merged.at("preprocess"));
  patches = data::PatchConfig::from_json(merged.at("patches"));
  augmentation = data::AugmentConfig::from_json(merged.at("augmentation"));
  solver = solver_config_from_json(merged.at("solver"), where + ".solver");
  hard_negatives = HardNegativeSettings::from_json(merged.at("hard_negatives"));
  solver.max_iter = iterations;  // one count of iterations, the run's
  validate();
}

void TrainSettings::validate() const {
  auto positive = [](int64_t v, const char* what) {
    if (v < 1) throw BadConfig(std::string(what) + " must be at least 1, got " + std::to_string(v));
  };
  positive(iterations, "iterations");
  positive(validate_every, "validate_every");
  positive(checkpoint_every, "checkpoint_every");
  positive(net_options.batch, "batch");
  positive(threads, "threads");
  if (precision != "float32" && precision != "bfloat16")
    throw BadConfig("precision is float32 or bfloat16, got '" + precision + "'");
  if (workers < 0) throw BadConfig("workers must be >= 0, got " + std::to_string(workers));
  if (threads > kMaxWorkerThreads || workers > kMaxWorkerThreads)
    throw BadConfig("threads and workers take at most " + std::to_string(kMaxWorkerThreads) + ", got " +
                    std::to_string(threads) + " and " + std::to_string(workers));
  if (net_options.batch > nets::kMaxBatch)
    throw BadConfig("batch takes at most " + std::to_string(nets::kMaxBatch) + ", got " +
                    std::to_string(net_options.batch));
  if (net_options.classes != 2)
    throw BadConfig("a mass / no-mass classifier has 2 classes, got " + std::to_string(net_options.classes));
  if (net_options.channels != 1)
    throw BadConfig("mammograms have 1 channel, got " + std::to_string(net_options.channels) +
                    " (pretrained colour weights go through --init)");
  preprocess.validate();
  patches.validate();
  augmentation.validate();
  if (dense && hard_negatives.at > 0)
    throw BadConfig("hard_negatives with dense training: every cell of a tile is already a labelled sample");
  if (augmentation.output > patches.size)
    throw BadConfig("the net's crop (" + std::to_string(augmentation.output) + ") is larger than the patches (" +
                    std::to_string(patches.size) + "): raise patches.size (--patch-size)");
}

TrainSettings default_train_settings(const std::string& name) {
  const nets::NetInfo& info = nets::find_net(name);
  TrainSettings s;
  s.net = name;
  s.net_options.channels = 1;
  s.net_options.classes = 2;
  s.net_options.batch = 32;
  s.solver = info.solver();
  s.augmentation.output = info.nominal_input;
  if (name == "smallnet") {
    s.patches.size = 32;
    s.preprocess.spacing_mm = 0.8;
    s.augmentation.max_translate = 2;
  }
  return s;
}

}  // namespace massmap::search
