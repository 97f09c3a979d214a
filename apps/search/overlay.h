#pragma once
// The overlay a person looks at: the prepared mammogram in grey (normalised intensities 0..1), scaled so its
// longer side is at most kOverlaySide pixels, the map interpolated over it in colour (blue to red; opacity grows
// with the probability, so a low map leaves the image visible), findings circled in red with the NMS radius, the
// other peaks (the ten highest) crossed in yellow, the dataset's ROI boxes in green.
#include <cstdint>
#include <string>
#include <vector>

#include "apps/search/localize.h"

namespace massmap::search {

constexpr int kOverlaySide = 1024;

// RGB pixels (height, width, 3) of the overlay, and its size.
std::vector<uint8_t> render_overlay(const MapResult& r, double nms_radius_mm, int* width, int* height);
void write_overlay(const std::string& path, const MapResult& r, double nms_radius_mm);

}  // namespace massmap::search
