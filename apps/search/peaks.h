#pragma once
// Detections from a map: its local maxima (one per plateau), then non-maximum suppression by distance.
#include <cstdint>
#include <vector>

namespace massmap::search {

struct Peak {
  int64_t y = 0, x = 0;  // the cell
  float value = 0;
};

// Local maxima of a (height, width) map among the cells where allowed is nonzero (cells outside are ignored, as if
// absent): a plateau (8-connected cells of one value) whose allowed neighbours are all lower is one peak, at its
// cell nearest the plateau's centroid (ties: first in row-major order). Sorted by descending value, ties row-major.
std::vector<Peak> find_peaks(const std::vector<float>& map, int64_t height, int64_t width,
                             const std::vector<uint8_t>& allowed);

// Greedy suppression in that order: a peak closer than `radius` to a kept one is dropped. Distances in the units
// of cell_y and cell_x (the length of one cell step along each axis).
std::vector<Peak> suppress(const std::vector<Peak>& sorted_peaks, double radius, double cell_y, double cell_x);

}  // namespace massmap::search
