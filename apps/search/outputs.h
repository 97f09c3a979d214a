#pragma once
// The files `massmap localize` writes per image (README "massmap localize"), each atomically:
//   map.npy          float32 (1, 1, cells_y, cells_x): P(mass) of one image
//   map.json         the map's geometry on the original image (ImageGeometry::to_json) and what made it
//   map.png          16-bit grey, one pixel per cell: round(P(mass) * 65535)
//   overlay.png      the map coloured over the prepared mammogram, findings circled, other peaks crossed, ROI
//                    boxes drawn (search/overlay.h)
//   detections.json  the peaks after NMS inside the breast, each with its cell, positions, probability and crop
#include <nlohmann/json.hpp>
#include <string>

#include "apps/search/localize.h"

namespace massmap::search {

struct OutputInfo {
  std::string image;       // the image file as given
  std::string checkpoint;  // the weights file as given
  const SearchModel* model = nullptr;
  double nms_radius_mm = kDefaultNmsRadiusMm;
};

nlohmann::json map_json(const MapResult& r, const OutputInfo& info);
nlohmann::json detections_json(const MapResult& r, const OutputInfo& info);

// Writes the five files into `dir` (created when missing).
void write_outputs(const std::string& dir, const MapResult& r, const OutputInfo& info);

}  // namespace massmap::search
