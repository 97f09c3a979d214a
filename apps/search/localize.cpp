#include "apps/search/localize.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <set>

#include "apps/search/peaks.h"
#include "base/errors.h"
#include "data/regions.h"
#include "engine/checkpoint.h"
#include "engine/checkpoint_metadata.h"
#include "engine/passes.h"
#include "nets/registry.h"

namespace massmap::search {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The checkpoint's metadata resolved into a SearchModel; what it lacks becomes a documented default and a note.
SearchModel read_model(const TensorFile& file, const std::string& name, const LocalizeOptions& options) {
  namespace md = metadata;
  const auto& m = file.metadata;
  SearchModel model;
  model.net = md::require(m, md::builder, name, "localize");
  auto pre = m.find(md::preprocess);
  if (pre != m.end()) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(pre->second);
    } catch (const nlohmann::json::exception& e) {
      throw BadInput(name + ": __metadata__ preprocess is not JSON: " + e.what());
    }
    model.preprocess = data::PreprocessConfig::from_json(j);
  } else {
    model.notes.push_back(name +
                          ": no preprocessing in its metadata (a nets init checkpoint): the defaults, spacing 0.2 "
                          "mm, percentiles 1 and 99 of the breast mapped to 0 and 1");
  }
  model.preprocess.default_spacing_mm = 0;  // a file without spacing needs one given, never a guess
  auto threshold = m.find(md::threshold);
  if (options.threshold >= 0) {
    model.threshold = options.threshold;
    model.threshold_source = "option";
  } else if (threshold != m.end()) {
    model.threshold = md::number(threshold->second, md::threshold, name, 0, 1);
    model.threshold_source = "checkpoint";
  } else {
    model.threshold = kDefaultThreshold;
    model.threshold_source = "default";
    model.notes.push_back(name + ": no operating threshold in its metadata: findings at probability >= 0.5");
  }
  auto patch = m.find(md::patch_size);
  if (patch != m.end())
    model.patch_size = int(md::integer(patch->second, md::patch_size, name, 1, nets::kMaxInputSide));
  const int classes = nets::net_options_from_metadata(m).classes;
  auto names = m.find(md::class_names);
  if (names != m.end()) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(names->second);
    } catch (const nlohmann::json::exception& e) {
      throw BadInput(name + ": __metadata__ class_names is not JSON: " + e.what());
    }
    model.mass_class = -1;
    if (j.is_array())
      for (size_t k = 0; k < j.size(); ++k)
        if (j[k].is_string() && j[k].get<std::string>() == "mass") model.mass_class = int(k);
    if (model.mass_class < 0)
      throw BadInput(name + ": __metadata__ class_names " + names->second + " has no class \"mass\"");
  } else if (classes == 2) {
    model.mass_class = 1;
    model.notes.push_back(name + ": no class_names in its metadata: class 1 of 2 taken as mass");
  } else {
    throw BadInput(name + ": a net of " + std::to_string(classes) +
                   " classes without class_names in its metadata: which class is a mass is unknown");
  }
  return model;
}

}  // namespace

Localizer::Localizer(Graph fcn, std::function<void(Executor&)> load_parameters, SearchModel model,
                     const LocalizeOptions& options)
    : model_(std::move(model)), options_(options) {
  if (!(options_.nms_radius_mm >= 0)) throw BadConfig("the NMS radius must be >= 0 mm");
  if (options_.threshold >= 0) {
    model_.threshold = options_.threshold;
    model_.threshold_source = "option";
  }
  MapOptions mo;
  mo.device = options_.device;
  mo.shift = options_.shift;
  mo.bucket_cells = options_.bucket_cells;
  mo.views = options_.views;
  runner_ = std::make_unique<MapRunner>(std::move(fcn), std::move(load_parameters), mo);
  if (runner_->channels() != 1)
    throw BadInput(model_.net + ": a net of " + std::to_string(runner_->channels()) +
                   " input channels; mammograms are grey (1 channel)");
}

Localizer Localizer::from_checkpoint(const std::string& path, const LocalizeOptions& options) {
  return from_weights(std::make_shared<const TensorFile>(read_safetensors(path)), path, options);
}

Localizer Localizer::from_weights(std::shared_ptr<const TensorFile> weights, const std::string& name,
                                  const LocalizeOptions& options) {
  SearchModel model = read_model(*weights, name, options);
  nets::NetOptions o = nets::net_options_from_metadata(weights->metadata);
  o.batch = 1;
  o.with_loss = true;
  std::set<std::string> ignorable;  // the training graph's parameters that inference drops
  {
    const Graph training = nets::build_net(model.net, o);
    for (ValueId p : training.params()) ignorable.insert(training.value(p).name);
  }
  Graph fcn = run_passes(nets::build_net(model.net, o),
                         {"for_inference", "convolutionalize", "fuse_conv_bias_relu", "fuse_batch_norm_relu"});
  auto ignored = std::make_shared<std::vector<std::string>>();
  auto load = [weights, name, ignorable, ignored](Executor& ex) {
    *ignored = load_inference_weights(name, *weights, ex, ignorable);
  };
  Localizer loc(std::move(fcn), load, std::move(model), options);
  loc.weights_ = weights;
  // Compile at the crop once: another net's weights or a mis-shaped tensor fail here, before any image is read.
  loc.runner_->executor(loc.runner_->graph().crop[0], loc.runner_->graph().crop[1]);
  // Solver history is in every training checkpoint and never read by inference: only dropped parameters (an
  // auxiliary head) are worth a note.
  std::string list;
  int listed = 0;
  for (const std::string& n : *ignored)
    if (n.rfind("history/", 0) != 0) list += (listed++ ? ", " : "") + n;
  if (listed > 0)
    loc.model_.notes.push_back(name + ": " + std::to_string(listed) +
                               " tensors not used for inference, ignored: " + list);
  return loc;
}

MapResult Localizer::map_image(const data::Image& image, double spacing_mm, const std::string& id) {
  data::DatasetImage meta;
  meta.id = id;
  meta.spacing_mm = spacing_mm;
  return map_image(image, meta);
}

MapResult Localizer::map_image(const data::Image& image, const data::DatasetImage& meta) {
  const double source = image.pixel_spacing_mm > 0 ? image.pixel_spacing_mm : meta.spacing_mm;
  if (!(source > 0))
    throw BadInput(meta.id +
                   ": the file carries no pixel spacing: give it (--spacing MM, or a dataset's "
                   "pixel_spacing_mm); it is never guessed");
  const auto start = std::chrono::steady_clock::now();
  data::PreparedImage p = data::prepare_image(image, meta, model_.preprocess);
  const double prepare_seconds = seconds_since(start);
  MapResult r = map_prepared(std::move(p), image.width, image.height, source);
  r.prepare_seconds = prepare_seconds;
  return r;
}

MapResult Localizer::map_prepared(data::PreparedImage p, int original_width, int original_height,
                                  double original_spacing_mm) {
  const std::vector<int64_t>& crop = runner_->graph().crop;
  if (p.height < crop[0] || p.width < crop[1])
    throw BadInput(p.id + ": " + std::to_string(p.width) + "x" + std::to_string(p.height) + " pixels at " +
                   std::to_string(p.spacing_mm) + " mm after preparation, smaller than the net's crop " +
                   std::to_string(crop[1]) + "x" + std::to_string(crop[0]));
  MapResult r;
  const auto start = std::chrono::steady_clock::now();
  PlaneMap pm = runner_->run(p.pixels, p.height, p.width, p.air);
  r.forward_seconds = seconds_since(start);
  if (model_.mass_class >= pm.classes)
    throw BadInput(model_.net + ": the mass class " + std::to_string(model_.mass_class) + " is beyond the map's " +
                   std::to_string(pm.classes) + " classes");
  r.geometry.plane = pm.geometry;
  r.geometry.original_width = original_width;
  r.geometry.original_height = original_height;
  r.geometry.prepared_width = p.width;
  r.geometry.prepared_height = p.height;
  r.geometry.original_spacing_mm = original_spacing_mm;
  r.geometry.prepared_spacing_mm = p.spacing_mm;
  const size_t cells = size_t(pm.geometry.y.cells * pm.geometry.x.cells);
  r.map.assign(pm.prob.begin() + ptrdiff_t(size_t(model_.mass_class) * cells),
               pm.prob.begin() + ptrdiff_t(size_t(model_.mass_class + 1) * cells));
  r.max_probability = *std::max_element(r.map.begin(), r.map.end());
  r.arena_bytes = pm.arena_bytes;
  r.unshared_bytes = pm.unshared_bytes;
  r.own_bytes = pm.own_bytes;
  r.passes = pm.passes;
  r.detections = detect(r.map, r.geometry, p.regions, options_.nms_radius_mm, model_.threshold);
  r.prepared = std::move(p);
  return r;
}

std::vector<Detection> detect(const std::vector<float>& map, const ImageGeometry& g,
                              const std::vector<uint8_t>& regions, double radius_mm, double threshold) {
  const PlaneAxis &ay = g.plane.y, &ax = g.plane.x;
  std::vector<uint8_t> breast(map.size(), 0);  // (cells_y, cells_x) cell centre on a breast pixel
  for (int64_t i = 0; i < ay.cells; ++i)
    for (int64_t j = 0; j < ax.cells; ++j) {
      const int64_t py = int64_t(std::lround(std::floor(ay.centre(i) + 0.5)));
      const int64_t px = int64_t(std::lround(std::floor(ax.centre(j) + 0.5)));
      if (py < 0 || px < 0 || py >= g.prepared_height || px >= g.prepared_width) continue;
      breast[size_t(i * ax.cells + j)] = regions[size_t(py * g.prepared_width + px)] == data::kBreast;
    }
  const double cell_mm_y = double(ay.stride) * g.prepared_spacing_mm,
               cell_mm_x = double(ax.stride) * g.prepared_spacing_mm;
  const std::vector<Peak> peaks =
      suppress(find_peaks(map, ay.cells, ax.cells, breast), radius_mm, cell_mm_y, cell_mm_x);
  std::vector<Detection> out;
  for (const Peak& pk : peaks) {
    Detection d;
    d.cell_y = pk.y;
    d.cell_x = pk.x;
    d.probability = pk.value;
    d.finding = double(pk.value) >= threshold;
    d.prepared_y = ay.centre(pk.y);
    d.prepared_x = ax.centre(pk.x);
    d.y = g.original_y(d.prepared_y);
    d.x = g.original_x(d.prepared_x);
    d.y_mm = g.mm(d.y);
    d.x_mm = g.mm(d.x);
    // The crop [b, b + crop) in prepared pixels covers original [b s, (b + crop) s) (pixel edges).
    d.crop_y = double(ay.crop_begin(pk.y)) * g.scale_y();
    d.crop_x = double(ax.crop_begin(pk.x)) * g.scale_x();
    d.crop_height = double(ay.crop) * g.scale_y();
    d.crop_width = double(ax.crop) * g.scale_x();
    out.push_back(d);
  }
  return out;
}

}  // namespace massmap::search
