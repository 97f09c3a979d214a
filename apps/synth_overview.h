#pragma once
// A contact sheet of synthetic mammograms for eyes: thumbnails in a grid with their ground truth drawn on.
#include <cstdint>
#include <string>
#include <vector>

#include "data/synth.h"

namespace massmap::cli {

class SynthOverview {
 public:
  // Room for `count` images of width x height, shrunk by a whole factor to at most 256 pixels tall, 4 per row.
  SynthOverview(int count, int width, int height);
  // Draws image `slot`: 12-bit values to 8-bit grey, mass masks outlined in red, loose ROI boxes in yellow (masses)
  // and cyan (calcification clusters).
  void add(int slot, const data::SynthImage& image);
  void write(const std::string& path) const;  // 8-bit RGB PNG, atomically

 private:
  int count_, factor_, thumb_w_, thumb_h_, columns_, sheet_w_, sheet_h_;
  std::vector<uint8_t> rgb_;  // (sheet_h, sheet_w, 3)
};

}  // namespace massmap::cli
