#pragma once
// Where a map cell sits on the original mammogram. The map is computed on the prepared image (resampled to the
// training spacing); prepared pixel o spans original pixels [o s, (o + 1) s) (data/preprocess.h, s = original /
// prepared size along the axis), so a prepared coordinate u (pixel centres at integers) is the original coordinate
// (u + 0.5) s - 0.5, and millimetres are measured from the image's top-left corner: (x + 0.5) * original spacing.
// Both maps are affine, so cell i's centre is first + i * stride in every unit.
#include <cstdint>
#include <nlohmann/json.hpp>

#include "apps/search/map_runner.h"

namespace massmap::search {

struct ImageGeometry {
  PlaneGeometry plane;  // cells on the prepared image, in prepared pixels
  int original_width = 0, original_height = 0;
  int prepared_width = 0, prepared_height = 0;
  double original_spacing_mm = 0;  // of the source image
  double prepared_spacing_mm = 0;  // the training spacing

  double scale_x() const { return double(original_width) / prepared_width; }  // original px per prepared px
  double scale_y() const { return double(original_height) / prepared_height; }
  double original_x(double prepared_x) const { return (prepared_x + 0.5) * scale_x() - 0.5; }
  double original_y(double prepared_y) const { return (prepared_y + 0.5) * scale_y() - 0.5; }
  double mm(double original) const { return (original + 0.5) * original_spacing_mm; }
  // Cell (i, j)'s centre in original pixels.
  double cell_x(int64_t j) const { return original_x(plane.x.centre(j)); }
  double cell_y(int64_t i) const { return original_y(plane.y.centre(i)); }

  // Everything a reader needs to place the cells: stride, first centre, crop and receptive field in prepared
  // pixels, original pixels and millimetres; the padding; the net's input.
  nlohmann::json to_json() const;
};

}  // namespace massmap::search
