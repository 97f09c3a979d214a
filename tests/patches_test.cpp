// Patch sampling on hand-built prepared images: mass centres inside the mask, negatives clear of every ROI, source
// fractions within binomial tolerance, fallbacks counted, determinism independent of call order; extract_patch
// against a plain loop for patches hanging off every edge; PatchConfig JSON.
#include "data/patches.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "base/errors.h"
#include "data/regions.h"
#include "support/check.h"

using namespace massmap;
using namespace massmap::data;

namespace {

// 120 x 100: breast is a half disc on the left (chest wall at x = 0), a pectoral wedge in its top-left corner, a
// label block on the right, air elsewhere; one mass (disc r = 6 at (30, 50), loose box) and one calcification box.
PreparedImage test_image() {
  PreparedImage im;
  im.id = "test-image";
  im.width = 120, im.height = 100;
  const size_t n = size_t(im.width) * im.height;
  im.pixels.assign(n, 0.f);    // (h, w)
  im.regions.assign(n, kAir);  // (h, w)
  im.mass_mask.assign(n, 0);   // (h, w)
  for (int y = 0; y < im.height; ++y)
    for (int x = 0; x < im.width; ++x) {
      const size_t i = size_t(y) * im.width + x;
      if (x * x + (y - 50) * (y - 50) < 70 * 70) im.regions[i] = x + y < 20 ? kPectoral : kBreast;
      if (x >= 100 && x < 112 && y >= 5 && y < 13) im.regions[i] = kLabel;
      if ((x - 30) * (x - 30) + (y - 50) * (y - 50) <= 36) im.mass_mask[i] = 1;
      im.pixels[i] = float(im.regions[i]) + 0.01f * float(x);
    }
  im.rois = {Box{21, 41, 20, 19}, Box{40, 75, 8, 8}};
  im.roi_types = {"mass", "calcification"};
  return im;
}

bool overlaps(const PatchSpec& p, int size, const Box& b) {
  const int x0 = p.cx - size / 2, y0 = p.cy - size / 2;
  return x0 < b.x + b.width && b.x < x0 + size && y0 < b.y + b.height && b.y < y0 + size;
}

uint8_t region_at(const PreparedImage& im, int x, int y) {
  return im.regions[size_t(y) * im.width + x];
}

// Both tissue and air within the (2r+1)^2 window: the sampler's definition of the breast edge.
bool near_edge(const PreparedImage& im, int x, int y, int r) {
  bool tissue = false, air = false;
  for (int yy = std::max(0, y - r); yy <= std::min(im.height - 1, y + r); ++yy)
    for (int xx = std::max(0, x - r); xx <= std::min(im.width - 1, x + r); ++xx) {
      const uint8_t c = region_at(im, xx, yy);
      tissue |= c == kBreast || c == kPectoral;
      air |= c == kAir;
    }
  return tissue && air;
}

PatchConfig small_config() {
  PatchConfig c;
  c.size = 16;
  c.per_mass = 200;
  c.edge_fraction = 0.2, c.air_fraction = 0.15, c.label_fraction = 0.1;
  return c;
}

}  // namespace

TEST_CASE("clear_of_roi centre: negatives keep only their centre out of every ROI box, so some show a lesion") {
  const PreparedImage im = test_image();
  PatchConfig c = small_config();
  c.size = 40;  // a large patch: clearing the whole of it leaves little of the breast
  c.per_mass = 400;
  c.edge_fraction = c.air_fraction = c.label_fraction = 0;
  int overlapping[2] = {0, 0};  // [patch, centre]
  for (int mode = 0; mode < 2; ++mode) {
    c.clear_of_roi = mode == 0 ? "patch" : "centre";
    for (const PatchSpec& p : sample_patches(im, 0, c, 5)) {
      if (p.label == PatchLabel::mass) continue;
      for (const Box& b : im.rois) {
        CHECK_FALSE(overlaps(p, 1, b));  // the centre is outside every box in both modes
        overlapping[mode] += overlaps(p, c.size, b);
      }
    }
  }
  CHECK(overlapping[0] == 0);
  // The boxes forbid their own area only: centres within 20 px of a box are a large share of the breast.
  CHECK(overlapping[1] > 100);
  c.clear_of_roi = "center";
  CHECK_THROWS_AS(c.validate(), BadConfig);
  CHECK(PatchConfig::from_json({{"clear_of_roi", "centre"}}).clear_of_roi == "centre");
  CHECK_THROWS_AS(PatchConfig::from_json({{"clear_of_roi", 1}}), BadConfig);
}

TEST_CASE("clear_margin: negatives keep that many more pixels clear of every ROI box, in both modes") {
  const PreparedImage im = test_image();
  PatchConfig c = small_config();
  c.per_mass = 400;
  c.edge_fraction = c.air_fraction = c.label_fraction = 0;
  auto grown = [](const Box& b, int m) { return Box{b.x - m, b.y - m, b.width + 2 * m, b.height + 2 * m}; };
  for (const char* mode : {"centre", "patch"}) {
    CAPTURE(mode);
    c.clear_of_roi = mode;
    const int side = c.clear_of_roi == "centre" ? 1 : c.size;
    // Without a margin some negatives come within 4 pixels of a box; with a margin of 4, none.
    int near_without = 0;
    c.clear_margin = 0;
    for (const PatchSpec& p : sample_patches(im, 0, c, 7))
      for (const Box& b : im.rois) near_without += p.label == PatchLabel::non_mass && overlaps(p, side, grown(b, 4));
    CHECK(near_without > 0);
    c.clear_margin = 4;
    int negatives = 0;
    for (const PatchSpec& p : sample_patches(im, 0, c, 7)) {
      if (p.label == PatchLabel::mass) continue;
      ++negatives;
      for (const Box& b : im.rois) CHECK_FALSE(overlaps(p, side, grown(b, 4)));
    }
    CHECK(negatives == 400);
  }
  CHECK(PatchConfig::from_json({{"clear_margin", 5}}).clear_margin == 5);
  CHECK(PatchConfig::from_json(PatchConfig::from_json({{"clear_margin", 3}}).to_json()).clear_margin == 3);
  CHECK_THROWS_AS(PatchConfig::from_json({{"clear_margin", -1}}), BadConfig);
}

TEST_CASE("mass patches sit in the mask, negatives avoid every ROI and match their source") {
  const PreparedImage im = test_image();
  const PatchConfig c = small_config();
  PatchStats stats;
  const auto patches = sample_patches(im, 3, c, 11, &stats);
  int mass = 0, non_mass = 0;
  for (const PatchSpec& p : patches) {
    CHECK(p.image == 3);
    REQUIRE(p.cx >= 0);
    REQUIRE(p.cx < im.width);
    REQUIRE(p.cy >= 0);
    REQUIRE(p.cy < im.height);
    if (p.label == PatchLabel::mass) {
      ++mass;
      CHECK(p.source == PatchSource::mass);
      CHECK(im.mass_mask[size_t(p.cy) * im.width + p.cx] == 1);
      continue;
    }
    ++non_mass;
    for (const Box& b : im.rois) CHECK_FALSE(overlaps(p, c.size, b));
    const uint8_t r = region_at(im, p.cx, p.cy);
    switch (p.source) {
      case PatchSource::breast:
        CHECK((r == kBreast || r == kPectoral));
        CHECK_FALSE(near_edge(im, p.cx, p.cy, c.edge_width));
        break;
      case PatchSource::edge:
        CHECK(r != kLabel);
        CHECK(near_edge(im, p.cx, p.cy, c.edge_width));
        break;
      case PatchSource::air:
        CHECK(r == kAir);
        CHECK_FALSE(near_edge(im, p.cx, p.cy, c.edge_width));
        break;
      case PatchSource::label:
        CHECK(r == kLabel);
        break;
      case PatchSource::mass:
        FAIL("a negative with source mass");
        break;
    }
  }
  CHECK(mass == c.per_mass);  // one mass ROI
  CHECK(non_mass == mass);    // balanced
  CHECK(stats.mass == mass);
  CHECK(stats.non_mass == non_mass);
  CHECK(stats.dropped == 0);
  CHECK(stats.masses_without_mask == 0);
  // The whole mask is reachable: centres spread over it rather than piling on one pixel.
  std::vector<std::pair<int, int>> centres;
  for (const PatchSpec& p : patches)
    if (p.label == PatchLabel::mass) centres.emplace_back(p.cx, p.cy);
  std::sort(centres.begin(), centres.end());
  centres.erase(std::unique(centres.begin(), centres.end()), centres.end());
  CHECK(centres.size() > 60);  // the disc has 113 pixels; 200 uniform draws cover ~ 96 of them
}

TEST_CASE("negative sources follow the configured fractions within binomial tolerance") {
  const PreparedImage im = test_image();
  PatchConfig c = small_config();
  c.per_mass = 4000;
  PatchStats stats;
  // Negatives whose square abuts the mass box on each side: the exclusion zone is exactly as wide as it must be.
  int touching[4] = {0, 0, 0, 0};  // left, right, top, bottom
  const Box& m = im.rois[0];
  for (int image = 0; image < 5; ++image)
    for (const PatchSpec& p : sample_patches(im, image, c, 99, &stats)) {
      if (p.label != PatchLabel::non_mass) continue;
      const int x0 = p.cx - c.size / 2, y0 = p.cy - c.size / 2;
      const bool rows = y0 < m.y + m.height && m.y < y0 + c.size, cols = x0 < m.x + m.width && m.x < x0 + c.size;
      touching[0] += rows && x0 + c.size == m.x;
      touching[1] += rows && x0 == m.x + m.width;
      touching[2] += cols && y0 + c.size == m.y;
      touching[3] += cols && y0 == m.y + m.height;
    }
  for (int side = 0; side < 4; ++side) CHECK(touching[side] > 0);
  const double n = double(stats.non_mass);
  REQUIRE(n == 20000);
  CHECK(stats.fallback[int(PatchSource::edge)] + stats.fallback[int(PatchSource::air)] +
            stats.fallback[int(PatchSource::label)] ==
        0);
  const std::pair<PatchSource, double> expected[] = {
      {PatchSource::edge, c.edge_fraction},
      {PatchSource::air, c.air_fraction},
      {PatchSource::label, c.label_fraction},
      {PatchSource::breast, 1 - c.edge_fraction - c.air_fraction - c.label_fraction}};
  for (const auto& [source, p] : expected) {
    const double got = double(stats.by_source[int(source)]), sd = std::sqrt(n * p * (1 - p));
    INFO(patch_source_name(source) << ": " << got << " of " << n << ", expected " << n * p << " +- " << sd);
    CHECK(std::abs(got - n * p) < 4 * sd);
  }
  const nlohmann::json j = stats.to_json();
  CHECK(j["by_source"]["edge"] == stats.by_source[int(PatchSource::edge)]);
}

TEST_CASE("sampling is a pure function of (seed, image index)") {
  const PreparedImage a = test_image();
  PreparedImage b = test_image();
  b.rois[0] = Box{14, 30, 35, 40};  // a different image: same mask, looser box
  const PatchConfig c = small_config();
  auto key = [](const std::vector<PatchSpec>& v) {
    std::vector<std::tuple<int, int, int, int, int>> out;
    for (const PatchSpec& p : v) out.emplace_back(p.image, p.cx, p.cy, int(p.label), int(p.source));
    return out;
  };
  // Forward order, then reverse with a different image sampled in between: identical lists.
  const auto a0 = key(sample_patches(a, 0, c, 5)), b1 = key(sample_patches(b, 1, c, 5));
  sample_patches(b, 7, c, 123);
  const auto b1_again = key(sample_patches(b, 1, c, 5)), a0_again = key(sample_patches(a, 0, c, 5));
  CHECK(a0 == a0_again);
  CHECK(b1 == b1_again);
  CHECK(key(sample_patches(a, 0, c, 6)) != a0);  // another seed
  auto a1 = key(sample_patches(a, 1, c, 5));     // another image index: other draws
  for (auto& t : a1) std::get<0>(t) = 0;
  CHECK(a1 != a0);
}

TEST_CASE("a source with no valid centre falls back to breast and is counted; label share without labels is breast") {
  PreparedImage im = test_image();
  std::fill(im.regions.begin(), im.regions.end(), uint8_t(kBreast));  // no air, no edge, no label
  PatchConfig c = small_config();
  c.per_mass = 2000;
  PatchStats stats;
  const auto patches = sample_patches(im, 0, c, 3, &stats);
  CHECK(stats.non_mass == 2000);
  CHECK(stats.by_source[int(PatchSource::breast)] == 2000);
  CHECK(stats.fallback[int(PatchSource::label)] == 0);  // no label pixels: label was never asked for
  const double n = 2000;
  for (auto [source, p] :
       {std::pair<PatchSource, double>{PatchSource::edge, c.edge_fraction}, {PatchSource::air, c.air_fraction}}) {
    const double got = double(stats.fallback[int(source)]);
    CHECK(std::abs(got - n * p) < 4 * std::sqrt(n * p * (1 - p)));
  }
  for (const PatchSpec& p : patches) CHECK(p.source != PatchSource::label);
}

TEST_CASE("normal images, masses without mask pixels, no room at all") {
  PreparedImage normal = test_image();
  normal.rois.clear(), normal.roi_types.clear();
  std::fill(normal.mass_mask.begin(), normal.mass_mask.end(), uint8_t(0));
  PatchConfig c = small_config();
  CHECK(sample_patches(normal, 0, c, 1).empty());  // per_normal_image 0: exact class balance
  c.per_normal_image = 9;
  const auto negatives = sample_patches(normal, 0, c, 1);
  CHECK(negatives.size() == 9);
  for (const PatchSpec& p : negatives) CHECK(p.label == PatchLabel::non_mass);

  // negative_ratio scales the negatives of a mass image: round(ratio * positives), positives unchanged.
  for (double ratio : {0.0, 0.5, 1.0, 2.5}) {
    PatchConfig r = small_config();
    r.negative_ratio = ratio;
    const auto got = sample_patches(test_image(), 0, r, 1);
    const auto masses =
        std::count_if(got.begin(), got.end(), [](const PatchSpec& p) { return p.label == PatchLabel::mass; });
    const PreparedImage im = test_image();
    CHECK(masses == r.per_mass * std::count(im.roi_types.begin(), im.roi_types.end(), std::string("mass")));
    CHECK(int64_t(got.size()) - masses == std::lround(ratio * double(masses)));
  }

  PreparedImage lost = test_image();  // the mask fell outside its box (e.g. lost in resampling)
  lost.rois[0] = Box{80, 10, 5, 5};
  PatchStats stats;
  CHECK(sample_patches(lost, 0, small_config(), 1, &stats).empty());
  CHECK(stats.masses_without_mask == 1);

  PreparedImage crowded = test_image();  // one ROI covering the image: negatives have nowhere to go
  crowded.rois[1] = Box{0, 0, crowded.width, crowded.height};
  PatchStats crowded_stats;
  const auto only_masses = sample_patches(crowded, 0, small_config(), 1, &crowded_stats);
  CHECK(crowded_stats.dropped == small_config().per_mass);
  CHECK(only_masses.size() == size_t(small_config().per_mass));
}

TEST_CASE("inconsistent prepared images are bad input naming the image") {
  PreparedImage im = test_image();
  im.roi_types.pop_back();
  CHECK_THROWS_WITH_AS(sample_patches(im, 0, PatchConfig{}, 1), doctest::Contains("test-image"), BadInput);
  im = test_image();
  im.regions.resize(10);
  CHECK_THROWS_WITH_AS(sample_patches(im, 0, PatchConfig{}, 1), doctest::Contains("regions"), BadInput);
}

TEST_CASE("extract_patch equals a plain loop, patches hanging off every edge included") {
  PreparedImage im;
  im.width = 37, im.height = 23;
  im.pixels = testing_support::random_vector(size_t(im.width) * im.height, 42, 0.f, 1.f);  // (23, 37)
  for (int size : {1, 2, 8, 9, 40}) {
    for (int cy = -25; cy <= im.height + 25; cy += 3)
      for (int cx = -25; cx <= im.width + 25; cx += 4) {
        const std::vector<float> got = extract_patch(im, cx, cy, size, -7.f);  // (size, size)
        std::vector<float> want(size_t(size) * size);                          // (size, size)
        for (int py = 0; py < size; ++py)
          for (int px = 0; px < size; ++px) {
            const int x = cx - size / 2 + px, y = cy - size / 2 + py;
            const bool inside = x >= 0 && x < im.width && y >= 0 && y < im.height;
            want[size_t(py) * size + px] = inside ? im.pixels[size_t(y) * im.width + x] : -7.f;
          }
        INFO("size " << size << " centre (" << cx << ", " << cy << ")");
        REQUIRE(got == want);
      }
  }
}

TEST_CASE("PatchConfig JSON: round trip, unknown keys and bad values rejected") {
  PatchConfig c;
  c.size = 128, c.per_mass = 3, c.per_normal_image = 2, c.edge_width = 5, c.edge_fraction = 0.25;
  c.negative_ratio = 1.5;
  const PatchConfig back = PatchConfig::from_json(c.to_json());
  CHECK(back.to_json() == c.to_json());
  CHECK_THROWS_WITH_AS(PatchConfig::from_json({{"sise", 3}}), doctest::Contains("'sise'"), BadConfig);
  CHECK_THROWS_WITH_AS(PatchConfig::from_json({{"size", "big"}}), doctest::Contains("patches.size"), BadConfig);
  CHECK_THROWS_WITH_AS(PatchConfig::from_json({{"air_fraction", 0.6}, {"edge_fraction", 0.6}}),
                       doctest::Contains("<= 1"), BadConfig);
  CHECK_THROWS_AS(PatchConfig::from_json({{"per_mass", -1}}), BadConfig);
  // Numbers in the messages read as written, not as %f pads them.
  CHECK_THROWS_WITH_AS(PatchConfig::from_json({{"negative_ratio", -0.5}}), doctest::Contains("got -0.5"), BadConfig);
  CHECK_THROWS_WITH_AS(PatchConfig::from_json({{"air_fraction", 1.25}}), doctest::Contains("got 1.25"), BadConfig);
  CHECK_THROWS_WITH_AS(PatchConfig::from_json({{"air_fraction", 0.6}, {"edge_fraction", 0.7}}),
                       doctest::Contains("got 0.7 + 0.6 + 0.05"), BadConfig);
  CHECK_THROWS_AS(PatchConfig::from_json(nlohmann::json::array()), BadConfig);
}
