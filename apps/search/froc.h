#pragma once
// The free-response ROC of judged detections (operating_point.h's rule: a hit is a detection inside a mass, each
// mass counted once at its best detection; detections inside other lesions are ignored; the rest are false
// positives). Lowering a threshold t over every detection of every image traces the FROC as a step function:
//   FP/image(t)     = #false positives with p >= t / #images (normals included)
//   sensitivity(t)  = #masses whose best hit has p >= t / #masses
// The sensitivity at F false positives per image is read off it as the best sensitivity of a point with
// FP/image <= F (0 when none), and CPM is its mean at F = 1/8, 1/4, 1/2, 1, 2, 4, 8.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "apps/search/operating_point.h"

namespace massmap::search {

constexpr double kHeadlineFpPerImage = 0.9;  // the paper's operating point: 85% of masses at 0.9 FP per image
constexpr double kCpmLevels[7] = {0.125, 0.25, 0.5, 1, 2, 4, 8};

struct FrocPoint {
  double threshold = 0;  // findings: p >= threshold (one of the detections' probabilities)
  double fp_per_image = 0, sensitivity = 0;
  int64_t false_positives = 0, hits = 0;
};

struct Froc {
  std::vector<FrocPoint> points;  // by descending threshold: FP/image and sensitivity ascending
  int64_t images = 0, masses = 0;
};

// The FROC over images[pick[0]], images[pick[1]], ... (an index may repeat: a bootstrap replicate).
Froc froc_curve(const std::vector<JudgedImage>& images, const std::vector<int>& pick);
// The same over every image.
Froc froc_curve(const std::vector<JudgedImage>& images);

// The best point with FP/image <= fp (a point at threshold +inf, FP 0, sensitivity 0 when none).
FrocPoint froc_at(const Froc& froc, double fp_per_image);
// Mean sensitivity at kCpmLevels.
double cpm(const Froc& froc);

nlohmann::json froc_points_json(const Froc& froc);

}  // namespace massmap::search
