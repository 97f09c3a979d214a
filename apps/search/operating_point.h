#pragma once
// Detections judged against the ground truth, and the operating threshold read off them: training picks the
// threshold that gives a stated number of false positives per image on validation images (test images never
// choose anything), and evaluation counts hits and false positives the same way.
#include <cstdint>
#include <string>
#include <vector>

#include "apps/search/localize.h"
#include "data/dataset.h"

namespace massmap::search {

// One image's detections, judged: a detection is a hit on a mass when its centre falls inside that mass's mask (a
// mass counts once: its best detection), ignored inside any other lesion, a false positive anywhere else.
struct JudgedImage {
  std::vector<float> mass_best;        // (masses) the best probability of a detection on each mass; -1: none
  std::vector<float> false_positives;  // (false positives) their probabilities
};

// `detections` in the original image's pixels (Detection::x, y); width and height: the original image's size.
JudgedImage judge_detections(const std::vector<Detection>& detections, const data::DatasetImage& image, int width,
                             int height);
// The same with each lesion's mask already read: masks (image.lesions.size()) (height, width) 0/1 in lesion order.
JudgedImage judge_detections(const std::vector<Detection>& detections, const data::DatasetImage& image,
                             const std::vector<std::vector<uint8_t>>& masks, int width, int height);

struct OperatingPoint {
  double threshold = 0;     // findings: probability >= threshold
  double fp_per_image = 0;  // at that threshold, over the images given
  double sensitivity = 0;   // fraction of masses with a finding on them
  int64_t images = 0, masses = 0;
  nlohmann::json to_json() const;
};

// Maps the images `indices` of `dataset` as `massmap localize` maps them and judges their detections. An image that
// cannot be read or mapped is a BadInput naming it, or, with skip_bad, left out with a line on stderr.
std::vector<JudgedImage> map_and_judge(Localizer& localizer, const data::Dataset& dataset,
                                       const std::vector<int>& indices, bool skip_bad, bool progress,
                                       const std::string& label);

// The lowest threshold whose false positives per image stay at or below `target_fp_per_image`: on the images that
// chose nothing, its sensitivity is the FROC's value at that rate (the best with at most that many).
OperatingPoint choose_threshold(const std::vector<JudgedImage>& images, double target_fp_per_image);

}  // namespace massmap::search
