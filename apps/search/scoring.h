#pragma once
// Everything evaluation measures on one map of one image (the CNN's or the baseline's), and the part's metrics
// computed from those records alone, so the numbers in metrics.json follow from the saved maps and the dataset.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/search/bootstrap.h"
#include "apps/search/froc.h"
#include "apps/search/localize.h"
#include "apps/search/roi_stats.h"

namespace massmap::search {

struct MassInfo {
  std::string lesion_id;   // "<image id>#<lesion index>"
  double diameter_mm = 0;  // of the disc with the mask's area
  int subtlety = 0;        // 1..5, 0 unknown
};

// One image under one map.
struct ScoredMap {
  JudgedImage on_mask;        // hits judged on each lesion's mask
  JudgedImage on_box;         // the same judged on each lesion's loose ROI box (the paper's ROI window)
  std::vector<RoiStats> roi;  // (masses) the map over each mass's mask
  float image_max = 0;        // the map's maximum (image level: mass / no mass)
};

struct ImageRecord {
  std::string id, patient, density;
  std::vector<MassInfo> masses;
  double breast_cm2 = 0;  // breast pixels of the prepared image times its pixel area
  ScoredMap cnn, dog;
};

// Judges `detections` and measures the map on the image's masses. `meta`: the dataset entry; the map with its
// geometry (original width and height from it); masks: each lesion's (original height, width) 0/1 mask in lesion
// order (lesion_masks), read once per image since a CBIS-DDSM mask is a full-size file.
ScoredMap score_map(const std::vector<float>& map, const ImageGeometry& geometry,
                    const std::vector<Detection>& detections, const data::DatasetImage& meta,
                    const std::vector<std::vector<uint8_t>>& masks);
// The same, reading the masks.
ScoredMap score_map(const std::vector<float>& map, const ImageGeometry& geometry,
                    const std::vector<Detection>& detections, const data::DatasetImage& meta);

// (lesions) (height, width) 0/1: data::lesion_mask of each lesion.
std::vector<std::vector<uint8_t>> lesion_masks(const data::DatasetImage& meta, int width, int height);

// The masses of `meta`, their diameters from the masks' areas.
std::vector<MassInfo> mass_info(const data::DatasetImage& meta, const std::vector<std::vector<uint8_t>>& masks,
                                double spacing_mm);

// The box variant of an image: each lesion's mask replaced by its ROI box (lesion_roi), filled.
data::DatasetImage boxes_as_masks(const data::DatasetImage& meta, int width, int height);

struct ScoringOptions {
  int replicates = kBootstrapReplicates;
  uint64_t seed = 1;
  double operating_threshold = -1;  // < 0: none (the baseline)
};

// The metrics of one scorer (`dog` picks ImageRecord::dog) over every record (README "massmap evaluate" lists the
// keys): headline, cpm, froc, froc_band (sensitivity at log-spaced FP/image from 1/16 to 8 with pointwise
// bootstrap intervals), on_box, fp_per_image_mass_images, fp_per_cm2, operating_point, paper_roi_max,
// paper_roi_mean, image_auc, image_roc, breakdowns. Notes for stderr (few patients) go to `warnings`.
nlohmann::json scorer_metrics(const std::vector<ImageRecord>& records, bool dog, const ScoringOptions& options,
                              std::vector<std::string>* warnings = nullptr);

}  // namespace massmap::search
