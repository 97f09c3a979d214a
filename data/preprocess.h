#pragma once
// From a decoded mammogram to what patch sampling and whole-image inference read: the breast region map, the
// image resampled to the configured pixel spacing, intensities normalised by percentiles inside the breast, and
// the lesions' masks and ROI boxes carried into the same pixel grid. The configuration is recorded in checkpoints
// (to_json) so inference preprocesses exactly as training did.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/image_io.h"
#include "data/regions.h"

namespace massmap::data {

struct PreprocessConfig {
  double spacing_mm = 0.2;         // target pixel spacing (DESIGN.md: 150-200 um)
  double default_spacing_mm = 0;   // used when neither the image nor the dataset knows its spacing; 0: error
  double low_percentile = 1.0;     // maps to 0 ...
  double high_percentile = 99.0;   // ... and this to 1, both over breast pixels (pectoral excluded)
  // Subtracted after that mapping: 0.5 centres the breast on 0, which a net without normalisation layers fits
  // faster with SGD (the first layer's gradients no longer share one large common component).
  double offset = 0;

  nlohmann::json to_json() const;
  static PreprocessConfig from_json(const nlohmann::json& j);  // BadConfig on unknown keys or bad values
  void validate() const;                                       // BadConfig naming the first invalid value
};

// Region map (height, width) of Region codes estimated from the pixels alone: air, breast, pectoral muscle
// (searched in the upper chest-wall corner of MLO views), burned-in labels and markers (bright compact
// components outside the breast). `laterality` L/R/"" (unknown: guessed from which side holds more tissue),
// `view` CC/MLO/... (pectoral only for MLO).
std::vector<uint8_t> segment_breast(const Image& image, const std::string& laterality, const std::string& view);

// Dice overlap 2|A∩B| / (|A|+|B|) of the pixels with code `code` in two region maps of the same size.
double region_dice(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b, uint8_t code);

struct PreparedImage {
  std::string id;
  int width = 0, height = 0;  // after resampling
  double spacing_mm = 0;      // = config.spacing_mm
  double scale = 1;           // source pixels per prepared pixel (source spacing / target spacing, inverted)
  float low = 0, high = 1;    // the source intensities that mapped to 0 and 1
  float air = 0;              // normalised air level (median of air pixels): what padding beyond the image shows
  int unlocated_lesions = 0;  // lesions the dataset lists without a location (no box, circle or mask): not in
                              // rois, so nothing is known clear of them and no negative may come from this image
  std::vector<float> pixels;      // (height, width) normalised: (value - low) / (high - low) - offset, not clipped
  std::vector<uint8_t> regions;   // (height, width) Region codes
  std::vector<uint8_t> mass_mask;  // (height, width) 1 inside any mass's exact mask, else 0
  std::vector<Box> rois;           // every lesion's ROI box (all types), in prepared pixels
  std::vector<std::string> roi_types;  // (rois.size()) the lesion type of each ROI
};

// Decodes nothing: `image` is the decoded file, `meta` its dataset entry (lesions, spacing, view, laterality).
// Throws BadInput naming meta.id when the spacing is unknown and config.default_spacing_mm is 0, or when a lesion
// mask's size differs from the image's.
PreparedImage prepare_image(const Image& image, const DatasetImage& meta, const PreprocessConfig& config);

// Area-weighted resampling of a (height, width) float image to (out_height, out_width); nearest-neighbour for
// label maps (codes and masks).
std::vector<float> resample_area(const std::vector<float>& in, int width, int height, int out_width, int out_height);
std::vector<uint8_t> resample_nearest(const std::vector<uint8_t>& in, int width, int height, int out_width,
                                      int out_height);

}  // namespace massmap::data
