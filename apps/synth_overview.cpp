#include "apps/synth_overview.h"

#include <algorithm>

#include "data/image_io.h"

namespace massmap::cli {

namespace {
constexpr int kGap = 4;  // pixels between thumbnails
}

SynthOverview::SynthOverview(int count, int width, int height)
    : count_(std::max(count, 1)), factor_(std::max(1, (height + 255) / 256)) {
  thumb_w_ = (width + factor_ - 1) / factor_;
  thumb_h_ = (height + factor_ - 1) / factor_;
  columns_ = std::min(count_, 4);
  const int rows = (count_ + columns_ - 1) / columns_;
  sheet_w_ = columns_ * thumb_w_ + (columns_ + 1) * kGap;
  sheet_h_ = rows * thumb_h_ + (rows + 1) * kGap;
  rgb_.assign(size_t(sheet_w_) * size_t(sheet_h_) * 3, 48);  // dark grey between thumbnails
}

void SynthOverview::add(int slot, const data::SynthImage& img) {
  if (slot < 0 || slot >= count_) return;
  const int ox = kGap + (slot % columns_) * (thumb_w_ + kGap), oy = kGap + (slot / columns_) * (thumb_h_ + kGap);
  auto put = [&](int tx, int ty, uint8_t r, uint8_t g, uint8_t b) {
    if (tx < 0 || ty < 0 || tx >= thumb_w_ || ty >= thumb_h_) return;
    uint8_t* p = &rgb_[(size_t(oy + ty) * size_t(sheet_w_) + size_t(ox + tx)) * 3];
    p[0] = r, p[1] = g, p[2] = b;
  };
  // Grey: the mean of each factor x factor block, 12 bits to 8.
  for (int ty = 0; ty < thumb_h_; ++ty)
    for (int tx = 0; tx < thumb_w_; ++tx) {
      double sum = 0;
      int n = 0;
      for (int y = ty * factor_; y < std::min(img.height, (ty + 1) * factor_); ++y)
        for (int x = tx * factor_; x < std::min(img.width, (tx + 1) * factor_); ++x)
          sum += img.pixels[size_t(y) * size_t(img.width) + size_t(x)], ++n;
      const uint8_t v = uint8_t(std::clamp(n ? sum / n / 16.0 : 0.0, 0.0, 255.0));
      put(tx, ty, v, v, v);
    }
  for (const data::SynthLesion& l : img.lesions) {
    const bool mass = l.type == data::LesionType::mass;
    if (mass && !l.mask.empty()) {  // outline: mask pixels with a 4-neighbour outside
      for (int y = 0; y < img.height; ++y)
        for (int x = 0; x < img.width; ++x) {
          auto in = [&](int xx, int yy) {
            return xx >= 0 && yy >= 0 && xx < img.width && yy < img.height &&
                   l.mask[size_t(yy) * size_t(img.width) + size_t(xx)] != 0;
          };
          if (in(x, y) && (!in(x - 1, y) || !in(x + 1, y) || !in(x, y - 1) || !in(x, y + 1)))
            put(x / factor_, y / factor_, 255, 40, 40);
        }
    }
    const uint8_t r = mass ? 255 : 0, g = 230, b = mass ? 0 : 230;
    const int x0 = l.box.x / factor_, y0 = l.box.y / factor_;
    const int x1 = (l.box.x + l.box.width - 1) / factor_, y1 = (l.box.y + l.box.height - 1) / factor_;
    for (int x = x0; x <= x1; ++x) put(x, y0, r, g, b), put(x, y1, r, g, b);
    for (int y = y0; y <= y1; ++y) put(x0, y, r, g, b), put(x1, y, r, g, b);
  }
}

void SynthOverview::write(const std::string& path) const { data::write_png8(path, sheet_w_, sheet_h_, 3, rgb_); }

}  // namespace massmap::cli
