#include "apps/search/evaluate.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "apps/search/baseline_dog.h"
#include "apps/search/outputs.h"
#include "apps/search/overlay.h"
#include "apps/search/patch_eval.h"
#include "apps/search/patch_metrics.h"
#include "apps/search/report_html.h"
#include "apps/search/training_run.h"
#include "base/atomic_file.h"
#include "base/errors.h"
#include "base/interrupt.h"
#include "base/progress.h"
#include "data/image_io.h"
#include "data/patches.h"
#include "data/regions.h"
#include "engine/npy.h"

namespace massmap::search {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

void write_json(const std::string& path, const nlohmann::json& j) {
  write_file_atomic(path, [&](std::ostream& o) { o << j.dump(2) << '\n'; });
}

nlohmann::json scored_json(const ScoredMap& s) {
  nlohmann::json masses = nlohmann::json::array();
  for (size_t m = 0; m < s.roi.size(); ++m)
    masses.push_back({{"best_on_mask", s.on_mask.mass_best[m]},
                      {"best_on_box", s.on_box.mass_best[m]},
                      {"roi_max", s.roi[m].max},
                      {"roi_mean", s.roi[m].mean}});
  return {{"masses", masses},
          {"false_positives", s.on_mask.false_positives},
          {"false_positives_on_box", s.on_box.false_positives},
          {"image_max", s.image_max}};
}

// The report's example candidates, kept while mapping: the `keep` best mass images by their worst mass's best hit
// (a missed mass: -1), earlier images first among ties, and the `keep` worst, later images first among ties.
struct Example {
  float score = 0;
  size_t index = 0;
  MapResult map;
};

void offer(std::vector<Example>* list, bool best, int keep, float score, size_t index, const MapResult& r) {
  auto at = best ? std::find_if(list->begin(), list->end(), [&](const Example& e) { return e.score < score; })
                 : std::find_if(list->begin(), list->end(), [&](const Example& e) { return e.score >= score; });
  if (at - list->begin() >= keep) return;
  list->insert(at, Example{score, index, r});
  if (int(list->size()) > keep) list->pop_back();
}

}  // namespace

std::string folder_name(const std::string& id) {
  std::string s = id;
  for (char& c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) c = '_';
  return s.empty() ? "_" : s;
}

nlohmann::json records_json(const std::vector<ImageRecord>& records, bool with_dog) {
  nlohmann::json list = nlohmann::json::array();
  for (const ImageRecord& r : records) {
    nlohmann::json masses = nlohmann::json::array();
    for (const MassInfo& m : r.masses)
      masses.push_back({{"lesion", m.lesion_id}, {"diameter_mm", m.diameter_mm}, {"subtlety", m.subtlety}});
    nlohmann::json j = {{"id", r.id},
                        {"patient", r.patient},
                        {"density", r.density},
                        {"maps", "maps/" + folder_name(r.id)},
                        {"breast_cm2", r.breast_cm2},
                        {"masses", masses},
                        {"cnn", scored_json(r.cnn)}};
    if (with_dog) j["dog"] = scored_json(r.dog);
    list.push_back(j);
  }
  return list;
}

nlohmann::json evaluate(const data::Dataset& ds, const EvaluateOptions& o, std::vector<std::string>* warnings) {
  const data::Split split = data::read_split(o.split_file);
  const std::vector<int> indices = data::split_indices(ds, split, o.part);
  if (indices.empty())
    throw BadInput(o.split_file + ": the part '" + o.part + "' holds no image of the dataset (" +
                   std::to_string(ds.images.size()) + " images)");
  Localizer loc = Localizer::from_checkpoint(o.weights, o.localize);
  if (warnings) warnings->insert(warnings->end(), loc.model().notes.begin(), loc.model().notes.end());
  OutputInfo info;
  info.checkpoint = o.weights;
  info.model = &loc.model();
  info.nms_radius_mm = o.localize.nms_radius_mm;
  make_output_dir(o.out + "/maps");

  std::vector<ImageRecord> records;  // (images of the part)
  double prepare_s = 0, map_s = 0, scoring_s = 0, dog_s = 0, write_s = 0;
  std::vector<Example> best, worst;  // (<= o.examples) each
  data::PatchConfig patch_config;    // training's sampling, fewer per mass; the crop fits in the patch
  patch_config.per_mass = o.patches_per_mass;
  const std::vector<int64_t>& crop = loc.runner().graph().crop;
  patch_config.size = std::max({loc.model().patch_size, int(crop[0]), int(crop[1])});
  PatchScores patches;
  double patches_s = 0;
  std::map<std::string, std::string> folders;  // maps/ folder -> the image id written there
  std::vector<int> kept;                       // (records) the dataset index of each record
  nlohmann::json skipped = nlohmann::json::array();
  Progress progress("evaluate", int64_t(indices.size()));
  for (size_t k = 0; k < indices.size(); ++k) {
    check_interrupted("after mapping " + std::to_string(k) + " of " + std::to_string(indices.size()) +
                      " images (no metrics.json or report written)");
    const data::DatasetImage& meta = ds.images[size_t(indices[k])];
    // An unreadable image or mask stops the run, or with --skip-bad is left out and listed in metrics.json.
    data::Image image;
    MapResult r;
    std::vector<std::vector<uint8_t>> masks;  // (lesions) (height, width)
    try {
      image = data::read_image(meta.path);
      r = loc.map_image(image, meta);
      masks = lesion_masks(meta, image.width, image.height);
    } catch (const BadInput& e) {
      if (!o.skip_bad) throw;
      skipped.push_back({{"id", meta.id}, {"reason", e.what()}});
      if (warnings) warnings->push_back("skipped " + meta.id + ": " + e.what());
      progress.update(int64_t(k + 1), meta.id);
      continue;
    }
    kept.push_back(indices[k]);
    prepare_s += r.prepare_seconds;
    map_s += r.forward_seconds;

    auto t = std::chrono::steady_clock::now();
    ImageRecord rec;
    rec.id = meta.id;
    rec.patient = meta.patient_id;
    rec.density = meta.density;
    rec.masses = mass_info(meta, masks, r.geometry.original_spacing_mm);
    int64_t breast = 0;
    for (uint8_t code : r.prepared.regions) breast += code == data::kBreast;
    rec.breast_cm2 = double(breast) * r.prepared.spacing_mm * r.prepared.spacing_mm / 100;
    rec.cnn = score_map(r.map, r.geometry, r.detections, meta, masks);
    scoring_s += seconds_since(t);

    t = std::chrono::steady_clock::now();
    const std::string folder = folder_name(meta.id);
    const auto [other, fresh] = folders.emplace(folder, meta.id);
    if (!fresh)
      throw BadInput("images '" + other->second + "' and '" + meta.id + "' would share the folder maps/" + folder +
                     " (characters other than letters, digits, '-', '_' and '.' become '_'): rename one");
    const std::string dir = o.out + "/maps/" + folder;
    make_output_dir(dir);
    const int64_t h = r.geometry.plane.y.cells, w = r.geometry.plane.x.cells;
    info.image = meta.path;
    nlohmann::json mj = map_json(r, info);
    mj["evaluation"] = {{"id", meta.id}, {"patient", meta.patient_id}, {"breast_cm2", rec.breast_cm2}};
    write_npy(dir + "/map.npy", Tensor::from({1, 1, h, w}, r.map));
    write_json(dir + "/map.json", mj);
    write_json(dir + "/detections.json", detections_json(r, info));
    write_s += seconds_since(t);

    t = std::chrono::steady_clock::now();
    if (o.patches_per_mass > 0) score_patches(loc, r.prepared, int(k), patch_config, o.seed, &patches);
    patches_s += seconds_since(t);

    if (o.baseline_dog) {
      t = std::chrono::steady_clock::now();
      MapResult d;  // the baseline's map on the CNN map's cells
      d.geometry = r.geometry;
      d.map = dog_map(r.prepared, r.geometry);
      d.max_probability = *std::max_element(d.map.begin(), d.map.end());
      d.detections = detect(d.map, d.geometry, r.prepared.regions, o.localize.nms_radius_mm, 0.5);
      rec.dog = score_map(d.map, d.geometry, d.detections, meta, masks);
      dog_s += seconds_since(t);
      write_npy(dir + "/dog.npy", Tensor::from({1, 1, h, w}, d.map));
      write_json(dir + "/dog_detections.json", detections_json(d, info));
    }
    if (!rec.masses.empty()) {
      const float score = *std::min_element(rec.cnn.on_mask.mass_best.begin(), rec.cnn.on_mask.mass_best.end());
      offer(&best, true, o.examples, score, k, r);
      offer(&worst, false, o.examples, score, k, r);
    }
    records.push_back(std::move(rec));
    progress.update(int64_t(k + 1), meta.id);
  }
  progress.finish();
  if (records.empty())
    throw BadInput("none of the " + std::to_string(indices.size()) + " images of the part '" + o.part +
                   "' could be read or mapped (all skipped)");

  const auto t_metrics = std::chrono::steady_clock::now();
  ScoringOptions so;
  so.replicates = o.replicates;
  so.seed = o.seed;
  so.operating_threshold = loc.model().threshold;
  nlohmann::json m = scorer_metrics(records, false, so, warnings);
  m["operating_point"]["source"] = loc.model().threshold_source;
  if (o.baseline_dog) {
    ScoringOptions sd = so;
    sd.operating_threshold = -1;
    m["baseline_dog"] = scorer_metrics(records, true, sd, nullptr);
  } else {
    m["baseline_dog"] = nullptr;
  }
  const double metrics_s = seconds_since(t_metrics);

  std::set<std::string> patients;
  int64_t masses = 0, normals = 0, mass_images = 0;
  for (size_t k = 0; k < records.size(); ++k) {
    const data::DatasetImage& meta = ds.images[size_t(kept[k])];
    patients.insert(meta.patient_id);
    normals += meta.lesions.empty();
    masses += int64_t(records[k].masses.size());
    mass_images += !records[k].masses.empty();
  }
  const double n = double(records.size());
  m["counts"] = {{"images", records.size()},   {"patients", patients.size()}, {"masses", masses},
                 {"mass_images", mass_images}, {"normals", normals},          {"skipped", skipped.size()}};
  m["skipped"] = skipped;
  m["patch_accuracy"] = training_patch_accuracy(o.weights, o.split_file, o.part);
  m["training_curve"] = training_curve(o.weights);
  const PatchMetrics pm = patch_metrics(patches.p_mass, patches.labels);
  m["patches"] = {{"accuracy", pm.accuracy},
                  {"roc_auc", pm.auc},
                  {"loss", pm.loss},
                  {"patches", pm.patches},
                  {"mass_patches", pm.true_positive + pm.false_negative},
                  {"size", patch_config.size},
                  {"per_mass", patch_config.per_mass},
                  {"seed", o.seed},
                  {"reliability", reliability(patches.p_mass, patches.labels, kReliabilityBins)},
                  {"p_mass", patches.p_mass},
                  {"label", patches.labels}};
  if (o.patches_per_mass == 0) m["patches"] = nullptr;
  m["parameters"] = {
      {"nms_radius_mm", o.localize.nms_radius_mm},
      {"hit_rule",
       "a detection (a peak of the map, one per plateau, whose cell centre lies on breast, kept by greedy "
       "non-maximum suppression within nms_radius_mm) is a hit on a mass when its cell centre, in original "
       "pixels rounded to the nearest pixel, lies inside that mass's mask (on_box: its loose ROI box); a mass "
       "counts once, at its best detection; a detection inside another lesion only is ignored; every other "
       "detection is a false positive"},
      {"headline_fp_per_image", kHeadlineFpPerImage},
      {"cpm_fp_per_image", std::vector<double>(std::begin(kCpmLevels), std::end(kCpmLevels))},
      {"bootstrap",
       {{"replicates", o.replicates}, {"seed", o.seed}, {"unit", "patient"}, {"interval", "percentile 2.5-97.5"}}},
      {"paper_threshold", kPaperThreshold},
      {"shift", o.localize.shift},
      {"views", o.localize.views},
      {"device", device_name(o.localize.device)},
      {"dog",
       {{"radii_mm", std::vector<double>(std::begin(kDogRadiiMm), std::end(kDogRadiiMm))},
        {"pool_mm", kDogPoolMm},
        {"scale", kDogScale}}}};
  m["source"] = {{"checkpoint", o.weights},
                 {"net", loc.model().net},
                 {"dataset", {{"format", ds.format}, {"root", ds.root}}},
                 {"split_file", o.split_file},
                 {"part", o.part}};
  m["timings"] = {{"prepare_s_per_image", prepare_s / n},
                  {"map_s_per_image", map_s / n},
                  {"scoring_s_per_image", scoring_s / n},
                  {"write_s_per_image", write_s / n},
                  {"dog_s_per_image", dog_s / n},
                  {"patches_s_per_image", patches_s / n},
                  {"metrics_s", metrics_s}};
  const auto t_examples = std::chrono::steady_clock::now();
  std::vector<ReportExample> examples;
  for (const auto& [list, kind] : {std::pair{&best, "best"}, std::pair{&worst, "worst"}})
    for (const Example& c : *list) {
      if (kind == std::string("worst") &&
          std::any_of(best.begin(), best.end(), [&](const Example& b) { return b.index == c.index; }))
        continue;
      const data::DatasetImage& meta = ds.images[size_t(indices[c.index])];
      ReportExample e;
      e.title = std::string(kind) + ": " + meta.id;
      const std::vector<uint8_t> rgb =
          render_overlay(c.map, o.localize.nms_radius_mm, &e.width, &e.height);  // (h, w, 3)
      e.png = data::encode_png8(e.width, e.height, 3, rgb, meta.id + " overlay");
      examples.push_back(std::move(e));
    }
  m["timings"]["examples_s"] = seconds_since(t_examples);
  m["images"] = records_json(records, o.baseline_dog);
  write_json(o.out + "/metrics.json", m);

  write_file_atomic(o.out + "/report.html", [&](std::ostream& os) { os << render_report(m, examples); });
  return m;
}

}  // namespace massmap::search
