#pragma once
// Where the cells of a fully convolutional net's output map sit on its input image, computed by walking the graph
// from the image input to the map (never written per net). Along each axis, cell i of the map:
//   - stands for the crop [i * stride, i * stride + crop): the classifier's input window at that position (the
//     classifier was built for crop-sized inputs and its single output is cell 0);
//   - is placed at that crop's centre i * stride + (crop - 1) / 2 on the image, since training patches are centred
//     on the mass;
//   - sees the theoretical receptive field [field_begin + i * stride, field_end + i * stride): every input pixel
//     that can change it, padding included (so it may reach outside the image). Its centre need not be the crop's:
//     unpadded CEIL pools shift it (GoogLeNet).
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "engine/graph.h"

namespace massmap {

struct AxisGeometry {
  int64_t stride = 1;                      // input pixels between neighbouring cells
  int64_t crop = 0;                        // extent of the crop each cell stands for
  int64_t field_begin = 0, field_end = 0;  // cell 0's receptive field [begin, end)
  int64_t cells = 0;                       // map cells along this axis at the graph's input size
  int64_t crop_begin(int64_t i) const { return i * stride; }
  double crop_centre(int64_t i) const { return double(i * stride) + double(crop - 1) / 2; }
  int64_t field_size() const { return field_end - field_begin; }
  double field_centre(int64_t i) const { return double(i * stride) + double(field_begin + field_end - 1) / 2; }
};

struct MapGeometry {
  std::string map;  // the output value the geometry describes ("prob")
  AxisGeometry y, x;
};

// The geometry of the graph's output map. BadConfig naming the node when a node is not convolutional (flatten,
// linear: run convolutionalize first) or the graph has no crop (not convolutionalized), or not exactly one output.
MapGeometry map_geometry(const Graph& g);

// A few lines for people: stride, crop, the first cells' crops and centres, the receptive field.
std::string geometry_report(const MapGeometry& m);
// For files next to a map: {"map", "cells": [h, w], "stride": [y, x], "crop": [h, w], "first_crop_centre": [y, x],
// "field": [[y begin, y end), [x begin, x end)] of cell (0, 0)}; cell (i, j) is at first_crop_centre + stride * (i, j).
nlohmann::json geometry_json(const MapGeometry& m);

}  // namespace massmap
