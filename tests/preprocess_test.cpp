// Preprocessing: the configuration's JSON, resampling against closed forms (constants stay constant, ramps stay
// ramps, box sums are kept on integer factors, nearest picks the pixel under the centre), and prepare_image on
// synth-v1 images: the spacing's precedence, masks and ROI boxes carried exactly on integer factors, percentile
// normalisation over the breast, and its errors.
#include "data/preprocess.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "base/errors.h"
#include "data/image_io.h"
#include "data/synth.h"

namespace fs = std::filesystem;
using namespace massmap;
using namespace massmap::data;

namespace {

struct TempDir {
  fs::path path = fs::temp_directory_path() /
                  ("massmap-preprocess-" + std::to_string(getpid()) + "-" + std::to_string(std::random_device{}()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

// f(x, y) = a x + b y + c sampled at pixel centres, in pixel units of the grid: value of pixel (x, y).
std::vector<float> ramp(int w, int h, double a, double b, double c) {
  std::vector<float> v(size_t(w) * size_t(h));  // (h, w)
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) v[size_t(y) * size_t(w) + size_t(x)] = float(a * x + b * y + c);
  return v;
}

double max_abs(const std::vector<float>& v, double target) {
  double m = 0;
  for (float e : v) m = std::max(m, std::fabs(e - target));
  return m;
}

Image as_image(const SynthImage& s) {
  Image im;
  im.width = s.width, im.height = s.height, im.bits = 12;
  im.pixels = s.pixels;
  return im;
}

SynthParams small_params() {
  SynthParams p;
  p.width = 208, p.height = 256, p.spacing_mm = 0.2, p.normal_fraction = 0, p.masses_max = 3;
  p.mass_max_mm = 15;  // the 42 x 51 mm field fits masses up to 0.4 x 42 mm
  return p;
}

}  // namespace

TEST_CASE("PreprocessConfig: JSON round trip, unknown keys and bad values") {
  PreprocessConfig c;
  c.spacing_mm = 0.15, c.default_spacing_mm = 0.05, c.low_percentile = 2, c.high_percentile = 98.5;
  const PreprocessConfig back = PreprocessConfig::from_json(c.to_json());
  CHECK(back.spacing_mm == c.spacing_mm);
  CHECK(back.default_spacing_mm == c.default_spacing_mm);
  CHECK(back.low_percentile == c.low_percentile);
  CHECK(back.high_percentile == c.high_percentile);
  CHECK(PreprocessConfig::from_json(nlohmann::json::object()).spacing_mm == 0.2);  // every key optional

  auto message = [](const nlohmann::json& j) -> std::string {
    try {
      PreprocessConfig::from_json(j);
    } catch (const BadConfig& e) {
      return e.what();
    }
    return "no error";
  };
  CHECK(message({{"spacing", 0.2}}).find("'spacing'") != std::string::npos);
  CHECK(message({{"spacing_mm", "0.2"}}).find("preprocess.spacing_mm") != std::string::npos);
  CHECK(message({{"spacing_mm", 0}}).find("spacing_mm") != std::string::npos);
  CHECK(message({{"default_spacing_mm", -1}}).find("default_spacing_mm") != std::string::npos);
  CHECK(message({{"low_percentile", 50}, {"high_percentile", 50}}).find("high_percentile") != std::string::npos);
  CHECK(message({{"low_percentile", -1}}).find("low_percentile") != std::string::npos);
  CHECK(message({{"offset", 11}}).find("preprocess.offset") != std::string::npos);
  CHECK(PreprocessConfig::from_json({{"offset", 0.5}}).offset == 0.5);
  CHECK(message(nlohmann::json::array()).find("object") != std::string::npos);
}

TEST_CASE("resample_area: constants stay constant, both directions, any factor") {
  const std::vector<float> in(size_t(37) * size_t(23), 7.25f);  // (23, 37)
  for (const auto& [ow, oh] : {std::pair{37, 23}, {12, 9}, {5, 4}, {1, 1}, {74, 46}, {100, 61}, {15, 50}}) {
    const std::vector<float> out = resample_area(in, 37, 23, ow, oh);
    REQUIRE(out.size() == size_t(ow) * size_t(oh));
    CHECK_MESSAGE(max_abs(out, 7.25) < 1e-5, ow << "x" << oh);
  }
}

TEST_CASE("resample_area: box means and sums on integer factors") {
  const int w = 12, h = 9;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0, 4095);
  std::vector<float> in(size_t(w) * size_t(h));  // (h, w)
  for (float& v : in) v = u(rng);
  for (const auto& [fx, fy] : {std::pair{2, 3}, {3, 3}, {4, 1}, {12, 9}}) {
    const int ow = w / fx, oh = h / fy;
    const std::vector<float> out = resample_area(in, w, h, ow, oh);
    double sum_in = 0, sum_out = 0;
    for (float v : in) sum_in += v;
    for (int oy = 0; oy < oh; ++oy)
      for (int ox = 0; ox < ow; ++ox) {
        double block = 0;
        for (int y = oy * fy; y < (oy + 1) * fy; ++y)
          for (int x = ox * fx; x < (ox + 1) * fx; ++x) block += in[size_t(y) * size_t(w) + size_t(x)];
        const float got = out[size_t(oy) * size_t(ow) + size_t(ox)];
        CHECK(got == doctest::Approx(block / (fx * fy)).epsilon(1e-6));
        sum_out += got;
      }
    CHECK(sum_out * fx * fy == doctest::Approx(sum_in).epsilon(1e-6));
  }
}

TEST_CASE("resample_area: a ramp stays a ramp") {
  // Output pixel o sits at input coordinate (o + 0.5) s - 0.5, so a ramp a x + b y + c becomes
  // a ((ox + 0.5) sx - 0.5) + b ((oy + 0.5) sy - 0.5) + c.
  const int w = 60, h = 45;
  const double a = 1.5, b = -0.75, c = 100;
  const std::vector<float> in = ramp(w, h, a, b, c);
  auto expected = [&](int ox, int oy, double sx, double sy) {
    return a * ((ox + 0.5) * sx - 0.5) + b * ((oy + 0.5) * sy - 0.5) + c;
  };
  SUBCASE("integer factors: exact") {
    const std::vector<float> out = resample_area(in, w, h, 20, 15);  // 3 x 3
    for (int oy = 0; oy < 15; ++oy)
      for (int ox = 0; ox < 20; ++ox)
        CHECK(out[size_t(oy) * 20 + size_t(ox)] == doctest::Approx(expected(ox, oy, 3, 3)));
  }
  SUBCASE("non-integer factors: within |a| / 8 sx + |b| / 8 sy") {
    // The mean of the staircase floor(x) over a span of length s differs from the line by at most 1 / (8 s).
    const int ow = 24, oh = 18;  // 2.5 x 2.5
    const std::vector<float> out = resample_area(in, w, h, ow, oh);
    const double sx = 2.5, sy = 2.5, bound = std::fabs(a) / (8 * sx) + std::fabs(b) / (8 * sy) + 1e-4;
    double worst = 0;
    for (int oy = 0; oy < oh; ++oy)
      for (int ox = 0; ox < ow; ++ox)
        worst = std::max(worst, std::fabs(out[size_t(oy) * size_t(ow) + size_t(ox)] - expected(ox, oy, sx, sy)));
    CHECK(worst <= bound);
  }
  SUBCASE("upsampling: bilinear, exact between the outermost pixel centres") {
    const int ow = 150, oh = 90;  // 1/2.5 and 1/2
    const std::vector<float> out = resample_area(in, w, h, ow, oh);
    const double sx = double(w) / ow, sy = double(h) / oh;
    for (int oy = 0; oy < oh; ++oy)
      for (int ox = 0; ox < ow; ++ox) {
        const double x = std::clamp((ox + 0.5) * sx - 0.5, 0.0, w - 1.0),
                     y = std::clamp((oy + 0.5) * sy - 0.5, 0.0, h - 1.0);
        CHECK(out[size_t(oy) * size_t(ow) + size_t(ox)] == doctest::Approx(a * x + b * y + c).epsilon(1e-5));
      }
  }
}

TEST_CASE("resample_nearest: the pixel under each output centre") {
  const int w = 6, h = 4;
  std::vector<uint8_t> in(size_t(w) * size_t(h));  // (h, w) value = 10 y + x
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) in[size_t(y) * size_t(w) + size_t(x)] = uint8_t(10 * y + x);
  const std::vector<uint8_t> down = resample_nearest(in, w, h, 3, 2);  // factor 2: centre of (o) is 2 o + 1
  CHECK(down == std::vector<uint8_t>{11, 13, 15, 31, 33, 35});
  const std::vector<uint8_t> up = resample_nearest(in, w, h, 12, 8);  // factor 1/2: output o reads o / 2
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 12; ++x) CHECK(up[size_t(y) * 12 + size_t(x)] == 10 * (y / 2) + x / 2);
  CHECK_THROWS_AS(resample_nearest(in, w, h + 1, 3, 2), BadInput);
  CHECK_THROWS_AS(resample_area(std::vector<float>(24), w, h, 0, 2), BadInput);
}

TEST_CASE("prepare_image: synth-v1 at 0.2 mm to 0.4 mm, an integer factor") {
  TempDir dir;
  const SynthImage s = synth_image(small_params(), 5, 1);  // L MLO with 1-3 masses
  REQUIRE(!s.lesions.empty());
  DatasetImage meta;
  meta.id = "P00000_L_MLO", meta.laterality = "L", meta.view = "MLO", meta.spacing_mm = 0.2;
  for (size_t k = 0; k < s.lesions.size(); ++k) {
    const SynthLesion& l = s.lesions[k];
    DatasetLesion d;
    d.type = lesion_type_name(l.type);
    d.has_box = true, d.box = l.box;
    if (!l.mask.empty()) {
      Image m;
      m.width = s.width, m.height = s.height, m.bits = 8;
      m.pixels.assign(l.mask.begin(), l.mask.end());
      d.mask_path = (dir.path / ("mask" + std::to_string(k) + ".png")).string();
      write_png8(d.mask_path, m);
    }
    meta.lesions.push_back(d);
  }
  PreprocessConfig config;
  config.spacing_mm = 0.4;
  const PreparedImage p = prepare_image(as_image(s), meta, config);
  CHECK(p.id == meta.id);
  CHECK(p.width == 104);
  CHECK(p.height == 128);
  CHECK(p.scale == doctest::Approx(2));
  CHECK(p.spacing_mm == 0.4);
  REQUIRE(p.pixels.size() == size_t(104) * 128);

  // Boxes: prepared pixel o spans source [2 o, 2 o + 2); a box becomes every prepared pixel it overlaps.
  REQUIRE(p.rois.size() == s.lesions.size());
  for (size_t k = 0; k < s.lesions.size(); ++k) {
    const Box& b = s.lesions[k].box;
    const int x1 = (b.x + b.width + 1) / 2, y1 = (b.y + b.height + 1) / 2;
    CHECK(p.rois[k].x == b.x / 2);
    CHECK(p.rois[k].y == b.y / 2);
    CHECK(p.rois[k].width == x1 - b.x / 2);
    CHECK(p.rois[k].height == y1 - b.y / 2);
    CHECK(p.roi_types[k] == lesion_type_name(s.lesions[k].type));
  }
  // The mass mask: every mass's mask, nearest (source pixel 2 o + 1).
  std::vector<uint8_t> masses(s.pixels.size(), 0);  // (h, w) union of the masks
  for (const SynthLesion& l : s.lesions)
    for (size_t i = 0; i < l.mask.size(); ++i) masses[i] |= l.mask[i];
  CHECK(p.mass_mask == resample_nearest(masses, s.width, s.height, p.width, p.height));
  CHECK(std::count(p.mass_mask.begin(), p.mass_mask.end(), 1) > 0);

  // Regions still match the truth after resampling.
  const std::vector<uint8_t> truth = resample_nearest(s.regions, s.width, s.height, p.width, p.height);
  CHECK(region_dice(p.regions, truth, kBreast) >= 0.97);
  CHECK(region_dice(p.regions, truth, kPectoral) >= 0.85);

  // Normalisation: low/high are the 1st and 99th percentiles of the breast's resampled pixels.
  int64_t breast = 0, below = 0, above = 0;
  for (size_t i = 0; i < p.pixels.size(); ++i) {
    if (p.regions[i] != kBreast) continue;
    ++breast, below += p.pixels[i]<0, above += p.pixels[i]> 1;
  }
  CHECK(double(below) / breast == doctest::Approx(0.01).epsilon(0.2));
  CHECK(double(above) / breast == doctest::Approx(0.01).epsilon(0.2));
  CHECK(p.low > 150);  // above the air
  CHECK(p.high < 4095);
  // The source intensities: pixel = (area mean - low) / (high - low).
  const std::vector<float> mean =
      resample_area(std::vector<float>(s.pixels.begin(), s.pixels.end()), s.width, s.height, p.width, p.height);
  for (size_t i = 0; i < p.pixels.size(); i += 97)
    CHECK(p.pixels[i] == doctest::Approx((mean[i] - p.low) / (p.high - p.low)).epsilon(1e-4));

  // An offset moves every pixel and the air level down by itself, nothing else.
  config.offset = 0.5;
  const PreparedImage centred = prepare_image(as_image(s), meta, config);
  CHECK(centred.low == p.low);
  CHECK(centred.high == p.high);
  CHECK(centred.air == doctest::Approx(p.air - 0.5f).epsilon(1e-6));
  CHECK(centred.regions == p.regions);
  int off = 0;
  for (size_t i = 0; i < p.pixels.size(); ++i) off += std::abs(centred.pixels[i] - (p.pixels[i] - 0.5f)) > 1e-6f;
  CHECK(off == 0);
}

TEST_CASE("prepare_image: spacing from the image, else the dataset, else the default; else an error naming the id") {
  const SynthImage s = synth_image(small_params(), 5, 0);
  Image im = as_image(s);
  DatasetImage meta;
  meta.id = "case-17";
  PreprocessConfig config;
  config.spacing_mm = 0.4;
  try {
    prepare_image(im, meta, config);
    FAIL("no error");
  } catch (const BadInput& e) {
    CHECK(std::string(e.what()).find("case-17") != std::string::npos);
  }
  config.default_spacing_mm = 0.1;
  CHECK(prepare_image(im, meta, config).width == 52);  // 208 at 0.1 mm to 0.4 mm
  meta.spacing_mm = 0.8;
  CHECK(prepare_image(im, meta, config).width == 416);  // upsampled: 0.8 mm to 0.4 mm
  im.pixel_spacing_mm = 0.2;
  const PreparedImage p = prepare_image(im, meta, config);
  CHECK(p.width == 104);
  CHECK(p.scale == doctest::Approx(2));
}

TEST_CASE("prepare_image: a mask of the wrong size names the image; an all-air image prepares without a breast") {
  TempDir dir;
  const SynthImage s = synth_image(small_params(), 5, 0);
  DatasetImage meta;
  meta.id = "odd-mask", meta.spacing_mm = 0.2;
  DatasetLesion l;
  l.type = "mass", l.mask_path = (dir.path / "m.png").string();
  Image m;
  m.width = 10, m.height = 10, m.bits = 8, m.pixels.assign(100, 1);
  write_png8(l.mask_path, m);
  meta.lesions.push_back(l);
  try {
    prepare_image(as_image(s), meta, PreprocessConfig());
    FAIL("no error");
  } catch (const BadInput& e) {
    CHECK(std::string(e.what()).find("odd-mask") != std::string::npos);
  }

  Image air;
  air.width = 64, air.height = 80, air.bits = 12;
  std::mt19937 rng(1);
  std::normal_distribution<float> noise(150, 6);
  for (int i = 0; i < 64 * 80; ++i) air.pixels.push_back(uint16_t(std::lround(noise(rng))));
  DatasetImage empty;
  empty.id = "air", empty.spacing_mm = 0.2;
  const PreparedImage p = prepare_image(air, empty, PreprocessConfig());
  CHECK(std::count(p.regions.begin(), p.regions.end(), kAir) == int64_t(p.regions.size()));
  CHECK(p.high > p.low);  // percentiles over the whole image
  for (float v : p.pixels) REQUIRE(std::isfinite(v));
  CHECK(p.rois.empty());
  CHECK(std::count(p.mass_mask.begin(), p.mass_mask.end(), 0) == int64_t(p.mass_mask.size()));
}
