// The search library (apps/search/): the cells that cover a plane, peaks and suppression against plain loops, the
// geometry oracle (a bright cone planted in the original image is found by a net that reads each crop's centre
// pixel, at the cell the geometry places within half a stride of it, for spacings finer and coarser than the
// training spacing and both lateralities), and the padding-free tiling net's map against the classifier on each
// cell's crop, with size buckets and with shift-and-stitch, on cpu and simt; detections restricted to breast; the
// overlay's pixels against the blend and marks computed by hand.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "apps/search/localize.h"
#include "apps/search/map_runner.h"
#include "apps/search/overlay.h"
#include "apps/search/peaks.h"
#include "base/errors.h"
#include "data/regions.h"
#include "engine/executor.h"
#include "engine/passes.h"
#include "nets/layers.h"
#include "tests/support/check.h"
#include "tests/support/net_weights.h"

using namespace massmap;
using namespace massmap::search;
using testing_support::expect_close;
using testing_support::he_weights;
using testing_support::random_vector;

namespace {

// Runs a classifier graph (ends in "prob") with He weights (seed 7) on x; the host copy of "prob".
std::vector<float> classify(const Graph& g, const Tensor& x, Device device) {
  ExecutorOptions eo;
  eo.device = device;
  Executor ex(g, eo);
  he_weights(ex, 7);
  ex.set_input("data", x);
  ex.forward(RunContext{});
  return ex.read("prob").to_vector();
}

// No padding, pools that tile the 18 x 18 crop exactly (as in passes_test), one channel: stride 4, each map cell is
// exactly the classifier on its crop. With pool1 = 3 (3x3 windows at stride 2) odd crops such as 15 tile instead.
Graph tiling_net(int height, int width, int pool1 = 2) {
  Graph g;
  nets::LayerBuilder b(g);
  ValueId x = g.add_input("data", {1, 1, height, width});
  x = b.relu("relu1", b.conv("conv1", x, 4, 3));
  x = b.max_pool("pool1", x, pool1, 2);
  x = b.relu("relu2", b.conv("conv2", x, 6, 3));
  x = b.avg_pool("pool2", x, 2, 2);
  x = b.linear("fc3", b.flatten("flatten", x), 8);
  x = b.linear("fc4", b.relu("relu3", x), 3);
  b.softmax_loss("loss", x, g.add_input("label", {1}));
  return g;
}

Graph fcn_of(const Graph& classifier) {
  return run_passes(classifier, {"for_inference", "convolutionalize"});
}

// A net that reads each crop's centre pixel: conv 9 x 9 stride 4 whose only nonzero weight is the centre (1), then
// fc to 2 classes with logits (-k v, k v): P(mass) = sigmoid(2 k v) grows with the centre pixel v (k = 0.05: far
// from saturation, so no two cells tie in float). Stride 4, crop 9,
// cell i at prepared pixel 4 i exactly (first centre (9 - 1) / 2 - 4 = 0).
Localizer centre_reader(double spacing_mm) {
  Graph g;
  nets::LayerBuilder b(g);
  ValueId x = g.add_input("data", {1, 1, 9, 9});
  x = b.conv("probe", x, 1, 9, 4);
  x = b.linear("fc", b.flatten("flatten", x), 2);
  b.softmax_loss("loss", x, g.add_input("label", {1}));
  auto load = [](Executor& ex) {
    std::vector<float> w(81, 0.f);  // (1, 1, 9, 9)
    w[4 * 9 + 4] = 1;
    ex.tensor("probe.weight").copy_from(Tensor::from({1, 1, 9, 9}, w));
    ex.tensor("probe.bias").fill(0);
    ex.tensor("fc.weight").copy_from(Tensor::from({2, 1, 1, 1}, {-0.05f, 0.05f}));
    ex.tensor("fc.bias").fill(0);
  };
  SearchModel model;
  model.net = "centre reader";
  model.preprocess.spacing_mm = spacing_mm;
  model.mass_class = 1;
  LocalizeOptions options;
  options.nms_radius_mm = 0;
  return Localizer(fcn_of(g), load, model, options);
}

// A mammogram-like image: air (100) and a breast (1000-1200) on the chest-wall side (L: x = 0), with a cone of height
// 3000 and radius `radius` original pixels centred on (cx, cy).
data::Image cone_image(int width, int height, bool left, double cx, double cy, double radius) {
  data::Image im;
  im.width = width;
  im.height = height;
  im.bits = 16;
  im.pixels.resize(size_t(width) * size_t(height));
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const int from_wall = left ? x : width - 1 - x;
      // Breast texture of 200 levels (so the percentiles span something), air flat.
      double v = from_wall < width * 3 / 4 ? 1000 + 200 * ((x * 37 + y * 101) % 64) / 64.0 : 100;
      const double d = std::hypot(x - cx, y - cy);
      if (d < radius) v += 3000 * (1 - d / radius);
      im.pixels[size_t(y) * size_t(width) + size_t(x)] = uint16_t(std::lround(v));
    }
  return im;
}

}  // namespace

TEST_CASE("cells_for: the fewest cells that put every pixel within half a stride of a centre") {
  for (int64_t crop : {9, 18, 224, 227})
    for (int64_t stride : {1, 2, 4, 8, 32})
      for (int64_t length = 1; length <= 200; ++length) {
        const int64_t n = cells_for(length, crop, stride);
        const double first = double(crop - 1) / 2 - double(crop / 2);
        auto covered = [&](int64_t cells) {  // plain loop over every pixel
          for (int64_t p = 0; p < length; ++p) {
            double best = 1e300;
            for (int64_t i = 0; i < cells; ++i)
              best = std::min(best, std::fabs(first + double(i * stride) - double(p)));
            if (best > double(stride) / 2 + 1e-9) return false;
          }
          return true;
        };
        CAPTURE(crop);
        CAPTURE(stride);
        CAPTURE(length);
        REQUIRE(n >= 1);
        CHECK(covered(n));
        if (n > 1) CHECK_FALSE(covered(n - 1));
      }
}

TEST_CASE("find_peaks: strict local maxima of a map without ties, against a plain loop; the mask hides cells") {
  const int64_t h = 13, w = 17;
  const std::vector<float> map = random_vector(size_t(h * w), 3, 0.f, 1.f);  // (h, w), ties improbable
  std::vector<uint8_t> allowed(map.size(), 1);
  for (size_t i = 0; i < allowed.size(); i += 7) allowed[i] = 0;
  std::vector<Peak> want;
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      if (!allowed[size_t(y * w + x)]) continue;
      bool max = true;
      for (int64_t dy = -1; dy <= 1; ++dy)
        for (int64_t dx = -1; dx <= 1; ++dx) {
          const int64_t yy = y + dy, xx = x + dx;
          if ((dy || dx) && yy >= 0 && xx >= 0 && yy < h && xx < w && allowed[size_t(yy * w + xx)] &&
              map[size_t(yy * w + xx)] >= map[size_t(y * w + x)])
            max = false;
        }
      if (max) want.push_back({y, x, map[size_t(y * w + x)]});
    }
  std::sort(want.begin(), want.end(), [](const Peak& a, const Peak& b) { return a.value > b.value; });
  const std::vector<Peak> got = find_peaks(map, h, w, allowed);
  REQUIRE(got.size() == want.size());
  REQUIRE(got.size() > 5);
  for (size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].y == want[i].y);
    CHECK(got[i].x == want[i].x);
    CHECK(got[i].value == want[i].value);
  }
}

TEST_CASE(
    "find_peaks: one peak per plateau, at its cell nearest the centroid; a plateau beside a higher cell is none") {
  const int64_t h = 8, w = 10;
  std::vector<float> map(size_t(h * w), 0.1f);  // (h, w)
  for (int64_t y = 1; y <= 3; ++y)
    for (int64_t x = 1; x <= 5; ++x) map[size_t(y * w + x)] = 0.9f;  // a 3 x 5 plateau, centroid (2, 3)
  for (int64_t x = 6; x <= 8; ++x) map[size_t(6 * w + x)] = 0.5f;    // a 1 x 3 plateau ...
  map[size_t(5 * w + 9)] = 0.6f;                                     // ... touching a higher cell
  const std::vector<uint8_t> allowed(map.size(), 1);
  const std::vector<Peak> peaks = find_peaks(map, h, w, allowed);
  REQUIRE(peaks.size() == 2);
  CHECK(peaks[0].y == 2);
  CHECK(peaks[0].x == 3);
  CHECK(peaks[0].value == 0.9f);
  CHECK(peaks[1].y == 5);
  CHECK(peaks[1].x == 9);
  // The 0.1 background touches both plateaus, so it is no peak; a map of one value is one peak at its centre.
  const std::vector<Peak> flat = find_peaks(std::vector<float>(size_t(5 * 7), 0.5f), 5, 7, std::vector<uint8_t>(35, 1));
  REQUIRE(flat.size() == 1);
  CHECK(flat[0].y == 2);
  CHECK(flat[0].x == 3);
}

TEST_CASE("suppress: greedy by value within the radius, distances in mm per cell step") {
  // Cell steps of 2 mm along y and 3 mm along x. From (0, 0): (2, 0) is 4 mm, (0, 3) 9 mm, (3, 0) 6 mm, (5, 5)
  // sqrt(10^2 + 15^2) = 18 mm; (3, 0) to (0, 3) sqrt(36 + 81) = 10.8 mm, (5, 5) to (3, 0) sqrt(16 + 225) = 15.5 mm.
  const std::vector<Peak> peaks = {{0, 0, 0.9f}, {2, 0, 0.8f}, {0, 3, 0.7f}, {3, 0, 0.6f}, {5, 5, 0.5f}};
  auto values = [](const std::vector<Peak>& v) {
    std::vector<float> out;
    for (const Peak& p : v) out.push_back(p.value);
    return out;
  };
  CHECK(values(suppress(peaks, 5.0, 2.0, 3.0)) == std::vector<float>{0.9f, 0.7f, 0.6f, 0.5f});
  CHECK(values(suppress(peaks, 10.0, 2.0, 3.0)) == std::vector<float>{0.9f, 0.5f});
  CHECK(values(suppress(peaks, 0.0, 2.0, 3.0)).size() == 5);
}

TEST_CASE("geometry oracle: a planted cone maps back to its original pixel within half a stride") {
  // Training spacing 0.2 mm; originals at 0.1 mm (finer: 2 original px per prepared px) and 0.3 mm (coarser).
  for (double original_mm : {0.1, 0.3})
    for (bool left : {true, false}) {
      Localizer loc = centre_reader(0.2);
      const double s = 0.2 / original_mm;  // original px per prepared px
      const int width = int(std::lround(240 * s)), height = int(std::lround(300 * s));
      int planted = 0;
      for (double fx : {0.23, 0.41, 0.57})
        for (double fy : {0.19, 0.52, 0.77}) {
          const double from_wall = fx * width, cx = left ? from_wall : width - 1 - from_wall, cy = fy * height;
          data::DatasetImage meta;
          meta.id = "cone";
          meta.spacing_mm = original_mm;
          meta.laterality = left ? "L" : "R";
          meta.view = "CC";
          const MapResult r = loc.map_image(cone_image(width, height, left, cx, cy, 12 * s), meta);
          CAPTURE(original_mm);
          CAPTURE(left);
          CAPTURE(cx);
          CAPTURE(cy);
          const ImageGeometry& g = r.geometry;
          REQUIRE(g.plane.y.stride == 4);
          const size_t best = size_t(std::max_element(r.map.begin(), r.map.end()) - r.map.begin());
          const int64_t i = int64_t(best) / g.plane.x.cells, j = int64_t(best) % g.plane.x.cells;
          // Half a stride in original pixels, plus half an original pixel for the cone's resampled apex.
          const double half = 4 * s / 2 + 0.5;
          CHECK(std::fabs(g.cell_x(j) - cx) <= half);
          CHECK(std::fabs(g.cell_y(i) - cy) <= half);
          // The geometry's affine rule, written out: prepared centre 4 i, original (4 i + 0.5) * s' - 0.5 with the
          // grid's exact factor s' = original / prepared size.
          CHECK(g.cell_x(j) == doctest::Approx((4.0 * double(j) + 0.5) * double(width) / g.prepared_width - 0.5));
          CHECK(g.cell_y(i) == doctest::Approx((4.0 * double(i) + 0.5) * double(height) / g.prepared_height - 0.5));
          // The strongest detection is that cell, in mm from the top-left corner.
          REQUIRE(!r.detections.empty());
          CHECK(r.detections[0].cell_y == i);
          CHECK(r.detections[0].cell_x == j);
          CHECK(r.detections[0].x_mm == doctest::Approx((g.cell_x(j) + 0.5) * original_mm));
          CHECK(r.max_probability == r.map[best]);
          ++planted;
        }
      CHECK(planted == 9);
    }
}

TEST_CASE("map: the tiling net's cells equal the classifier on each cell's crop, for size buckets and shifts") {
  const int crop = 18, height = 23, width = 30;
  const std::vector<float> plane = random_vector(size_t(height * width), 11, 0.f, 1.f);  // (1, height, width)
  const float fill = -0.25f;
  const Graph classifier = run_passes(tiling_net(crop, crop), {"for_inference"});
  const Graph fcn = fcn_of(tiling_net(crop, crop));
  for (Device device : {Device::cpu, Device::simt})
    for (int shift : {1, 2, 4})
      for (int bucket : {1, 3}) {
        CAPTURE(device_name(device));
        CAPTURE(shift);
        CAPTURE(bucket);
        MapOptions mo;
        mo.device = device;
        mo.shift = shift;
        mo.bucket_cells = bucket;
        MapRunner runner(
            fcn, [](Executor& ex) { he_weights(ex, 7); }, mo);
        const PlaneMap m = runner.run(plane, height, width, fill);
        const PlaneAxis &ay = m.geometry.y, &ax = m.geometry.x;
        REQUIRE(ay.stride == 4 / shift);
        REQUIRE(ay.pad == 9);
        CHECK(ay.first == -0.5);
        CHECK(ay.cells == cells_for(height, crop, 4 / shift));
        CHECK(ax.cells == cells_for(width, crop, 4 / shift));
        CHECK((ay.input - crop) % (4 * bucket) == 0);
        CHECK(m.passes == shift * shift);
        REQUIRE(m.classes == 3);
        // Every cell's crop of the plane padded with fill (plain loops), through the classifier in one batch.
        const int64_t n = ay.cells * ax.cells;
        Tensor cuts({n, 1, crop, crop});
        for (int64_t i = 0; i < ay.cells; ++i)
          for (int64_t j = 0; j < ax.cells; ++j)
            for (int r = 0; r < crop; ++r)
              for (int q = 0; q < crop; ++q) {
                const int64_t y = ay.crop_begin(i) + r, x = ax.crop_begin(j) + q;
                cuts.at(((i * ax.cells + j) * crop + r) * crop + q) =
                    y >= 0 && x >= 0 && y < height && x < width ? plane[size_t(y * width + x)] : fill;
              }
        const std::vector<float> want = classify(with_batch(classifier, n), cuts, device);  // (n, 3)
        for (int64_t c = 0; c < n; ++c) {
          std::vector<float> got, expected;
          for (int k = 0; k < 3; ++k) {
            got.push_back(m.prob[size_t(k * n + c)]);
            expected.push_back(want[size_t(c * 3 + k)]);
          }
          expect_close(got, expected, 0.f, 1e-5f, "cell " + std::to_string(c));
        }
      }
}

TEST_CASE("map: views average the classifier over each cell's crop mirrored and transposed") {
  // An even crop (18: centres between pixels) and an odd one (15: centres on pixels), odd plane sizes.
  const int height = 23, width = 30;
  const std::vector<float> plane = random_vector(size_t(height * width), 12, 0.f, 1.f);  // (1, height, width)
  const float fill = 0.3f;
  for (int crop : {18, 15}) {
    const int pool1 = crop % 2 ? 3 : 2;
    const Graph classifier = run_passes(tiling_net(crop, crop, pool1), {"for_inference"});
    const Graph fcn = fcn_of(tiling_net(crop, crop, pool1));
    for (int shift : {1, 2})
      for (int views : {2, 4, 8}) {
        CAPTURE(crop);
        CAPTURE(shift);
        CAPTURE(views);
        MapOptions mo;
        mo.shift = shift;
        mo.views = views;
        MapRunner runner(
            fcn, [](Executor& ex) { he_weights(ex, 7); }, mo);
        const PlaneMap m = runner.run(plane, height, width, fill);
        const PlaneAxis &ay = m.geometry.y, &ax = m.geometry.x;
        CHECK(ay.cells == cells_for(height, crop, 4 / shift));
        CHECK(m.passes == views * shift * shift);
        // Every cell's crop, and its views, through the classifier: (cells * views, 1, crop, crop).
        const int64_t n = ay.cells * ax.cells;
        Tensor cuts({n * views, 1, crop, crop});
        for (int64_t i = 0; i < ay.cells; ++i)
          for (int64_t j = 0; j < ax.cells; ++j)
            for (int v = 0; v < views; ++v)
              for (int r = 0; r < crop; ++r)
                for (int q = 0; q < crop; ++q) {
                  int a = (v & 4) ? q : r, b = (v & 4) ? r : q;  // transposed, then mirrored
                  if (v & 2) a = crop - 1 - a;
                  if (v & 1) b = crop - 1 - b;
                  const int64_t y = ay.crop_begin(i) + a, x = ax.crop_begin(j) + b;
                  cuts.at((((i * ax.cells + j) * views + v) * crop + r) * crop + q) =
                      y >= 0 && x >= 0 && y < height && x < width ? plane[size_t(y * width + x)] : fill;
                }
        const std::vector<float> want = classify(with_batch(classifier, n * views), cuts, Device::cpu);
        for (int64_t c = 0; c < n; ++c) {
          std::vector<float> got, expected;
          for (int k = 0; k < 3; ++k) {
            double mean = 0;
            for (int v = 0; v < views; ++v) mean += want[size_t((c * views + v) * 3 + k)];
            got.push_back(m.prob[size_t(k * n + c)]);
            expected.push_back(float(mean / views));
          }
          expect_close(got, expected, 0.f, 1e-5f, "cell " + std::to_string(c));
        }
      }
  }
  MapOptions mo;
  mo.views = 3;
  CHECK_THROWS_WITH_AS(MapRunner(
                           fcn_of(tiling_net(18, 18)), [](Executor&) {}, mo),
                       doctest::Contains("--views 3"), BadConfig);
  mo.views = 8;
  CHECK_THROWS_WITH_AS(MapRunner(
                           fcn_of(tiling_net(18, 22)), [](Executor&) {}, mo),
                       doctest::Contains("square crop"), BadConfig);
}

TEST_CASE("map: images of similar size share one net input; a shift that does not divide the stride is an error") {
  const Graph fcn = fcn_of(tiling_net(18, 18));
  MapOptions mo;
  mo.bucket_cells = 4;
  MapRunner runner(
      fcn, [](Executor& ex) { he_weights(ex, 7); }, mo);
  const PlaneGeometry a = runner.geometry(100, 130), b = runner.geometry(104, 121);
  CHECK(a.y.input == b.y.input);
  CHECK(a.x.input == b.x.input);
  CHECK(a.y.cells != b.y.cells);
  mo.shift = 3;
  CHECK_THROWS_WITH_AS(MapRunner(
                           fcn, [](Executor&) {}, mo),
                       doctest::Contains("--shift 3 does not divide"), BadConfig);
}

namespace {

// A 40 x 30 prepared image (grey 0.5) under a 10 x 8 map at stride 4 from centre 0, at 0.2 mm per pixel.
MapResult small_result(float p) {
  MapResult r;
  r.prepared.width = 40;
  r.prepared.height = 30;
  r.prepared.spacing_mm = 0.2;
  r.prepared.pixels.assign(40 * 30, 0.5f);
  r.prepared.regions.assign(40 * 30, data::kAir);
  for (int y = 0; y < 30; ++y)
    for (int x = 0; x < 20; ++x) r.prepared.regions[size_t(y * 40 + x)] = data::kBreast;  // the left half
  r.geometry.prepared_width = r.geometry.original_width = 40;
  r.geometry.prepared_height = r.geometry.original_height = 30;
  r.geometry.prepared_spacing_mm = r.geometry.original_spacing_mm = 0.2;
  for (PlaneAxis* a : {&r.geometry.plane.y, &r.geometry.plane.x}) {
    a->net_stride = a->stride = 4;
    a->first = 0;
    a->crop = 9;
    a->pad = 4;
  }
  r.geometry.plane.y.cells = 8;
  r.geometry.plane.x.cells = 10;
  r.map.assign(80, p);
  return r;
}

}  // namespace

TEST_CASE("detect: peaks only where the cell centre lies on breast; positions from the geometry") {
  MapResult r = small_result(0.1f);
  r.map[size_t(3 * 10 + 8)] = 0.9f;  // cell (3, 8): centre x = 32, air
  r.map[size_t(5 * 10 + 2)] = 0.6f;  // cell (5, 2): centre (20, 8), breast
  const std::vector<Detection> d = detect(r.map, r.geometry, r.prepared.regions, 1.0, 0.5);
  REQUIRE(d.size() == 1);
  CHECK(d[0].cell_y == 5);
  CHECK(d[0].cell_x == 2);
  CHECK(d[0].probability == 0.6f);
  CHECK(d[0].finding);
  CHECK(d[0].x == 8.0);
  CHECK(d[0].y == 20.0);
  CHECK(d[0].x_mm == doctest::Approx(8.5 * 0.2));
  CHECK(d[0].crop_x == 8.0 - 4);  // crop [centre - 4, centre + 5) of 9 pixels
  CHECK(d[0].crop_width == 9.0);
}

TEST_CASE("overlay: the map blended over the image, a finding circled red, an ROI box green") {
  MapResult r = small_result(0.25f);
  r.prepared.rois.push_back({5, 5, 10, 8});
  Detection finding;
  finding.prepared_x = 20;
  finding.prepared_y = 15;
  finding.finding = true;
  r.detections.push_back(finding);
  int w = 0, h = 0;
  const std::vector<uint8_t> rgb = render_overlay(r, 1.0, &w, &h);  // radius 1 mm = 5 px
  REQUIRE(w == 40);
  REQUIRE(h == 30);
  auto pixel = [&](int x, int y) {
    const uint8_t* p = &rgb[size_t(y * w + x) * 3];
    return std::vector<int>{p[0], p[1], p[2]};
  };
  // P = 0.25 is cyan (0, 1, 1) at opacity 0.6 * 0.25 over grey 0.5.
  const double a = 0.15;
  const std::vector<int> blend = {int(std::lround(255 * (1 - a) * 0.5)), int(std::lround(255 * ((1 - a) * 0.5 + a))),
                                  int(std::lround(255 * ((1 - a) * 0.5 + a)))};
  CHECK(pixel(35, 25) == blend);
  CHECK(pixel(5, 8) == std::vector<int>{0, 255, 0});    // the box's left edge, x = 5
  CHECK(pixel(14, 5) == std::vector<int>{0, 255, 0});   // its top edge, x = 5 + 10 - 1
  CHECK(pixel(10, 9) == blend);                         // inside the box
  CHECK(pixel(25, 15) == std::vector<int>{255, 0, 0});  // the circle, 5 px right of the finding
  CHECK(pixel(20, 15) == blend);                        // its centre is left visible
}
