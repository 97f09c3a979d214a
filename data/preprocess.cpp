// From a decoded mammogram to a prepared image: segment at the source resolution (labels and the skin line are
// sharpest there), resample pixels (area / bilinear) and maps (nearest) to the configured spacing, normalise by
// percentiles of the breast's pixels, carry the lesions' masks and boxes to the new grid.
#include "data/preprocess.h"

#include <algorithm>
#include <cmath>

#include "base/errors.h"
#include "base/text.h"
#include "data/json_fields.h"

namespace massmap::data {

nlohmann::json PreprocessConfig::to_json() const {
  return {{"spacing_mm", spacing_mm},
          {"default_spacing_mm", default_spacing_mm},
          {"low_percentile", low_percentile},
          {"high_percentile", high_percentile},
          {"offset", offset}};
}

PreprocessConfig PreprocessConfig::from_json(const nlohmann::json& j) {
  namespace f = json_fields;
  const std::string where = "preprocess";
  f::require_object(j, where);
  PreprocessConfig c;
  for (const auto& [key, v] : j.items()) {
    if (key == "spacing_mm")
      c.spacing_mm = f::number(v, where, key);
    else if (key == "default_spacing_mm")
      c.default_spacing_mm = f::number(v, where, key);
    else if (key == "low_percentile")
      c.low_percentile = f::number(v, where, key);
    else if (key == "high_percentile")
      c.high_percentile = f::number(v, where, key);
    else if (key == "offset")
      c.offset = f::number(v, where, key);
    else
      f::unknown_key(where, key, "spacing_mm, default_spacing_mm, low_percentile, high_percentile, offset");
  }
  c.validate();
  return c;
}

void PreprocessConfig::validate() const {
  auto fail = [](const std::string& what) { throw BadConfig("preprocess." + what); };
  // Mammograms are scanned or acquired at 0.025-0.2 mm; 0.01-10 mm leaves room for toy data and thumbnails.
  if (!(spacing_mm >= 0.01 && spacing_mm <= 10))
    fail("spacing_mm must lie in 0.01..10 mm, got " + decimal_text(spacing_mm));
  if (!(default_spacing_mm == 0 || (default_spacing_mm >= 0.01 && default_spacing_mm <= 10)))
    fail("default_spacing_mm must be 0 (unknown spacing is an error) or lie in 0.01..10 mm, got " +
         decimal_text(default_spacing_mm));
  if (!(low_percentile >= 0 && low_percentile < 100))
    fail("low_percentile must lie in [0, 100), got " + decimal_text(low_percentile));
  if (!(high_percentile > low_percentile && high_percentile <= 100))
    fail("high_percentile must lie in (low_percentile, 100], got " + decimal_text(high_percentile));
  if (!(offset >= -10 && offset <= 10)) fail("offset must lie in -10..10, got " + decimal_text(offset));
}

namespace {

// The p-th percentile (0..100) of `v`, interpolated between order statistics (numpy's default); reorders `v`.
float percentile(std::vector<float>& v, double p) {
  const double q = p / 100 * double(v.size() - 1);
  const size_t lo = size_t(std::floor(q));
  std::nth_element(v.begin(), v.begin() + ptrdiff_t(lo), v.end());
  const float a = v[lo];
  if (lo + 1 >= v.size()) return a;
  const float b = *std::min_element(v.begin() + ptrdiff_t(lo) + 1, v.end());  // the next order statistic
  return float(a + (q - double(lo)) * (b - a));
}

// A box in source pixels to the prepared grid, by the rule resampling follows: prepared pixel o spans source
// [o s, (o + 1) s), and the box becomes every prepared pixel it overlaps. Exact on integer factors.
Box map_box(const Box& b, double sx, double sy, int out_width, int out_height) {
  constexpr double eps = 1e-9;  // x / s lands on an integer up to rounding when s divides x
  const int x0 = std::clamp(int(std::floor(b.x / sx + eps)), 0, out_width - 1);
  const int y0 = std::clamp(int(std::floor(b.y / sy + eps)), 0, out_height - 1);
  const int x1 = std::clamp(int(std::ceil((b.x + b.width) / sx - eps)), x0 + 1, out_width);
  const int y1 = std::clamp(int(std::ceil((b.y + b.height) / sy - eps)), y0 + 1, out_height);
  return {x0, y0, x1 - x0, y1 - y0};
}

}  // namespace

PreparedImage prepare_image(const Image& image, const DatasetImage& meta, const PreprocessConfig& config) {
  config.validate();
  const int w = image.width, h = image.height;
  if (w <= 0 || h <= 0 || image.pixels.size() != size_t(w) * size_t(h))
    throw BadInput(meta.id + ": image of " + std::to_string(w) + "x" + std::to_string(h) + " with " +
                   std::to_string(image.pixels.size()) + " pixels");
  const double source = image.pixel_spacing_mm > 0 ? image.pixel_spacing_mm
                        : meta.spacing_mm > 0      ? meta.spacing_mm
                                                   : config.default_spacing_mm;
  if (!(source > 0))
    throw BadInput(meta.id + ": pixel spacing unknown (neither the image nor its dataset entry gives one) and " +
                   "preprocess.default_spacing_mm is 0");
  // A spacing in the wrong unit (micrometres for millimetres) would ask for an image thousands of times larger.
  if (!(source >= 0.01 && source <= 10))
    throw BadInput(meta.id + ": pixel spacing " + decimal_text(source) + " mm outside 0.01..10 mm (a unit mistake?)");
  {
    const double prepared_pixels = double(w) / (config.spacing_mm / source) * double(h) / (config.spacing_mm / source);
    if (prepared_pixels > double(kMaxImageBytes / 2))
      throw BadInput(meta.id + ": " + std::to_string(w) + "x" + std::to_string(h) + " pixels at " +
                     decimal_text(source) + " mm would be " + std::to_string(int64_t(prepared_pixels)) + " pixels at " +
                     decimal_text(config.spacing_mm) + " mm (at most 2^29)");
  }

  PreparedImage p;
  p.id = meta.id;
  p.spacing_mm = config.spacing_mm;
  p.scale = config.spacing_mm / source;
  p.width = std::max(1, int(std::lround(w / p.scale)));
  p.height = std::max(1, int(std::lround(h / p.scale)));
  const double sx = double(w) / p.width, sy = double(h) / p.height;  // the grid's exact factors

  const std::vector<uint8_t> regions = segment_breast(image, meta.laterality, meta.view);  // (h, w)
  p.regions = resample_nearest(regions, w, h, p.width, p.height);
  {
    std::vector<float> source_pixels(image.pixels.begin(), image.pixels.end());  // (h, w)
    p.pixels = resample_area(source_pixels, w, h, p.width, p.height);
  }

  // Percentiles over the breast (pectoral muscle and labels excluded: they would pin the high end); over the whole
  // image when no breast was found.
  std::vector<float> values;  // (breast pixels)
  for (size_t i = 0; i < p.pixels.size(); ++i)
    if (p.regions[i] == kBreast) values.push_back(p.pixels[i]);
  if (values.empty()) values = p.pixels;
  p.low = percentile(values, config.low_percentile);
  p.high = percentile(values, config.high_percentile);
  if (!(p.high > p.low)) p.high = p.low + 1;  // a flat image: shift only
  const float inv = 1.f / (p.high - p.low);
  const float offset = float(config.offset);
  for (float& v : p.pixels) v = (v - p.low) * inv - offset;
  // The air level, for padding beyond the image: the median of the air pixels, else raw 0 normalised.
  {
    std::vector<float> air;  // (air pixels)
    for (size_t i = 0; i < p.pixels.size(); ++i)
      if (p.regions[i] == kAir) air.push_back(p.pixels[i]);
    p.air = air.empty() ? -p.low * inv - offset : percentile(air, 50);
  }

  p.mass_mask.assign(p.pixels.size(), 0);
  try {
    std::vector<uint8_t> masses;  // (h, w) 1 inside any mass's mask; allocated at the first mass
    for (const DatasetLesion& l : meta.lesions) {
      if (!l.has_box && !l.has_circle && l.mask_path.empty()) {  // known to exist, not where: see unlocated_lesions
        ++p.unlocated_lesions;
        continue;
      }
      if (l.type == "mass") {
        const std::vector<uint8_t> m = lesion_mask(l, w, h);  // (h, w) 0/1
        if (masses.empty()) masses.assign(m.size(), 0);
        for (size_t i = 0; i < m.size(); ++i) masses[i] |= m[i];
      }
      p.rois.push_back(map_box(lesion_roi(l, w, h), sx, sy, p.width, p.height));
      p.roi_types.push_back(l.type);
    }
    if (!masses.empty()) p.mass_mask = resample_nearest(masses, w, h, p.width, p.height);
  } catch (const BadInput& e) {
    throw BadInput(meta.id + ": " + e.what());
  }
  return p;
}

}  // namespace massmap::data
