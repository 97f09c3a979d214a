#pragma once
// Paper-style patch sampling, patient-level splits and augmentation.
//
// Sampling: a patch is a square of PatchConfig::size prepared pixels (default 256 at the configured spacing).
// A `mass` patch is centred on a pixel inside a mass's exact mask; a `non-mass` patch has its centre outside
// every lesion ROI (calcifications too) and does not overlap any of them, and is drawn mostly from breast tissue
// plus stated fractions centred on the breast edge, air and burned-in labels, because whole-image maps see those
// too. Classes are balanced. Every draw is a pure function of (seed, image index, sample index).
//
// Augmentation: a pure function of (seed, epoch, sample index): random crop to the net's input size, translation,
// rotation by any angle, horizontal and vertical flips, scale, small intensity jitter. Thread timing never changes
// a batch, and resume is exact.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/preprocess.h"

namespace massmap::data {

enum class PatchLabel : int { non_mass = 0, mass = 1 };
enum class PatchSource : uint8_t { mass = 0, breast = 1, edge = 2, air = 3, label = 4 };
const char* patch_source_name(PatchSource s);

// Upper bounds of a patch's side and of the patches per mass or normal image: far beyond use (256 and 8 in the
// paper), low enough that a patch set's size cannot wrap a count or ask for terabytes.
constexpr int kMaxPatchSide = 4096;
constexpr int kMaxPatchesPerMass = 10000;

struct PatchConfig {
  int size = 256;                // patch side in prepared pixels
  int per_mass = 8;              // mass patches per mass ROI (roi_types == "mass"); as many negatives balance them
  int per_normal_image = 0;      // negatives from an image without a mass ROI (0 keeps the classes exactly balanced)
  double negative_ratio = 1.0;   // negatives per mass patch on an image with a mass ROI (rounded per image)
  int edge_width = 3;            // pixels: an edge centre lies within this of both air and tissue (breast/pectoral)
  double edge_fraction = 0.10;   // of negatives: centred on the breast edge
  double air_fraction = 0.05;    // of negatives: centred in air
  double label_fraction = 0.05;  // of negatives: centred on a burned-in label (when the image has one)
  // What a negative must keep clear of every ROI box: "patch", the whole patch (the paper's non-mass patches), or
  // "centre", only its centre. With "centre" a negative may show part of a lesion off its centre, as the map's
  // cells beside a mass do, and abnormal images give negatives from their interior, not mostly from the rim.
  std::string clear_of_roi = "patch";
  // Pixels a negative keeps clear beyond that: every ROI box counts as grown by this much on each side, so a
  // "centre" negative is not centred on a mass's rim, where its crop shows most of the mass.
  int clear_margin = 0;
  nlohmann::json to_json() const;
  static PatchConfig from_json(const nlohmann::json& j);
  void validate() const;
};

struct PatchSpec {
  int image = 0;       // index into the dataset / prepared images
  int cx = 0, cy = 0;  // centre in prepared pixels
  PatchLabel label = PatchLabel::non_mass;
  PatchSource source = PatchSource::breast;
};

// What sampling did, summed over the images it was passed to.
struct PatchStats {
  int64_t mass = 0, non_mass = 0;
  int64_t by_source[5] = {0, 0, 0, 0, 0};           // indexed by PatchSource
  int64_t fallback[5] = {0, 0, 0, 0, 0};            // negatives that asked for this source, found no valid centre there
                                                    // and were drawn from breast (or, lacking that, any source) instead
  int64_t dropped = 0;                              // negatives with no valid centre anywhere in the image
  int64_t masses_without_mask = 0;                  // mass ROIs with no mass_mask pixel inside their box (no patches)
  int64_t negatives_withheld = 0;                   // negatives not drawn from images with a lesion of unknown place
  PatchStats& operator+=(const PatchStats& other);  // counts summed, e.g. over threads
  nlohmann::json to_json() const;
};

// Samples the patches of one prepared image. Deterministic in (seed, image_index): draw k of every kind comes
// from its own Philox counter, so the order in which images are sampled never matters. Adds to *stats if given.
// BadInput naming the image when its buffers' sizes disagree with width x height.
std::vector<PatchSpec> sample_patches(const PreparedImage& image, int image_index, const PatchConfig& config,
                                      uint64_t seed, PatchStats* stats = nullptr);

// Cuts a size x size patch centred at (cx, cy): columns cx - size/2 .. cx - size/2 + size - 1, rows likewise;
// pixels outside the image read as `fill` (0: air after normalisation). Output (size, size) row-major.
std::vector<float> extract_patch(const PreparedImage& image, int cx, int cy, int size, float fill = 0.f);
// The same cut from raw (height, width) pixels into `out` (size, size): what the loader uses on mapped images.
void extract_patch(const float* pixels, int width, int height, int cx, int cy, int size, float fill, float* out);

// Patient-level split: every patient goes wholly to train, validation or test, in the given fractions, seeded.
struct Split {
  uint64_t seed = 0;
  double train = 0.8, validation = 0.1, test = 0.1;
  std::vector<std::string> train_patients, validation_patients, test_patients;  // sorted
  std::string which(const std::string& patient_id) const;  // train | validation | test; BadInput if absent
};
Split make_split(const Dataset& dataset, uint64_t seed, double train = 0.8, double validation = 0.1);
void write_split(const std::string& path, const Split& split);  // JSON, atomic
Split read_split(const std::string& path);                      // BadInput naming the file
// The dataset indices of the images whose patient is in `part` (train, validation or test), in dataset order.
// BadInput when an image's patient is in no part (the split was made for another dataset).
std::vector<int> split_indices(const Dataset& dataset, const Split& split, const std::string& part);

struct AugmentConfig {
  int output = 227;               // crop side: 227 (AlexNet) or 224 (VGG-16, GoogLeNet)
  bool random_crop = true;        // false: the centre crop (offset (input - output) / 2, rounded down)
  int max_translate = 16;         // pixels, each axis, on top of the random crop
  double max_rotation_deg = 180;  // uniform in [-max, max]
  bool flip_horizontal = true, flip_vertical = true;
  double min_scale = 0.9, max_scale = 1.1;
  double intensity_jitter = 0.05;  // multiplicative gain 1 +- this, and additive offset +- this
  nlohmann::json to_json() const;
  static AugmentConfig from_json(const nlohmann::json& j);
  void validate() const;
};

// The transform drawn for (seed, epoch, index): output pixel (u, v) samples the input patch at
// A * (u, v) + t (bilinear, `fill` outside).
struct AugmentTransform {
  double a00 = 1, a01 = 0, a10 = 0, a11 = 1, tx = 0, ty = 0;  // output -> input patch coordinates
  double gain = 1, offset = 0;
  void apply(double u, double v, double* x, double* y) const {
    *x = a00 * u + a01 * v + tx;
    *y = a10 * u + a11 * v + ty;
  }
  // The inverse: where input patch point (x, y) lands in the output (carries ROI points and boxes along).
  void unapply(double x, double y, double* u, double* v) const;
};

// The drawn quantities before they are composed into a matrix; tests and debugging build these by hand.
struct AugmentParams {
  int crop_x = 0, crop_y = 0;               // output (0, 0) sits on input (crop_x, crop_y) before the rest
  double translate_x = 0, translate_y = 0;  // pixels
  double rotation_deg = 0;                  // angle of the output->input map (x right, y down); k*90 is exact
  bool flip_horizontal = false, flip_vertical = false;
  double scale = 1;  // > 1 magnifies: the output samples the input every 1/scale pixels
  double gain = 1, offset = 0;
};
AugmentParams draw_augment_params(const AugmentConfig& config, int input_size, uint64_t seed, int64_t epoch,
                                  int64_t index);
// Flip, then scale and rotate about the output's centre, which lands on the crop's centre plus the translation.
AugmentTransform compose_augmentation(const AugmentParams& p, int output);
// = compose_augmentation(draw_augment_params(...), config.output). BadConfig when input_size < config.output.
AugmentTransform draw_augmentation(const AugmentConfig& config, int input_size, uint64_t seed, int64_t epoch,
                                   int64_t index);
// Applies `t` to a (input_size, input_size) patch, writing (output, output) floats to `out`: bilinear, `fill`
// for the input's outside, then gain and offset on every pixel (fill included, so it behaves like air).
void augment_patch(const float* patch, int input_size, const AugmentTransform& t, int output, float* out,
                   float fill = 0.f);

}  // namespace massmap::data
