#pragma once
// The search pipeline's first module: a mammogram in, its mass-probability map, the map's geometry on the original
// image and the detections (the map's peaks inside the breast after non-maximum suppression) out, in memory.
// `massmap localize` and `massmap classify` write and print what it returns; training calls it on validation
// images to choose the operating threshold.
//
//   Localizer loc = Localizer::from_checkpoint("model.safetensors", options);
//   MapResult r = loc.map_image(data::read_image(path), /*spacing_mm=*/0.1);
//   r.map (cells_y, cells_x), r.geometry.cell_x(j), r.detections[0].probability, r.max_probability
#include <memory>
#include <string>
#include <vector>

#include "apps/search/geometry.h"
#include "apps/search/map_runner.h"
#include "data/dataset.h"
#include "data/image_io.h"
#include "data/preprocess.h"
#include "engine/safetensors.h"

namespace massmap::search {

constexpr double kDefaultNmsRadiusMm = 10;  // half the median synth-v1 / DDSM mass diameter
constexpr double kDefaultThreshold = 0.5;   // when the checkpoint stores none

struct LocalizeOptions {
  Device device = Device::cpu;
  int shift = 1;          // shift-and-stitch factor (divides the stride)
  int bucket_cells = 4;   // size buckets of the net's input, in strides
  int views = 1;          // mirrored / transposed views averaged into the map: 1, 2, 4 or 8
  double threshold = -1;  // findings at or above it; < 0: the checkpoint's, else 0.5
  double nms_radius_mm = kDefaultNmsRadiusMm;
};

// What the checkpoint says, resolved, and what was assumed where it said nothing.
struct SearchModel {
  std::string net;                    // the builder's name ("alexnet"), or the test graph's
  data::PreprocessConfig preprocess;  // default_spacing_mm forced to 0: an unknown spacing is an error
  double threshold = kDefaultThreshold;
  std::string threshold_source;    // "checkpoint", "default", "option"
  int mass_class = 1;              // the map's channel holding P(mass)
  int patch_size = 0;              // training's patch side in prepared pixels (metadata patch_size); 0: not stored
  std::vector<std::string> notes;  // defaults taken and tensors ignored: for stderr, once
};

struct Detection {
  int64_t cell_y = 0, cell_x = 0;
  float probability = 0;
  bool finding = false;                                            // probability >= the threshold
  double prepared_y = 0, prepared_x = 0;                           // the cell's centre, prepared pixels
  double y = 0, x = 0;                                             // the same in original pixels
  double y_mm = 0, x_mm = 0;                                       // and in mm from the original's top-left corner
  double crop_x = 0, crop_y = 0, crop_width = 0, crop_height = 0;  // the crop it stands for, original pixels
};

struct MapResult {
  data::PreparedImage prepared;  // the image as the net saw it (before padding)
  ImageGeometry geometry;
  std::vector<float> map;                       // (geometry.plane.y.cells, geometry.plane.x.cells) P(mass)
  float max_probability = 0;                    // classify's value: the map's maximum
  std::vector<Detection> detections;            // peaks inside the breast after NMS, by descending probability
  int64_t arena_bytes = 0, unshared_bytes = 0;  // the schedule's activations, shared and unshared
  int64_t own_bytes = 0;                        // parameters, input and map: peak = arena + own
  int passes = 0;
  double prepare_seconds = 0, forward_seconds = 0;
};

class Localizer {
 public:
  // From a checkpoint file (nets init, training): its builder, preprocessing, threshold and class names. BadInput
  // naming the file for another format, another net's weights, a missing builder or a non-grey net.
  static Localizer from_checkpoint(const std::string& path, const LocalizeOptions& options);
  // The same from a checkpoint already in memory; `name` names it in messages.
  static Localizer from_weights(std::shared_ptr<const TensorFile> weights, const std::string& name,
                                const LocalizeOptions& options);
  // Any fully convolutional graph (tests): its parameters set by `load_parameters`.
  Localizer(Graph fcn, std::function<void(Executor&)> load_parameters, SearchModel model,
            const LocalizeOptions& options);

  // Prepares `image` as training did (segmentation, resampling to the training spacing, percentile
  // normalisation), pads it with its air level and maps it. meta gives the id for messages, the laterality and view
  // for segmentation, lesions (ROI boxes carried to the prepared image) and the spacing when the file has none.
  // BadInput naming the image when its spacing is unknown or the prepared image is smaller than the crop.
  MapResult map_image(const data::Image& image, const data::DatasetImage& meta);
  // The same for an image without a dataset entry: spacing_mm is used when the file carries none (0: none known).
  MapResult map_image(const data::Image& image, double spacing_mm, const std::string& id = "image");
  // The map of an image already prepared; original_* describe the source it came from (geometry).
  MapResult map_prepared(data::PreparedImage prepared, int original_width, int original_height,
                         double original_spacing_mm);

  const SearchModel& model() const { return model_; }
  MapRunner& runner() { return *runner_; }
  const LocalizeOptions& options() const { return options_; }

 private:
  std::shared_ptr<const TensorFile> weights_;  // kept for executors compiled later
  SearchModel model_;
  LocalizeOptions options_;
  std::unique_ptr<MapRunner> runner_;
};

// The detections of a map: peaks among cells whose centre falls on breast in the prepared region map, suppressed
// within radius_mm, each marked a finding at or above threshold.
std::vector<Detection> detect(const std::vector<float>& map, const ImageGeometry& geometry,
                              const std::vector<uint8_t>& regions, double radius_mm, double threshold);

}  // namespace massmap::search
