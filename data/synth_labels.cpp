// synth-v1: the side and view label ("L CC", "R MLO") burned into the upper corner away from the chest wall, in a
// built-in 5x7 bitmap font, as scanned films carry them.
#include <algorithm>
#include <cmath>

#include "data/synth_internal.h"

namespace massmap::data::synth {

namespace {

// Rows top to bottom; bit 4 is the leftmost column.
struct Glyph {
  char c;
  uint8_t rows[7];
};
constexpr Glyph kFont[] = {
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}}, {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}}, {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {' ', {0, 0, 0, 0, 0, 0, 0}},
};

const Glyph& glyph(char c) {
  for (const Glyph& g : kFont)
    if (g.c == c) return g;
  return kFont[5];
}

}  // namespace

void burn_label(const SynthParams& p, const std::string& text, bool right_side, std::vector<uint16_t>& pixels,
                int width, int height, std::vector<uint8_t>& regions) {
  const int cell = std::max(1, int(std::lround(p.label_height_mm / p.spacing_mm / 7)));
  const int margin = std::max(1, int(std::lround(3 / p.spacing_mm)));
  const int text_width = int(text.size()) * 6 * cell - cell;
  const int x0 = right_side ? width - margin - text_width : margin, y0 = margin;
  const uint16_t value = uint16_t(std::clamp(p.label_value, 0.0, 4095.0));
  for (size_t k = 0; k < text.size(); ++k) {
    const Glyph& g = glyph(text[k]);
    for (int row = 0; row < 7; ++row)
      for (int col = 0; col < 5; ++col) {
        if (!(g.rows[row] & (0x10 >> col))) continue;
        for (int dy = 0; dy < cell; ++dy)
          for (int dx = 0; dx < cell; ++dx) {
            const int x = x0 + (int(k) * 6 + col) * cell + dx, y = y0 + row * cell + dy;
            if (x < 0 || x >= width || y < 0 || y >= height) continue;
            pixels[size_t(y) * size_t(width) + size_t(x)] = value;
            regions[size_t(y) * size_t(width) + size_t(x)] = kLabel;
          }
      }
  }
}

}  // namespace massmap::data::synth
