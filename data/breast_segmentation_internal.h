#pragma once
// Pieces of breast segmentation shared by data/breast_segmentation.cpp and data/pectoral.cpp. Not a public
// interface.
#include <cstdint>
#include <vector>

#include "data/image_io.h"

namespace massmap::data::segmentation {

// Grey levels of an image estimated from its histogram (in the image's own units).
struct Levels {
  double air = 0;        // the background's mode
  double sigma = 0;      // the background's noise (robust: 1.4826 x median absolute deviation), >= 0.5
  double tissue = 0;     // median of the pixels above Otsu's threshold
  double threshold = 0;  // pixels above it are foreground (breast, labels)
  bool has_tissue = false;
};
Levels estimate_levels(const Image& image);

// Relabels as kPectoral the breast pixels of `regions` (height, width) that belong to the pectoral muscle in the
// upper chest-wall corner (chest wall on the right edge when `chest_right`). Leaves `regions` alone when no
// muscle edge stands out.
void mark_pectoral(const Image& image, const Levels& levels, bool chest_right, std::vector<uint8_t>& regions);
// The rows the last mark_pectoral call on this thread walked while scoring candidate edges: its search's work,
// which tests bound.
// (A function, not an extern thread_local: UBSan reports a null reference through the TLS wrapper of one.)
int64_t pectoral_rows_scored();

}  // namespace massmap::data::segmentation
