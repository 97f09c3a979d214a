#include "apps/search/trainer.h"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include "apps/search/hard_negatives.h"
#include "apps/search/operating_point.h"
#include "apps/search/sha256.h"
#include "base/atomic_file.h"
#include "base/errors.h"
#include "base/progress.h"
#include "data/manifest.h"
#include "data/patch_loader.h"
#include "engine/checkpoint.h"
#include "engine/checkpoint_metadata.h"
#include "engine/device.h"
#include "engine/executor.h"
#include "engine/map_geometry.h"
#include "engine/passes.h"
#include "engine/safetensors.h"
#include "engine/solver.h"
#include "nets/import.h"

namespace massmap::search {

namespace {

namespace fs = std::filesystem;

// Where the data came from, without paths: "synth-v1" for the generator's manifests, else the format.
std::string dataset_identity(const data::DatasetOptions& options, const data::Dataset& dataset) {
  if (dataset.format == "manifest") {
    const std::string csv = options.csv.empty() ? (fs::path(options.root) / "manifest.csv").string() : options.csv[0];
    const std::string generator = data::read_manifest(csv).metadata_value("generator");
    if (!generator.empty()) return generator;
  }
  return dataset.format;
}

data::PatchSet patch_set(const data::Dataset& ds, const data::Split& split, const std::string& part,
                         const TrainJob& job) {
  data::PatchSetOptions o;
  o.preprocess = job.settings.preprocess;
  o.patches = job.settings.patches;
  o.cache_dir = job.cache_dir;
  o.seed = job.settings.seed;
  o.threads = job.settings.threads;
  o.progress = job.progress;
  o.skip_bad = job.dataset.skip_bad;
  const std::vector<int> indices = data::split_indices(ds, split, part);
  data::PatchSet set = data::build_patch_set(ds, indices, o);
  for (const data::SkippedRow& s : set.skipped)
    std::fprintf(stderr, "skipped %s: %s\n", s.where.c_str(), s.reason.c_str());
  std::fprintf(stderr, "%s patches: %s\n", part.c_str(), set.summary().c_str());
  return set;
}

// p(mass) of every patch of `set`, centre-cropped, dropout off; batches padded with patch 0 (not counted).
std::vector<float> predict_patches(Executor& ex, const data::PatchSet& set, data::LoaderConfig config) {
  config.shuffle = false;
  config.augment = false;
  config.cell_grid = {};
  const int64_t n = int64_t(set.patches.size()), batch = config.batch_size, side = config.augmentation.output;
  const int64_t batches = (n + batch - 1) / batch;
  std::vector<int64_t> order(size_t(batches * batch), 0);  // (batches * batch) patch per position
  for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
  std::vector<float> p_mass(static_cast<size_t>(n));                                    // (patches)
  const Tensor labels = Tensor::from({batch}, std::vector<float>(size_t(batch), 0.f));  // (B) unused by p
  data::Batch b;
  for (int64_t index = 0; index < batches; ++index) {
    data::make_batch(set, config, order, 0, index, &b, omp_get_max_threads());
    ex.set_input("data", Tensor::from({batch, 1, side, side}, b.images));
    ex.set_input("label", labels);
    ex.forward(RunContext{});                  // dropout off
    const Tensor prob = ex.read("loss.prob");  // (B, 2)
    for (int64_t j = 0; j < batch && index * batch + j < n; ++j) p_mass[size_t(index * batch + j)] = prob.at(j * 2 + 1);
  }
  return p_mass;
}

PatchMetrics evaluate(Executor& classifier, const data::PatchSet& set, const data::LoaderConfig& config) {
  if (set.patches.empty()) return {};
  std::vector<int> labels;  // (patches)
  for (const data::PatchSpec& s : set.patches) labels.push_back(int(s.label));
  return patch_metrics(predict_patches(classifier, set, config), labels);
}

// Dense training's graph: the classifier over tiles of `tile` pixels, and the cells' grid on them.
struct DenseGraph {
  Graph graph;
  data::LoaderConfig::CellGrid grid;
};

DenseGraph dense_graph(const Graph& classifier, int64_t crop, int64_t tile) {
  const MapGeometry geo =
      map_geometry(with_input_size(run_passes(classifier, {"for_inference", "convolutionalize"}), tile, tile));
  if ((tile - crop) % geo.x.stride != 0 || geo.x.field_size() != crop)
    throw BadConfig("dense training: tiles of " + std::to_string(tile) + " pixels must be the net's crop (" +
                    std::to_string(crop) + ") plus a multiple of its map stride (" + std::to_string(geo.x.stride) +
                    "), on a net whose map cells are exactly its crops (mapnet, mapnet4)");
  DenseGraph d;
  d.graph = convolutionalize_for_training(classifier, tile, tile);
  d.grid.first = geo.x.crop_centre(0);
  d.grid.stride = int(geo.x.stride);
  d.grid.cells = int(geo.x.cells);
  return d;
}

// The training executor's parameters into the classifier's (the same names and elements, maybe other shapes).
void copy_parameters(Executor& from, Executor& to) {
  for (ValueId p : to.graph().params()) {
    const Value& v = to.graph().value(p);
    to.set_input(v.name, from.read(v.name).reshape(v.shape));
  }
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// `how` says where they came from, for the log line.
void add_hard_negatives(data::PatchSet& set, const std::vector<data::PatchSpec>& mined, const std::string& how) {
  set.patches.insert(set.patches.end(), mined.begin(), mined.end());
  std::fprintf(stderr, "hard negatives: %zu %s, added to the training patches (%zu in all)\n", mined.size(),
               how.c_str(), set.patches.size());
}

// Keeps the lines of RUN/log.jsonl up to `iteration` (a resumed run rewrites what the interrupted one logged after
// it) and returns the losses logged after iteration `since`, in order, so the resumed run's next report averages
// the same losses as a run that never stopped.
std::vector<double> truncate_log(const std::string& path, int64_t iteration, int64_t since) {
  std::vector<double> losses;
  if (!fs::exists(path)) return losses;
  std::istringstream in(read_text(path));
  std::string kept, line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object()) continue;
    const int64_t it = j.value("iteration", int64_t(0));
    if (it > iteration) continue;
    kept += line + "\n";
    if (it > since) losses.push_back(j.value("loss", 0.0));
  }
  write_file_atomic(path, kept.data(), kept.size());
  return losses;
}

std::string format_number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

// Maps every validation image with the checkpoint as `massmap localize` would, judges the detections, and picks
// the threshold that keeps false positives per image at or below kOperatingFpPerImage.
OperatingPoint validation_operating_point(const data::Dataset& ds, const data::Split& split,
                                          const std::string& checkpoint, const TrainJob& job) {
  LocalizeOptions lo;
  lo.device = job.device;
  Localizer localizer = Localizer::from_checkpoint(checkpoint, lo);
  const std::vector<int> indices = data::split_indices(ds, split, "validation");
  std::vector<JudgedImage> judged;
  try {
    judged = map_and_judge(localizer, ds, indices, job.dataset.skip_bad, job.progress, "threshold");
  } catch (const BadInput& e) {
    throw BadInput(std::string("choosing the operating threshold on the validation images (the trained weights are ") +
                   "saved in " + checkpoint + "): " + e.what() + " (--skip-bad leaves it out)");
  }
  return choose_threshold(judged, kOperatingFpPerImage);
}

}  // namespace

TrainResult train(const TrainJob& job) {
  const TrainSettings& s = job.settings;
  s.validate();
  use_conv_precision(s.precision, job.device);  // before any work: bfloat16 where it cannot run is an error
  const auto [input_h, input_w] = nets::input_size(s.net, s.net_options);
  if (input_h != input_w || (!s.dense && input_h != s.augmentation.output) || input_h > s.augmentation.output)
    throw BadConfig("training crops are square and the net's input: " + std::to_string(input_h) + "x" +
                    std::to_string(input_w) + " against a crop of " + std::to_string(s.augmentation.output));
  make_output_dir(job.out);
  const std::string config_path = job.out + "/config.json", log_path = job.out + "/log.jsonl",
                    metrics_path = job.out + "/metrics.json", checkpoint = job.out + "/checkpoint.safetensors",
                    best_path = job.out + "/best.safetensors";
  const nlohmann::json config = s.to_json();
  write_file_atomic(config_path, [&](std::ostream& o) { o << config.dump(2) << "\n"; });

  // Data: the split's parts, prepared through the cache, their patches sampled.
  const data::Dataset ds = data::read_dataset(job.dataset);
  const data::Split split = data::read_split(job.split_file);
  data::PatchSet train_set = patch_set(ds, split, "train", job);
  const data::PatchSet validation_set = patch_set(ds, split, "validation", job);
  const data::PatchSet test_set = patch_set(ds, split, "test", job);
  if (int64_t(train_set.patches.size()) < s.net_options.batch)
    throw BadInput("the training part gives " + std::to_string(train_set.patches.size()) +
                   " patches, fewer than one batch of " + std::to_string(s.net_options.batch) +
                   " (more images, --per-mass, or a smaller --batch)");
  const double positive_fraction =
      double(train_set.count(data::PatchLabel::mass)) / double(std::max<size_t>(train_set.patches.size(), 1));

  // The net, its solver, and where it starts.
  nets::NetOptions net_options = s.net_options;
  net_options.seed = s.seed;
  // batch_norm + relu as one kernel each way: bit-identical to the graph as built, two passes over y fewer.
  Graph graph = run_passes(nets::build_net(s.net, net_options), {"fuse_batch_norm_relu"});
  const std::map<std::string, std::string> net_meta = graph.metadata;
  ExecutorOptions eo;
  eo.training = true;
  eo.device = job.device;
  // Dense training steps a fully convolutional form of the classifier; validation runs the classifier itself.
  std::unique_ptr<Executor> classifier;
  data::LoaderConfig::CellGrid grid;
  if (s.dense) {
    DenseGraph d = dense_graph(graph, input_h, s.augmentation.output);
    grid = d.grid;
    ExecutorOptions ce = eo;
    ce.training = false;
    classifier = std::make_unique<Executor>(std::move(graph), ce);
    graph = std::move(d.graph);
  }
  Executor executor(std::move(graph), eo);
  Executor& validator = s.dense ? *classifier : executor;
  SolverConfig solver_config = s.solver;
  solver_config.max_iter = s.iterations;
  Solver solver(executor, solver_config);
  solver.initialise_parameters(s.seed);
  if (!job.init.empty()) {
    nets::ImportReport report;
    const TensorFile imported =
        nets::import_weights(read_safetensors(job.init), executor.graph(), s.seed, job.init, &report);
    for (const auto& [name, tensor] : imported.tensors) executor.set_input(name, tensor);
    for (const std::string& n : report.summed)
      std::fprintf(stderr, "init: %s summed over the colour channels\n", n.c_str());
    for (const std::string& n : report.replaced)
      std::fprintf(stderr, "init: %s initialised afresh (new classes)\n", n.c_str());
    for (const std::string& n : report.dropped) std::fprintf(stderr, "init: %s dropped (not in this net)\n", n.c_str());
    std::fprintf(stderr, "init: %zu tensors copied from %s\n", report.copied.size(), job.init.c_str());
  }
  nlohmann::json metrics = {{"validations", nlohmann::json::array()}};
  std::optional<PatchMetrics> last_validation;  // of the current weights, when the last step validated them
  double best_accuracy = -1;
  double loss_sum = 0;  // training losses since the last validation
  int64_t loss_count = 0;
  if (!job.resume.empty()) {
    const TensorFile head = read_safetensors(job.resume);
    for (const char* key : {"builder", "channels", "classes", "input", "input_width", "width", "aux"}) {
      const auto a = head.metadata.find(key), b = net_meta.find(key);
      const std::string theirs = a == head.metadata.end() ? "(none)" : a->second;
      const std::string mine = b == net_meta.end() ? "(none)" : b->second;
      if (theirs != mine)
        throw BadInput(job.resume + ": a checkpoint with " + key + " " + theirs + " cannot continue a run with " + key +
                       " " + mine);
    }
    load_checkpoint(job.resume, executor, &solver);
    if (solver.iteration() > s.iterations)
      throw BadConfig(job.resume + " is at iteration " + std::to_string(solver.iteration()) + ", past --iterations " +
                      std::to_string(s.iterations));
    const int64_t reported = solver.iteration() / s.validate_every * s.validate_every;
    for (double loss : truncate_log(log_path, solver.iteration(), reported)) loss_sum += loss, ++loss_count;
    if (fs::exists(metrics_path)) {  // kept whole: the validations up to the resume point
      const nlohmann::json old = nlohmann::json::parse(read_text(metrics_path), nullptr, false);
      if (old.is_object() && old.contains("validations"))
        for (const nlohmann::json& v : old["validations"])
          if (v.value("iteration", int64_t(0)) <= solver.iteration()) {
            metrics["validations"].push_back(v);
            best_accuracy = std::max(best_accuracy, v["validation"].value("accuracy", -1.0));
          }
    }
    std::fprintf(stderr, "resumed from %s at iteration %lld\n", job.resume.c_str(), (long long)solver.iteration());
  } else {
    write_file_atomic(log_path, "", 0);
  }

  // Nothing run-specific: a resumed run and a straight one write the same bytes.
  char prior[32];
  std::snprintf(prior, sizeof prior, "%.6f", positive_fraction);
  const std::map<std::string, std::string> extra = {{metadata::class_names, R"(["no mass","mass"])"},
                                                    {metadata::preprocess, s.preprocess.to_json().dump()},
                                                    {metadata::patch_size, std::to_string(s.patches.size)},
                                                    {metadata::positive_fraction, prior},
                                                    {metadata::dataset, dataset_identity(job.dataset, ds)},
                                                    {metadata::split_sha256, sha256_of_file(job.split_file)},
                                                    {"seed", std::to_string(s.seed)},
                                                    {"precision", s.precision}};

  data::LoaderConfig lc;
  lc.batch_size = s.net_options.batch;
  lc.workers = s.workers;
  lc.seed = s.seed;
  lc.augmentation = s.augmentation;
  lc.cell_grid = grid;
  data::LoaderConfig validation_lc = lc;  // the classifier's centre crops
  validation_lc.augmentation.output = int(input_h);
  const int64_t start = solver.iteration();
  // Hard negatives join the set after iteration mine_at; batches then count from there over the larger set.
  const int64_t mine_at = s.hard_negatives.iteration(s.iterations);
  const std::string mined_path = job.out + "/hard_negatives.json";
  int64_t phase_start = 0;
  if (mine_at > 0 && start > mine_at) {
    add_hard_negatives(train_set, read_hard_negatives(mined_path, train_set), "read back from " + mined_path);
    phase_start = mine_at;
  }
  auto make_loader = [&] {
    const int64_t per_epoch = int64_t(train_set.patches.size()) / lc.batch_size;
    const int64_t at = solver.iteration() - phase_start;
    return std::make_unique<data::PatchLoader>(train_set, lc, at / per_epoch, at % per_epoch);
  };
  std::unique_ptr<data::PatchLoader> loader = make_loader();
  const int64_t side = s.augmentation.output, batch = lc.batch_size;

  std::ofstream log(log_path, std::ios::app);
  Progress progress("train", s.iterations);
  const auto began = std::chrono::steady_clock::now();
  auto last = began;
  while (solver.iteration() < s.iterations) {
    if (job.stop && job.stop->load()) {
      save_checkpoint(checkpoint, executor, &solver, extra);
      throw Interrupted("stopped at iteration " + std::to_string(solver.iteration()) + "; checkpoint saved to " +
                        checkpoint + " (continue with --resume " + checkpoint + ")");
    }
    if (solver.iteration() == mine_at) {
      // From the saved weights, so a run resumed here mines exactly what a straight run mines.
      save_checkpoint(checkpoint, executor, &solver, extra);
      loader.reset();  // its workers read the set
      LocalizeOptions lo;
      lo.device = job.device;
      lo.nms_radius_mm = s.hard_negatives.nms_radius_mm;
      Localizer localizer = Localizer::from_checkpoint(checkpoint, lo);
      const std::vector<data::PatchSpec> mined =
          mine_hard_negatives(localizer, train_set, s.hard_negatives.per_image, job.progress);
      write_hard_negatives(mined_path, train_set, mined);
      add_hard_negatives(train_set, mined, "peaks clear of every lesion");
      phase_start = mine_at;
      loader = make_loader();
    }
    const data::Batch b = loader->next();
    executor.set_input("data", Tensor::from({batch, 1, side, side}, b.images));
    if (s.dense) {
      executor.set_input("label", Tensor::from({batch, grid.cells, grid.cells}, b.cell_labels));
    } else {
      std::vector<float> labels(b.labels.begin(), b.labels.end());  // (B)
      executor.set_input("label", Tensor::from({batch}, labels));
    }
    const int64_t it = solver.iteration();
    double loss = 0;
    try {
      loss = solver.step();
    } catch (const NumericalError&) {
      char lr[32];
      std::snprintf(lr, sizeof lr, "%g", solver.config().lr.rate(it));
      throw NumericalError("training diverged at iteration " + std::to_string(it + 1) +
                           ": the loss is not finite (learning rate " + lr + "); lower the learning rate with --lr. " +
                           (fs::exists(checkpoint) ? checkpoint + " holds the last good state"
                                                   : std::string("No checkpoint was written yet")));
    }
    loss_sum += loss;
    ++loss_count;
    const auto now = std::chrono::steady_clock::now();
    const double step_seconds = std::chrono::duration<double>(now - last).count();
    last = now;
    const nlohmann::json line = {{"iteration", it + 1},
                                 {"epoch", b.epoch},
                                 {"loss", loss},
                                 {"lr", solver.config().lr.rate(it)},
                                 {"images_per_s", step_seconds > 0 ? double(batch) / step_seconds : 0.0},
                                 {"seconds", std::chrono::duration<double>(now - began).count()}};
    log << line.dump() << "\n" << std::flush;
    if (job.progress) {
      char status[96];
      std::snprintf(status, sizeof status, "loss %.4f, %.0f images/s", loss, line["images_per_s"].get<double>());
      progress.update(solver.iteration(), status);
    }
    // Validations at multiples of validate_every only: where a run stops must not change what it records.
    const bool last_step = solver.iteration() == s.iterations;
    if (solver.iteration() % s.validate_every == 0) {
      if (s.dense) copy_parameters(executor, validator);
      const PatchMetrics v = evaluate(validator, validation_set, validation_lc);
      if (last_step) last_validation = v;
      metrics["validations"].push_back({{"iteration", solver.iteration()},
                                        {"train_loss", loss_sum / double(loss_count)},
                                        {"validation", v.to_json()}});
      loss_sum = 0, loss_count = 0;
      write_file_atomic(metrics_path, [&](std::ostream& o) { o << metrics.dump(2) << "\n"; });
      if (!job.progress || !Progress::terminal())
        std::fprintf(stderr, "iteration %lld: validation accuracy %.4f, loss %.4f, ROC AUC %.4f\n",
                     (long long)solver.iteration(), v.accuracy, v.loss, v.auc);
      if (v.accuracy > best_accuracy) {
        best_accuracy = v.accuracy;
        save_checkpoint(best_path, executor, &solver, extra);
      }
    }
    if (solver.iteration() % s.checkpoint_every == 0 || last_step)
      save_checkpoint(checkpoint, executor, &solver, extra);
  }
  if (job.progress) progress.finish();

  TrainResult result;
  result.iteration = solver.iteration();
  if (s.dense) copy_parameters(executor, validator);
  // The last step's validation already measured these weights (a run resumed at its end validates them here).
  result.validation = last_validation ? *last_validation : evaluate(validator, validation_set, validation_lc);
  result.test = evaluate(validator, test_set, validation_lc);
  result.checkpoint = checkpoint;

  // The operating threshold, from the validation images mapped as localize maps them.
  const OperatingPoint op = validation_operating_point(ds, split, checkpoint, job);
  std::map<std::string, std::string> with_threshold = extra;
  char threshold[32];
  std::snprintf(threshold, sizeof threshold, "%.9g", op.threshold);
  with_threshold[metadata::threshold] = threshold;
  with_threshold[metadata::threshold_rule] =
      "false positives per image <= " + format_number(kOperatingFpPerImage) + " on the validation images";
  save_checkpoint(checkpoint, executor, &solver, with_threshold);
  result.operating_point = op;
  metrics["final"] = {{"iteration", result.iteration},
                      {"validation", result.validation.to_json()},
                      {"test", result.test.to_json()},
                      {"operating_point", op.to_json()}};
  write_file_atomic(metrics_path, [&](std::ostream& o) { o << metrics.dump(2) << "\n"; });
  return result;
}

}  // namespace massmap::search
