// Breast segmentation from the pixels alone: a background threshold from the histogram, connected components
// (the largest one on the chest-wall side is the breast, holes filled; bright compact ones elsewhere are labels),
// then the pectoral muscle of MLO views (data/pectoral.cpp). Every step is O(pixels) with a fixed number of
// whole-image buffers, so a 3000 x 5000 DDSM image costs a few passes.
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "base/errors.h"
#include "data/breast_segmentation_internal.h"
#include "data/preprocess.h"

namespace massmap::data {

namespace segmentation {

namespace {

// Otsu's threshold over hist[0..n): the t maximising the between-class variance of {v <= t} and {v > t}.
size_t otsu(const std::vector<uint64_t>& hist) {
  double total = 0, sum = 0;
  for (size_t v = 0; v < hist.size(); ++v) total += double(hist[v]), sum += double(v) * double(hist[v]);
  double w0 = 0, s0 = 0, best = -1;
  size_t t_best = 0;
  for (size_t t = 0; t + 1 < hist.size(); ++t) {
    w0 += double(hist[t]), s0 += double(t) * double(hist[t]);
    const double w1 = total - w0;
    if (w0 == 0 || w1 == 0) continue;
    const double m0 = s0 / w0, m1 = (sum - s0) / w1;
    const double between = w0 * w1 * (m0 - m1) * (m0 - m1);
    if (between > best) best = between, t_best = t;
  }
  return t_best;
}

}  // namespace

Levels estimate_levels(const Image& image) {
  Levels lv;
  if (image.pixels.empty()) return lv;
  const uint16_t top = *std::max_element(image.pixels.begin(), image.pixels.end());
  std::vector<uint64_t> hist(size_t(top) + 1, 0);  // (top + 1) pixel counts per value
  for (uint16_t v : image.pixels) ++hist[v];
  const size_t t = otsu(hist);
  uint64_t below = 0, above = 0;
  size_t mode = 0;
  for (size_t v = 0; v <= t; ++v) {
    below += hist[v];
    if (hist[v] > hist[mode]) mode = v;
  }
  above = uint64_t(image.pixels.size()) - below;
  // Median absolute deviation around the mode, within the background class.
  uint64_t within = hist[mode];
  size_t d = 0;
  while (2 * within < below) {
    ++d;
    if (mode >= d) within += hist[mode - d];
    if (mode + d <= t) within += hist[mode + d];
  }
  lv.air = double(mode);
  lv.sigma = std::max(0.5, 1.4826 * double(d));
  uint64_t seen = 0;
  for (size_t v = t + 1; v < hist.size(); ++v)
    if (2 * (seen += hist[v]) >= above) {
      lv.tissue = double(v);
      break;
    }
  // Background and tissue must each cover more than a speck of the image (a flat image has no background), and
  // the tissue must stand clear of the background's noise.
  const uint64_t speck = uint64_t(image.pixels.size()) / 200;
  lv.has_tissue = below > speck && above > speck && lv.tissue - lv.air > 10 * lv.sigma;
  // Low enough to keep the skin line and the thin compressed edge (about 0.2 of the way up from air on synth-v1),
  // high enough to leave the background's noise out.
  lv.threshold = std::min(double(t), lv.air + std::max(0.12 * (lv.tissue - lv.air), 5 * lv.sigma));
  return lv;
}

namespace {

struct Component {
  int64_t pixels = 0;
  int64_t near_left = 0, near_right = 0;  // pixels within `margin` columns of the left / right edge
  int64_t sum_x = 0;
  uint16_t max_value = 0;
};

// 8-connected components of {value > threshold}: label (h, w) = component id or -1, one pass with union-find.
struct Components {
  std::vector<int32_t> label;  // (h, w)
  std::vector<Component> stats;
};

int32_t find_root(std::vector<int32_t>& parent, int32_t a) {
  while (parent[size_t(a)] != a) a = parent[size_t(a)] = parent[size_t(parent[size_t(a)])];
  return a;
}

Components label_components(const Image& image, double threshold, int margin) {
  const int w = image.width, h = image.height;
  Components cc;
  cc.label.assign(image.pixels.size(), -1);
  std::vector<int32_t> parent;  // (provisional labels) union-find forest
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const size_t i = size_t(y) * size_t(w) + size_t(x);
      if (image.pixels[i] <= threshold) continue;
      int32_t mine = -1;
      auto join = [&](int32_t other) {
        if (other < 0) return;
        if (mine < 0) {
          mine = find_root(parent, other);
          return;
        }
        const int32_t a = find_root(parent, mine), b = find_root(parent, other);
        if (a != b) parent[size_t(std::max(a, b))] = std::min(a, b), mine = std::min(a, b);
      };
      if (x > 0) join(cc.label[i - 1]);
      if (y > 0) {
        const size_t up = i - size_t(w);
        if (x > 0) join(cc.label[up - 1]);
        join(cc.label[up]);
        if (x + 1 < w) join(cc.label[up + 1]);
      }
      if (mine < 0) mine = int32_t(parent.size()), parent.push_back(mine);
      cc.label[i] = mine;
    }
  std::vector<int32_t> compact(parent.size(), -1);  // (provisional labels) root -> final id
  for (size_t i = 0; i < cc.label.size(); ++i) {
    if (cc.label[i] < 0) continue;
    const int32_t root = find_root(parent, cc.label[i]);
    if (compact[size_t(root)] < 0) compact[size_t(root)] = int32_t(cc.stats.size()), cc.stats.emplace_back();
    const int32_t id = cc.label[i] = compact[size_t(root)];
    Component& c = cc.stats[size_t(id)];
    const int x = int(i % size_t(w));
    ++c.pixels, c.sum_x += x;
    c.near_left += x < margin, c.near_right += x >= w - margin;
    c.max_value = std::max(c.max_value, image.pixels[i]);
  }
  return cc;
}

// Non-breast pixels that no 4-connected path of non-breast pixels joins to the image border become breast.
void fill_holes(std::vector<uint8_t>& regions, int w, int h, std::vector<int32_t>& scratch) {
  std::fill(scratch.begin(), scratch.end(), 0);  // (h, w) 1 = reached from the border
  std::vector<int32_t> stack;                    // pixel indices to visit
  auto push = [&](int x, int y) {
    const size_t i = size_t(y) * size_t(w) + size_t(x);
    if (regions[i] == kBreast || scratch[i]) return;
    scratch[i] = 1, stack.push_back(int32_t(i));
  };
  for (int x = 0; x < w; ++x) push(x, 0), push(x, h - 1);
  for (int y = 0; y < h; ++y) push(0, y), push(w - 1, y);
  while (!stack.empty()) {
    const int32_t i = stack.back();
    stack.pop_back();
    const int x = i % w, y = i / w;
    if (x > 0) push(x - 1, y);
    if (x + 1 < w) push(x + 1, y);
    if (y > 0) push(x, y - 1);
    if (y + 1 < h) push(x, y + 1);
  }
  for (size_t i = 0; i < regions.size(); ++i)
    if (!scratch[i]) regions[i] = kBreast;
}

}  // namespace
}  // namespace segmentation

std::vector<uint8_t> segment_breast(const Image& image, const std::string& laterality, const std::string& view) {
  using namespace segmentation;
  const int w = image.width, h = image.height;
  if (w <= 0 || h <= 0 || image.pixels.size() != size_t(w) * size_t(h))
    throw BadInput("segment_breast: image of " + std::to_string(w) + "x" + std::to_string(h) + " with " +
                   std::to_string(image.pixels.size()) + " pixels");
  std::vector<uint8_t> regions(image.pixels.size(), kAir);  // (h, w) Region codes
  const Levels lv = estimate_levels(image);
  if (!lv.has_tissue) return regions;
  const int margin = std::max(1, w / 100);
  Components cc = label_components(image, lv.threshold, margin);
  if (cc.stats.empty()) return regions;

  // Chest-wall side: the breast is cut off by the chest-wall edge of the image, so the largest component lies
  // along it. The pixels decide when that is clear (some datasets store either orientation); the given
  // laterality (L: chest wall at x = 0, as synth-v1 draws it), then the centroid, when it is not.
  size_t largest = 0;
  for (size_t c = 1; c < cc.stats.size(); ++c)
    if (cc.stats[c].pixels > cc.stats[largest].pixels) largest = c;
  const Component& big = cc.stats[largest];
  bool chest_right;
  if (std::llabs(big.near_left - big.near_right) > int64_t(margin) * h / 20)
    chest_right = big.near_right > big.near_left;
  else if (laterality == "L" || laterality == "R")
    chest_right = laterality == "R";
  else
    chest_right = 2 * big.sum_x > big.pixels * int64_t(w - 1);

  // The breast: the largest component touching the chest-wall edge, else the largest; at least 0.5% of the image.
  int64_t breast = -1;
  for (size_t c = 0; c < cc.stats.size(); ++c) {
    const int64_t touch = chest_right ? cc.stats[c].near_right : cc.stats[c].near_left;
    if (touch > 0 && (breast < 0 || cc.stats[c].pixels > cc.stats[size_t(breast)].pixels)) breast = int64_t(c);
  }
  if (breast < 0) breast = int64_t(largest);
  if (cc.stats[size_t(breast)].pixels * 200 < int64_t(regions.size())) return regions;
  for (size_t i = 0; i < regions.size(); ++i)
    if (cc.label[i] == breast) regions[i] = kBreast;

  // Labels and markers: other components, compact (at most 5% of the image, at least 4 pixels) and bright (their
  // peak above the tissue's median), lying outside the breast once its holes are filled.
  std::vector<uint8_t> is_label(cc.stats.size(), 0);  // (components) 1 = label
  for (size_t c = 0; c < cc.stats.size(); ++c) {
    const Component& s = cc.stats[c];
    is_label[c] =
        int64_t(c) != breast && s.pixels >= 4 && s.pixels * 20 <= int64_t(regions.size()) && s.max_value >= lv.tissue;
  }
  for (size_t i = 0; i < regions.size(); ++i)
    if (cc.label[i] >= 0 && is_label[size_t(cc.label[i])]) regions[i] = kLabel;
  fill_holes(regions, w, h, cc.label);  // a label enclosed by the breast becomes breast

  if (view == "MLO") mark_pectoral(image, lv, chest_right, regions);
  return regions;
}

double region_dice(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b, uint8_t code) {
  if (a.size() != b.size())
    throw BadInput("region_dice: maps of " + std::to_string(a.size()) + " and " + std::to_string(b.size()) + " pixels");
  int64_t na = 0, nb = 0, both = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const bool in_a = a[i] == code, in_b = b[i] == code;
    na += in_a, nb += in_b, both += in_a && in_b;
  }
  return na + nb == 0 ? 1.0 : 2.0 * double(both) / double(na + nb);  // two empty regions agree
}

}  // namespace massmap::data
