// Paper-style patch sampling (Ertosun & Rubin 2015, II.A): mass patches centred inside a mass's exact mask,
// non-mass patches from everywhere else the whole-image map will look (breast, its edge, air, labels), one
// negative per positive. Every draw is Philox at (seed, stream(image, kind), sample index): pure, order-free.
#include "data/patches.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/errors.h"
#include "base/philox.h"
#include "base/text.h"
#include "data/json_fields.h"
#include "data/regions.h"

namespace massmap::data {

namespace {

// Streams of one image: the image index above, the kind of draw below; the tag keeps them apart from other
// users of the same seed (synth uses index << 8 | substream too).
enum Draw : uint64_t { kMassPixel = 1, kNegativeSource = 2, kNegativePixel = 3 };
uint64_t stream(int image_index, Draw kind) {
  return (uint64_t(0x9A) << 56) | (uint64_t(uint32_t(image_index)) << 8) | kind;
}

// Uniform in [0, n) from one 32-bit draw (multiply-shift: bias below n / 2^32, negligible at image sizes).
int32_t pick(uint64_t seed, uint64_t s, uint64_t index, size_t n) {
  return int32_t((uint64_t(random_bits_at(seed, s, index)) * n) >> 32);
}

void check_image(const PreparedImage& im) {
  const size_t n = size_t(im.width) * size_t(im.height);
  auto fail = [&](const std::string& what) { throw BadInput("prepared image '" + im.id + "': " + what); };
  if (im.width <= 0 || im.height <= 0)
    fail("empty (" + std::to_string(im.width) + "x" + std::to_string(im.height) + ")");
  if (im.pixels.size() != n)
    fail("pixels has " + std::to_string(im.pixels.size()) + " values, expected width x height");
  if (im.regions.size() != n)
    fail("regions has " + std::to_string(im.regions.size()) + " values, expected width x height");
  if (!im.mass_mask.empty() && im.mass_mask.size() != n)
    fail("mass_mask has " + std::to_string(im.mass_mask.size()) + " values, expected width x height");
  if (im.roi_types.size() != im.rois.size())
    fail(std::to_string(im.rois.size()) + " ROIs but " + std::to_string(im.roi_types.size()) + " ROI types");
}

// max over a (2r+1)^2 window of a 0/1 map, separable; in and out (h, w).
std::vector<uint8_t> dilate(const std::vector<uint8_t>& in, int w, int h, int r) {
  std::vector<uint8_t> rows(in.size()), out(in.size());  // (h, w) each
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t m = 0;
      for (int k = std::max(0, x - r); k <= std::min(w - 1, x + r) && !m; ++k) m = in[size_t(y) * w + k];
      rows[size_t(y) * w + x] = m;
    }
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t m = 0;
      for (int k = std::max(0, y - r); k <= std::min(h - 1, y + r) && !m; ++k) m = rows[size_t(k) * w + x];
      out[size_t(y) * w + x] = m;
    }
  return out;
}

// 1 where a size x size patch centred there would overlap some ROI box (of any lesion type). Patch columns are
// cx - size/2 .. cx - size/2 + size - 1, so it meets columns x..x+bw-1 iff cx in [x + size/2 - size + 1,
// x + bw - 1 + size/2]; rows likewise. A 2-D difference array marks every rectangle in O(pixels + ROIs).
// Each box counts as grown by `margin` pixels on every side.
std::vector<uint8_t> forbidden_centres(const PreparedImage& im, int size, int margin) {
  const int w = im.width, h = im.height, half = size / 2;
  std::vector<int32_t> diff(size_t(w + 1) * (h + 1), 0);  // (h + 1, w + 1)
  for (const Box& roi : im.rois) {
    if (roi.width <= 0 || roi.height <= 0) continue;
    const Box b{roi.x - margin, roi.y - margin, roi.width + 2 * margin, roi.height + 2 * margin};
    const int x0 = std::max(0, b.x + half - size + 1), x1 = std::min(w - 1, b.x + b.width - 1 + half);
    const int y0 = std::max(0, b.y + half - size + 1), y1 = std::min(h - 1, b.y + b.height - 1 + half);
    if (x0 > x1 || y0 > y1) continue;
    diff[size_t(y0) * (w + 1) + x0] += 1;
    diff[size_t(y0) * (w + 1) + x1 + 1] -= 1;
    diff[size_t(y1 + 1) * (w + 1) + x0] -= 1;
    diff[size_t(y1 + 1) * (w + 1) + x1 + 1] += 1;
  }
  std::vector<uint8_t> out(size_t(w) * h);  // (h, w)
  std::vector<int32_t> column(w + 1, 0);    // running sum down each column
  for (int y = 0; y < h; ++y) {
    int32_t row = 0;
    for (int x = 0; x < w; ++x) {
      column[x] += diff[size_t(y) * (w + 1) + x];
      row += column[x];
      out[size_t(y) * w + x] = row > 0;
    }
  }
  return out;
}

// Allowed negative centres of each source, as pixel indices y * w + x in raster order.
struct Candidates {
  std::vector<int32_t> of[5];  // indexed by PatchSource (mass unused)
};

Candidates negative_candidates(const PreparedImage& im, const PatchConfig& c) {
  const size_t n = im.pixels.size();
  std::vector<uint8_t> tissue(n), air(n);  // (h, w) 0/1
  for (size_t i = 0; i < n; ++i) {
    tissue[i] = im.regions[i] == kBreast || im.regions[i] == kPectoral;
    air[i] = im.regions[i] == kAir;
  }
  const std::vector<uint8_t> near_tissue = dilate(tissue, im.width, im.height, c.edge_width);
  const std::vector<uint8_t> near_air = dilate(air, im.width, im.height, c.edge_width);
  // A 1-pixel patch overlaps a box exactly when its centre lies inside it.
  const std::vector<uint8_t> forbidden = forbidden_centres(im, c.clear_of_roi == "centre" ? 1 : c.size, c.clear_margin);
  Candidates out;
  for (size_t i = 0; i < n; ++i) {
    if (forbidden[i]) continue;
    const uint8_t r = im.regions[i];
    PatchSource s;
    if (r == kLabel)
      s = PatchSource::label;
    else if ((tissue[i] || air[i]) && near_tissue[i] && near_air[i])
      s = PatchSource::edge;
    else if (tissue[i])
      s = PatchSource::breast;
    else if (air[i])
      s = PatchSource::air;
    else
      continue;  // an unknown region code: no source claims it
    out.of[int(s)].push_back(int32_t(i));
  }
  return out;
}

}  // namespace

const char* patch_source_name(PatchSource s) {
  switch (s) {
    case PatchSource::mass:
      return "mass";
    case PatchSource::breast:
      return "breast";
    case PatchSource::edge:
      return "edge";
    case PatchSource::air:
      return "air";
    case PatchSource::label:
      return "label";
  }
  return "unknown";
}

std::vector<PatchSpec> sample_patches(const PreparedImage& image, int image_index, const PatchConfig& config,
                                      uint64_t seed, PatchStats* stats) {
  config.validate();
  check_image(image);
  PatchStats local;
  std::vector<PatchSpec> out;
  const int w = image.width, h = image.height;

  // Positives: per_mass centres drawn uniformly from the mask pixels inside each mass ROI's box.
  bool has_mass_roi = false;
  for (size_t r = 0; r < image.rois.size(); ++r) {
    if (image.roi_types[r] != "mass") continue;
    has_mass_roi = true;
    const Box& b = image.rois[r];
    std::vector<int32_t> inside;  // mask pixel indices y * w + x within the box
    if (!image.mass_mask.empty())
      for (int y = std::max(0, b.y); y < std::min(h, b.y + b.height); ++y)
        for (int x = std::max(0, b.x); x < std::min(w, b.x + b.width); ++x)
          if (image.mass_mask[size_t(y) * w + x]) inside.push_back(y * w + x);
    if (inside.empty()) {
      ++local.masses_without_mask;
      continue;
    }
    for (int k = 0; k < config.per_mass; ++k) {
      const int32_t i =
          inside[pick(seed, stream(image_index, kMassPixel), r * uint64_t(config.per_mass) + k, inside.size())];
      out.push_back({image_index, i % w, i / w, PatchLabel::mass, PatchSource::mass});
    }
  }
  const int positives = int(out.size());
  local.mass = positives;
  local.by_source[int(PatchSource::mass)] = positives;

  // Negatives: negative_ratio per positive (rounded), or per_normal_image when the image has no mass ROI at all.
  // None from an image with a lesion of unknown place: no square of it is known to be clear.
  int negatives = has_mass_roi ? int(std::lround(config.negative_ratio * positives)) : config.per_normal_image;
  if (image.unlocated_lesions > 0) {
    local.negatives_withheld += negatives;
    negatives = 0;
  }
  if (negatives > 0) {
    const Candidates cand = negative_candidates(image, config);
    const bool has_label =
        std::any_of(image.regions.begin(), image.regions.end(), [](uint8_t r) { return r == kLabel; });
    for (int j = 0; j < negatives; ++j) {
      // An image without label pixels gives the label share to breast: that is not a fallback.
      const double u = uniform_at(seed, stream(image_index, kNegativeSource), uint64_t(j));
      PatchSource want = PatchSource::breast;
      if (u < config.edge_fraction)
        want = PatchSource::edge;
      else if (u < config.edge_fraction + config.air_fraction)
        want = PatchSource::air;
      else if (has_label && u < config.edge_fraction + config.air_fraction + config.label_fraction)
        want = PatchSource::label;
      PatchSource got = want;
      // Fallback order: the source asked for, breast, then whatever has a valid centre.
      for (PatchSource s : {want, PatchSource::breast, PatchSource::edge, PatchSource::air, PatchSource::label}) {
        got = s;
        if (!cand.of[int(s)].empty()) break;
      }
      const std::vector<int32_t>& list = cand.of[int(got)];
      if (list.empty()) {
        ++local.dropped;
        continue;
      }
      if (got != want) ++local.fallback[int(want)];
      const int32_t i = list[pick(seed, stream(image_index, kNegativePixel), uint64_t(j), list.size())];
      out.push_back({image_index, i % w, i / w, PatchLabel::non_mass, got});
      ++local.non_mass;
      ++local.by_source[int(got)];
    }
  }

  if (stats) {
    *stats += local;
  }
  return out;
}

void extract_patch(const float* pixels, int width, int height, int cx, int cy, int size, float fill, float* out) {
  std::fill(out, out + size_t(size) * size_t(size), fill);
  const int x0 = cx - size / 2, y0 = cy - size / 2;
  // The part of the patch inside the image, copied row by row: columns [xa, xb) of the image.
  const int xa = std::max(x0, 0), xb = std::min(x0 + size, width);
  if (xa >= xb) return;
  for (int py = 0; py < size; ++py) {
    const int y = y0 + py;
    if (y < 0 || y >= height) continue;
    std::memcpy(out + size_t(py) * size + (xa - x0), pixels + size_t(y) * width + xa, sizeof(float) * size_t(xb - xa));
  }
}

std::vector<float> extract_patch(const PreparedImage& image, int cx, int cy, int size, float fill) {
  if (size <= 0) throw BadConfig("extract_patch: size must be positive, got " + std::to_string(size));
  if (image.pixels.size() != size_t(image.width) * size_t(image.height))
    throw BadInput("prepared image '" + image.id + "': pixels has the wrong size for extract_patch");
  std::vector<float> out(size_t(size) * size);  // (size, size)
  extract_patch(image.pixels.data(), image.width, image.height, cx, cy, size, fill, out.data());
  return out;
}

PatchStats& PatchStats::operator+=(const PatchStats& other) {
  mass += other.mass;
  non_mass += other.non_mass;
  for (int s = 0; s < 5; ++s) by_source[s] += other.by_source[s], fallback[s] += other.fallback[s];
  dropped += other.dropped;
  masses_without_mask += other.masses_without_mask;
  negatives_withheld += other.negatives_withheld;
  return *this;
}

nlohmann::json PatchStats::to_json() const {
  nlohmann::json by = nlohmann::json::object(), fb = nlohmann::json::object();
  for (int s = 0; s < 5; ++s) {
    by[patch_source_name(PatchSource(s))] = by_source[s];
    if (s != int(PatchSource::mass)) fb[patch_source_name(PatchSource(s))] = fallback[s];
  }
  return {{"mass", mass},
          {"non_mass", non_mass},
          {"by_source", by},
          {"fallback_to_breast", fb},
          {"dropped", dropped},
          {"masses_without_mask", masses_without_mask},
          {"negatives_withheld", negatives_withheld}};
}

nlohmann::json PatchConfig::to_json() const {
  return {{"size", size},
          {"per_mass", per_mass},
          {"per_normal_image", per_normal_image},
          {"negative_ratio", negative_ratio},
          {"edge_width", edge_width},
          {"edge_fraction", edge_fraction},
          {"air_fraction", air_fraction},
          {"label_fraction", label_fraction},
          {"clear_of_roi", clear_of_roi},
          {"clear_margin", clear_margin}};
}

PatchConfig PatchConfig::from_json(const nlohmann::json& j) {
  namespace f = json_fields;
  const std::string where = "patches";
  f::require_object(j, where);
  PatchConfig c;
  for (const auto& [key, v] : j.items()) {
    if (key == "size")
      c.size = f::integer(v, where, key);
    else if (key == "per_mass")
      c.per_mass = f::integer(v, where, key);
    else if (key == "per_normal_image")
      c.per_normal_image = f::integer(v, where, key);
    else if (key == "negative_ratio")
      c.negative_ratio = f::number(v, where, key);
    else if (key == "edge_width")
      c.edge_width = f::integer(v, where, key);
    else if (key == "edge_fraction")
      c.edge_fraction = f::number(v, where, key);
    else if (key == "air_fraction")
      c.air_fraction = f::number(v, where, key);
    else if (key == "label_fraction")
      c.label_fraction = f::number(v, where, key);
    else if (key == "clear_of_roi")
      c.clear_of_roi = f::string(v, where, key);
    else if (key == "clear_margin")
      c.clear_margin = f::integer(v, where, key);
    else
      f::unknown_key(where, key,
                     "size, per_mass, per_normal_image, negative_ratio, edge_width, edge_fraction, air_fraction, "
                     "label_fraction, clear_of_roi, clear_margin");
  }
  c.validate();
  return c;
}

void PatchConfig::validate() const {
  auto fail = [](const std::string& what) { throw BadConfig("patches." + what); };
  auto in_range = [&](int v, int lo, int hi, const char* name) {
    if (v < lo || v > hi)
      fail(std::string(name) + " must be in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " +
           std::to_string(v));
  };
  in_range(size, 1, kMaxPatchSide, "size");
  in_range(per_mass, 0, kMaxPatchesPerMass, "per_mass");
  in_range(per_normal_image, 0, kMaxPatchesPerMass, "per_normal_image");
  if (!(negative_ratio >= 0 && negative_ratio <= 100))
    fail("negative_ratio must be in [0, 100], got " + decimal_text(negative_ratio));
  if (clear_of_roi != "patch" && clear_of_roi != "centre")
    fail("clear_of_roi must be \"patch\" or \"centre\", got \"" + clear_of_roi + "\"");
  in_range(clear_margin, 0, kMaxPatchSide, "clear_margin");
  if (edge_width < 1) fail("edge_width must be >= 1, got " + std::to_string(edge_width));
  const std::pair<const char*, double> fractions[] = {
      {"edge_fraction", edge_fraction}, {"air_fraction", air_fraction}, {"label_fraction", label_fraction}};
  for (const auto& [name, v] : fractions)
    if (!(v >= 0 && v <= 1)) fail(std::string(name) + " must be in [0, 1], got " + decimal_text(v));
  if (edge_fraction + air_fraction + label_fraction > 1 + 1e-12)
    fail("edge_fraction + air_fraction + label_fraction must be <= 1 (the rest is breast), got " +
         decimal_text(edge_fraction) + " + " + decimal_text(air_fraction) + " + " + decimal_text(label_fraction));
}

}  // namespace massmap::data
