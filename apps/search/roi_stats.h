#pragma once
// The paper's per-ROI measures (its Figs. 11-14), kept as a descriptive replication: for every mass, the maximum and
// the mean of the map over the mass's mask. A 5 mm mass can hold no cell centre at a 6.4 mm stride, so the map is
// interpolated bilinearly (between cell centres, clamped at the outer ones) at every mask pixel of the original
// image. A threshold on the ROI maximum is no detection rule: a constant map of 0.5 passes every mass at 0.4.
#include <cstdint>
#include <vector>

#include "apps/search/geometry.h"

namespace massmap::search {

constexpr double kPaperThreshold = 0.4;

struct RoiStats {
  float max = 0, mean = 0;
  int64_t pixels = 0;  // mask pixels on the original image
};

// The map (plane.y.cells, plane.x.cells) at original pixel (x, y), bilinear between cell centres.
float map_at(const std::vector<float>& map, const ImageGeometry& g, double x, double y);

// Over the mask (original height, original width; nonzero = inside); max = mean = 0 for an empty mask.
RoiStats roi_stats(const std::vector<float>& map, const ImageGeometry& g, const std::vector<uint8_t>& mask);

// The fraction of `values` >= each of `thresholds`.
std::vector<double> fraction_at_or_above(const std::vector<float>& values, const std::vector<double>& thresholds);

}  // namespace massmap::search
