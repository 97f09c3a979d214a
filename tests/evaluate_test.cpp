// The evaluator (apps/search/): FROC points, the sensitivity at a false-positive budget and CPM on a hand-computed
// case and against a brute-force loop over every threshold; the bootstrap's quantiles by hand and its interval's
// coverage of a known truth on simulated sets; judging on masks and on loose boxes (a mass touching the border, a
// mass overlapping a calcification); oracle, constant, shifted and random maps through the same peaks, NMS and
// judging as evaluate; an image without breast; the paper's ROI statistics (a constant map passes every mass);
// the DoG baseline's blur against a 2-D loop and its peak on a planted blob; scorer_metrics' keys by hand; base64
// and the report's lack of external references.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "apps/search/baseline_dog.h"
#include "apps/search/bootstrap.h"
#include "apps/search/froc.h"
#include "apps/search/patch_eval.h"
#include "apps/search/report_html.h"
#include "apps/search/roi_stats.h"
#include "apps/search/scoring.h"
#include "base/errors.h"
#include "data/regions.h"
#include "tests/support/check.h"

using namespace massmap;
using namespace massmap::search;

namespace {

JudgedImage judged(std::vector<float> mass_best, std::vector<float> fps) {
  JudgedImage j;
  j.mass_best = std::move(mass_best);
  j.false_positives = std::move(fps);
  return j;
}

// The sensitivity at `budget` FP/image by brute force: every candidate threshold (each probability, and +inf),
// counted with plain loops, the best sensitivity among those within the budget.
double brute_sensitivity_at(const std::vector<JudgedImage>& images, double budget) {
  std::vector<double> candidates = {std::numeric_limits<double>::infinity()};
  for (const JudgedImage& im : images) {
    for (float p : im.false_positives) candidates.push_back(p);
    for (float p : im.mass_best)
      if (p >= 0) candidates.push_back(p);
  }
  double best = 0;
  for (double t : candidates) {
    double fp = 0, hits = 0, masses = 0;
    for (const JudgedImage& im : images) {
      for (float p : im.false_positives) fp += p >= t;
      for (float p : im.mass_best) {
        masses += 1;
        hits += p >= 0 && p >= t;
      }
    }
    if (fp / double(images.size()) <= budget + 1e-12) best = std::max(best, masses ? hits / masses : 0);
  }
  return best;
}

// A square test image at 0.2 mm, prepared = original, 4-pixel cells centred at 1.5 + 4 j (a 4-pixel crop).
ImageGeometry test_geometry(int side) {
  ImageGeometry g;
  for (PlaneAxis* a : {&g.plane.y, &g.plane.x}) {
    a->net_stride = a->stride = 4;
    a->crop = 4;
    a->first = 1.5;
    a->cells = side / 4;
  }
  g.original_width = g.original_height = g.prepared_width = g.prepared_height = side;
  g.original_spacing_mm = g.prepared_spacing_mm = 0.2;
  return g;
}

data::DatasetLesion disc(const std::string& type, double x, double y, double r) {
  data::DatasetLesion l;
  l.type = type;
  l.has_circle = true;
  l.circle_x = x;
  l.circle_y = y;
  l.circle_radius = r;
  return l;
}

// The map with each cell set by f(cell centre x, y).
template <class F>
std::vector<float> map_of(const ImageGeometry& g, F f) {
  std::vector<float> m(size_t(g.plane.y.cells * g.plane.x.cells));  // (cells_y, cells_x)
  for (int64_t i = 0; i < g.plane.y.cells; ++i)
    for (int64_t j = 0; j < g.plane.x.cells; ++j) m[size_t(i * g.plane.x.cells + j)] = f(g.cell_x(j), g.cell_y(i));
  return m;
}

// The same peaks, NMS (radius 3 mm) and judging as evaluate, every pixel breast unless `breast` is false.
ScoredMap score(const std::vector<float>& map, const ImageGeometry& g, const data::DatasetImage& meta,
                bool breast = true) {
  const std::vector<uint8_t> regions(size_t(g.prepared_width * g.prepared_height), breast ? data::kBreast : data::kAir);
  return score_map(map, g, detect(map, g, regions, 3.0, 0.5), meta);
}

}  // namespace

TEST_CASE("FROC: points, the sensitivity at a budget and CPM on a case computed by hand") {
  // Events by descending probability: .95 FP, .9 hit, .8 FP, .6 FP x2, .5 hit, .3 FP; 3 images, 3 masses.
  const std::vector<JudgedImage> images = {judged({0.9f, -1.f}, {0.8f, 0.3f}), judged({0.5f}, {0.95f}),
                                           judged({}, {0.6f, 0.6f})};
  const Froc f = froc_curve(images);
  REQUIRE(f.points.size() == 6);
  const double fp[6] = {1, 1, 2, 4, 4, 5}, hits[6] = {0, 1, 1, 1, 2, 2};
  const float t[6] = {0.95f, 0.9f, 0.8f, 0.6f, 0.5f, 0.3f};
  for (size_t k = 0; k < 6; ++k) {
    CAPTURE(k);
    CHECK(f.points[k].threshold == double(t[k]));
    CHECK(f.points[k].fp_per_image == doctest::Approx(fp[k] / 3));
    CHECK(f.points[k].sensitivity == doctest::Approx(hits[k] / 3));
  }
  CHECK(froc_at(f, 0.9).sensitivity == doctest::Approx(1.0 / 3));  // the point at .8: 2/3 FP per image
  CHECK(froc_at(f, 0.9).threshold == double(0.8f));
  CHECK(froc_at(f, 0.25).sensitivity == 0);  // no point within: the first costs 1/3
  CHECK(std::isinf(froc_at(f, 0.25).threshold));
  // CPM: 0, 0, 1/3, 1/3, 2/3, 2/3, 2/3 at 1/8 .. 8.
  CHECK(cpm(f) == doctest::Approx((0 + 0 + 1.0 / 3 + 1.0 / 3 + 2.0 / 3 + 2.0 / 3 + 2.0 / 3) / 7));
  // A replicate that draws the second image twice: 2 images, 2 masses, events .95 FP x2, .5 hit x2.
  const Froc r = froc_curve(images, {1, 1});
  REQUIRE(r.points.size() == 2);
  CHECK(r.points[0].fp_per_image == 1);
  CHECK(r.points[1].sensitivity == 1);
}

TEST_CASE("FROC: the sensitivity at every CPM level against a brute force over thresholds, on random sets") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(0, 1);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<JudgedImage> images(size_t(1 + rng() % 12));
    for (JudgedImage& im : images) {
      for (unsigned m = rng() % 3; m > 0; --m)
        im.mass_best.push_back(rng() % 4 == 0 ? -1.f : std::round(u(rng) * 10) / 10);
      for (unsigned k = rng() % 5; k > 0; --k) im.false_positives.push_back(std::round(u(rng) * 10) / 10);  // ties
    }
    const Froc f = froc_curve(images);
    double mean = 0;
    for (double level : kCpmLevels) {
      CAPTURE(trial);
      CAPTURE(level);
      const double brute = brute_sensitivity_at(images, level);
      CHECK(froc_at(f, level).sensitivity == doctest::Approx(brute));
      mean += brute / 7;
    }
    CHECK(cpm(f) == doctest::Approx(mean));
  }
}

TEST_CASE("bootstrap: quantiles by hand, groups by patient, the same interval for the same seed") {
  CHECK(quantile({5, 1, 4, 2, 3}, 0.025) == doctest::Approx(1.1));  // position 0.1 between 1 and 2
  CHECK(quantile({5, 1, 4, 2, 3}, 0.975) == doctest::Approx(4.9));
  CHECK(quantile({}, 0.5) == 0);
  const auto groups = patient_groups({"b", "a", "b", "c", "a"});
  REQUIRE(groups.size() == 3);
  CHECK(groups[0] == std::vector<int>{0, 2});
  CHECK(groups[1] == std::vector<int>{1, 4});
  CHECK(groups[2] == std::vector<int>{3});
  // Every replicate takes whole patients: the images picked are a union of groups, as many groups as patients.
  auto check_pick = [&](const std::vector<int>& pick) {
    size_t k = 0, drawn = 0;
    while (k < pick.size()) {
      const auto g = std::find_if(groups.begin(), groups.end(), [&](const auto& gr) { return gr[0] == pick[k]; });
      REQUIRE(g != groups.end());
      for (int i : *g) CHECK(pick[k++] == i);
      ++drawn;
    }
    CHECK(drawn == groups.size());
    return std::vector<double>{double(pick.size())};
  };
  const auto a = bootstrap_intervals(groups, 50, 3, check_pick);
  const auto b = bootstrap_intervals(groups, 50, 3, check_pick);
  REQUIRE(a.size() == 1);
  CHECK(a[0].lo == b[0].lo);
  CHECK(a[0].hi == b[0].hi);
  CHECK(a[0].lo >= 3);  // 3 patients of 1 or 2 images
  CHECK(a[0].hi <= 6);
}

TEST_CASE("bootstrap: the 95% interval covers the truth at about the stated rate on simulated sets") {
  // 40 patients of 2 images, one mass each; a patient's masses are found together with probability 0.7 (so images
  // of one patient are correlated, as two views of one breast are). Sensitivity at a budget where every hit counts
  // (no false positives): truth 0.7.
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(0, 1);
  int covered = 0;
  const int sets = 200;
  for (int s = 0; s < sets; ++s) {
    std::vector<JudgedImage> images;
    std::vector<std::string> patients;
    for (int p = 0; p < 40; ++p) {
      const bool found = u(rng) < 0.7;
      for (int v = 0; v < 2; ++v) {
        images.push_back(judged({found ? 0.9f : -1.f}, {}));
        patients.push_back("P" + std::to_string(p));
      }
    }
    const auto ci = bootstrap_intervals(patient_groups(patients), 1000, uint64_t(s), [&](const std::vector<int>& pick) {
      return std::vector<double>{froc_at(froc_curve(images, pick), kHeadlineFpPerImage).sensitivity};
    });
    covered += ci[0].lo <= 0.7 && 0.7 <= ci[0].hi;
  }
  const double rate = double(covered) / sets;
  MESSAGE("coverage of a clustered proportion: " << rate);
  CHECK(rate >= 0.89);  // binomial(200, 0.95): 0.89 is about 4 standard deviations below
  CHECK(rate <= 0.99);
}

TEST_CASE("bootstrap: the headline's interval covers the population FROC's value on simulated sets") {
  // 60 patients of 2 images, one mass each, found with probability 0.8 at a score uniform on (0.5, 1), and 2 false
  // positives per image at scores uniform on (0, 1). The population FROC: FP/image(t) = 2 (1 - t), sensitivity(t)
  // = 0.8 P(U(0.5, 1) >= t); at 0.9 FP/image t = 0.55 and the sensitivity is 0.8 * 0.9 = 0.72.
  std::mt19937_64 rng(13);
  std::uniform_real_distribution<float> u(0, 1);
  int covered = 0;
  const int sets = 200;
  for (int s = 0; s < sets; ++s) {
    std::vector<JudgedImage> images;
    std::vector<std::string> patients;
    for (int p = 0; p < 60; ++p)
      for (int v = 0; v < 2; ++v) {
        const bool found = u(rng) < 0.8f;
        const float score = 0.5f + 0.5f * u(rng);
        images.push_back(judged({found ? score : -1.f}, {u(rng), u(rng)}));
        patients.push_back("P" + std::to_string(p));
      }
    const auto ci = bootstrap_intervals(patient_groups(patients), 1000, uint64_t(s), [&](const std::vector<int>& pick) {
      return std::vector<double>{froc_at(froc_curve(images, pick), kHeadlineFpPerImage).sensitivity};
    });
    covered += ci[0].lo <= 0.72 && 0.72 <= ci[0].hi;
  }
  const double rate = double(covered) / sets;
  MESSAGE("coverage of the FROC headline: " << rate);
  CHECK(rate >= 0.89);
  CHECK(rate <= 0.99);
}

TEST_CASE("judging: a mass touching the border, a mass over a calcification, the loose box") {
  data::DatasetImage meta;
  meta.id = "border";
  meta.lesions = {disc("mass", 0, 20, 6), disc("calcification", 40, 40, 6), disc("mass", 44, 40, 6)};
  auto at = [](double x, double y, float p) {
    Detection d;
    d.x = x;
    d.y = y;
    d.probability = p;
    return d;
  };
  // (0, 20): inside the border mass; (-1, 20) lies off the image: a false positive; (37, 40): calcification
  // only: ignored; (42, 40): both the calcification and the second mass: a hit; (49, 40) inside the second mass
  // only: a hit, the mass keeps its best; (60, 60): a false positive.
  const std::vector<Detection> d = {at(0, 20, 0.7f),  at(-1, 20, 0.6f),  at(37, 40, 0.5f),
                                    at(42, 40, 0.4f), at(49, 40, 0.45f), at(60, 60, 0.3f)};
  const JudgedImage j = judge_detections(d, meta, 64, 64);
  REQUIRE(j.mass_best.size() == 2);
  CHECK(j.mass_best[0] == 0.7f);
  CHECK(j.mass_best[1] == 0.45f);
  CHECK(j.false_positives == std::vector<float>{0.6f, 0.3f});
  // The masks read once give the same judgement; a mask count that is not the lesion count is an error.
  const auto masks = lesion_masks(meta, 64, 64);
  const JudgedImage again = judge_detections(d, meta, masks, 64, 64);
  CHECK(again.mass_best == j.mass_best);
  CHECK(again.false_positives == j.false_positives);
  CHECK_THROWS_AS(judge_detections(d, meta, {masks[0]}, 64, 64), BadInput);
  // (50, 35): inside the second mass's loose box (x 38..50, y 34..46) but outside its disc and clear of the
  // calcification's box (x 34..46): a false positive on the mask, a hit on the box.
  const std::vector<Detection> corner = {at(50, 35, 0.8f)};
  CHECK(judge_detections(corner, meta, 64, 64).false_positives == std::vector<float>{0.8f});
  const JudgedImage boxed = judge_detections(corner, boxes_as_masks(meta, 64, 64), 64, 64);
  CHECK(boxed.false_positives.empty());
  CHECK(boxed.mass_best[1] == 0.8f);
}

TEST_CASE("maps: an oracle finds every mass at 0 FP; shifted by one cell it still does, by three it does not") {
  const ImageGeometry g = test_geometry(96);
  data::DatasetImage meta;
  meta.id = "oracle";
  meta.lesions = {disc("mass", 20, 24, 10), disc("mass", 70, 60, 10), disc("calcification", 30, 80, 5)};
  auto inside = [&](double x, double y, int dx) {
    for (size_t l = 0; l < 2; ++l) {
      const double ex = x - dx - meta.lesions[l].circle_x, ey = y - meta.lesions[l].circle_y;
      if (ex * ex + ey * ey <= 100) return 1.f;
    }
    return 0.f;
  };
  for (int shift_cells : {0, 1, 3}) {
    CAPTURE(shift_cells);
    const ScoredMap s = score(map_of(g, [&](double x, double y) { return inside(x, y, 4 * shift_cells); }), g, meta);
    const Froc f = froc_curve({s.on_mask});
    if (shift_cells < 3) {
      CHECK(s.on_mask.mass_best == std::vector<float>{1.f, 1.f});
      CHECK(s.on_mask.false_positives.empty());
      CHECK(froc_at(f, 0).sensitivity == 1);
    } else {  // 12 px off a 10 px radius: each plateau's centre cell lies outside its mass
      CHECK(s.on_mask.mass_best == std::vector<float>{-1.f, -1.f});
      CHECK(s.on_mask.false_positives == std::vector<float>{1.f, 1.f});
      CHECK(froc_at(f, kHeadlineFpPerImage).sensitivity == 0);
    }
  }
}

TEST_CASE("maps: a constant map passes the paper's ROI max at 0.4 for every mass, yet its one peak finds none") {
  const ImageGeometry g = test_geometry(96);
  data::DatasetImage meta;
  meta.id = "constant";
  meta.lesions = {disc("mass", 12, 12, 8), disc("mass", 84, 84, 8)};  // far from the plateau's centre cell
  const std::vector<float> map = map_of(g, [](double, double) { return 0.5f; });
  const ScoredMap s = score(map, g, meta);
  CHECK(s.on_mask.false_positives == std::vector<float>{0.5f});  // one peak per plateau, at its centre
  CHECK(s.on_mask.mass_best == std::vector<float>{-1.f, -1.f});
  const Froc f = froc_curve({s.on_mask});
  CHECK(froc_at(f, kHeadlineFpPerImage).sensitivity == 0);  // its only point costs 1 FP per image
  CHECK(cpm(f) == 0);
  std::vector<float> roi_max;
  for (const RoiStats& r : s.roi) {
    CHECK(r.max == 0.5f);
    CHECK(r.mean == doctest::Approx(0.5));
    roi_max.push_back(r.max);
  }
  CHECK(fraction_at_or_above(roi_max, {kPaperThreshold})[0] == 1.0);  // the paper's criterion: 100%
}

TEST_CASE("maps: a random map through peaks and judging: each mass once, every other peak a false positive") {
  const ImageGeometry g = test_geometry(128);
  data::DatasetImage meta;
  meta.id = "random";
  meta.lesions = {disc("mass", 30, 30, 12), disc("mass", 100, 90, 9), disc("calcification", 60, 100, 8)};
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(0, 1);
  const std::vector<float> map = map_of(g, [&](double, double) { return u(rng); });
  const std::vector<uint8_t> regions(size_t(128 * 128), data::kBreast);
  const std::vector<Detection> d = detect(map, g, regions, 3.0, 0.5);
  const ScoredMap s = score_map(map, g, d, meta);
  // A plain loop over the detections: in which lesion's disc does each centre lie?
  std::vector<float> best = {-1.f, -1.f}, fps;
  for (const Detection& det : d) {
    bool in_any = false;
    for (size_t l = 0; l < 3; ++l) {
      const auto& les = meta.lesions[l];
      const double dx = std::lround(det.x) - les.circle_x, dy = std::lround(det.y) - les.circle_y;
      if (dx * dx + dy * dy > les.circle_radius * les.circle_radius) continue;
      in_any = true;
      if (l < 2) best[l] = std::max(best[l], det.probability);
    }
    if (!in_any) fps.push_back(det.probability);
  }
  CHECK(s.on_mask.mass_best == best);
  CHECK(s.on_mask.false_positives == fps);
  CHECK(s.image_max == *std::max_element(map.begin(), map.end()));
}

TEST_CASE("maps: an image without breast pixels has no detection: its mass is missed at no false positive") {
  const ImageGeometry g = test_geometry(64);
  data::DatasetImage meta;
  meta.id = "air";
  meta.lesions = {disc("mass", 32, 32, 10)};
  const ScoredMap s = score(map_of(g, [](double x, double y) { return float(x + y) / 128; }), g, meta, false);
  CHECK(s.on_mask.mass_best == std::vector<float>{-1.f});
  CHECK(s.on_mask.false_positives.empty());
  const Froc f = froc_curve({s.on_mask});
  CHECK(f.points.empty());
  CHECK(froc_at(f, 8).sensitivity == 0);
}

TEST_CASE("ROI statistics: a map linear in x, interpolated between cell centres, against the closed form") {
  const ImageGeometry g = test_geometry(64);  // centres at 1.5 + 4 j, 16 cells
  const std::vector<float> map = map_of(g, [](double x, double) { return float((x - 1.5) / 4); });  // = j
  CHECK(map_at(map, g, 1.5, 7) == doctest::Approx(0));
  CHECK(map_at(map, g, 9.5, 7) == doctest::Approx(2));
  CHECK(map_at(map, g, 0, 0) == doctest::Approx(0));     // clamped before the first centre
  CHECK(map_at(map, g, 63, 63) == doctest::Approx(15));  // and after the last (61.5)
  // A box x 10..29: the map is (x - 1.5) / 4 there; max at x = 29, mean at the mean x 19.5.
  data::DatasetLesion box;
  box.type = "mass";
  box.has_box = true;
  box.box = {10, 20, 20, 8};
  const RoiStats r = roi_stats(map, g, data::lesion_mask(box, 64, 64));
  CHECK(r.pixels == 160);
  CHECK(r.max == doctest::Approx((29 - 1.5) / 4));
  CHECK(r.mean == doctest::Approx((19.5 - 1.5) / 4));
  CHECK(fraction_at_or_above({0.1f, 0.4f, 0.9f}, {0.0, 0.4, 0.95}) == std::vector<double>{1.0, 2.0 / 3, 0.0});
}

TEST_CASE("DoG: the separable blur equals a 2-D loop; a planted blob is the map's highest cell") {
  const int w = 23, h = 17;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0, 1);
  std::vector<float> img(size_t(w * h));  // (h, w)
  for (float& v : img) v = u(rng);
  const double sigma = 1.7;
  const std::vector<float> fast = gaussian_blur(img, w, h, sigma);
  const int radius = int(std::ceil(3 * sigma));
  double norm = 0;
  for (int k = -radius; k <= radius; ++k) norm += std::exp(-0.5 * k * k / (sigma * sigma));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      double acc = 0;
      for (int dy = -radius; dy <= radius; ++dy)
        for (int dx = -radius; dx <= radius; ++dx) {
          if (y + dy < 0 || y + dy >= h || x + dx < 0 || x + dx >= w) continue;
          acc += std::exp(-0.5 * (dx * dx + dy * dy) / (sigma * sigma)) / (norm * norm) *
                 img[size_t((y + dy) * w + x + dx)];
        }
      CHECK(fast[size_t(y * w + x)] == doctest::Approx(acc).epsilon(1e-5));
    }

  // A 160 x 160 breast at 0.2 mm, flat 0.3, with a 5 mm-radius disc of 0.8 centred at (110, 50).
  data::PreparedImage p;
  p.width = p.height = 160;
  p.spacing_mm = 0.2;
  p.pixels.assign(size_t(160 * 160), 0.3f);
  p.regions.assign(p.pixels.size(), data::kBreast);
  for (int y = 0; y < 160; ++y)
    for (int x = 0; x < 160; ++x)
      if ((x - 110) * (x - 110) + (y - 50) * (y - 50) <= 25 * 25) p.pixels[size_t(y * 160 + x)] = 0.8f;
  const ImageGeometry g = test_geometry(160);
  const std::vector<float> map = dog_map(p, g);
  const size_t top = size_t(std::max_element(map.begin(), map.end()) - map.begin());
  CHECK(std::abs(g.cell_x(int64_t(top) % 40) - 110) <= 4);
  CHECK(std::abs(g.cell_y(int64_t(top) / 40) - 50) <= 4);
  CHECK(map[top] > 0.9f);
  CHECK(map[size_t(35 * 40 + 5)] == doctest::Approx(0.5).epsilon(0.02));  // flat breast far away: response ~0
  for (float v : map) CHECK((v >= 0 && v <= 1));
  // Off the breast the map is 0.
  p.regions.assign(p.pixels.size(), data::kAir);
  for (float v : dog_map(p, g)) CHECK(v == 0);
}

TEST_CASE("scorer_metrics: headline, CPM, FP rates, operating point and breakdowns against hand counts") {
  auto record = [](const std::string& patient, JudgedImage j, std::vector<double> diameters, double cm2) {
    ImageRecord r;
    r.id = patient + std::to_string(diameters.size());
    r.patient = patient;
    r.density = "B";
    for (double d : diameters) {
      MassInfo m;
      m.diameter_mm = d;
      m.subtlety = 3;
      r.masses.push_back(m);
    }
    r.breast_cm2 = cm2;
    r.cnn.on_mask = r.cnn.on_box = j;
    r.cnn.roi.resize(j.mass_best.size());
    return r;
  };
  // The hand case of the first test, in three patients.
  const std::vector<ImageRecord> records = {record("A", judged({0.9f, -1.f}, {0.8f, 0.3f}), {8, 15}, 10),
                                            record("B", judged({0.5f}, {0.95f}), {25}, 20),
                                            record("C", judged({}, {0.6f, 0.6f}), {}, 30)};
  ScoringOptions o;
  o.replicates = 200;
  o.operating_threshold = 0.55;
  std::vector<std::string> warnings;
  const nlohmann::json m = scorer_metrics(records, false, o, &warnings);
  CHECK(m["headline"]["sensitivity"].get<double>() == doctest::Approx(1.0 / 3));
  CHECK(m["headline"]["threshold"].get<double>() == double(0.8f));
  CHECK(m["cpm"]["value"].get<double>() == doctest::Approx(8.0 / 21));
  const double lo = m["headline"]["ci95"][0], hi = m["headline"]["ci95"][1];
  CHECK(lo <= hi);
  CHECK(lo >= 0);
  CHECK(hi <= 1);
  // At threshold 0.8: FP .95 (image B, a mass image) and .8 (image A, a mass image): 2 on 2 mass images; 2 FP over
  // 60 cm^2.
  CHECK(m["fp_per_image_mass_images"].get<double>() == doctest::Approx(1.0));
  CHECK(m["fp_per_cm2"].get<double>() == doctest::Approx(2.0 / 60));
  // Operating threshold 0.55: FP .95, .8, .6, .6 over 3 images; hits .9 of 3 masses.
  CHECK(m["operating_point"]["fp_per_image"].get<double>() == doctest::Approx(4.0 / 3));
  CHECK(m["operating_point"]["sensitivity"].get<double>() == doctest::Approx(1.0 / 3));
  // Breakdown by size at 0.8: the 8 mm mass found (0.9), the 15 mm one missed, the 25 mm one (0.5) missed.
  CHECK(m["breakdowns"]["size"]["<10mm"]["sensitivity"].get<double>() == 1);
  CHECK(m["breakdowns"]["size"]["10-20mm"]["found"].get<int>() == 0);
  CHECK(m["breakdowns"]["size"][">20mm"]["masses"].get<int>() == 1);
  CHECK(m["breakdowns"]["density"]["B"]["masses"].get<int>() == 3);
  // Image level: maxima 0 for all: AUC one half.
  CHECK(m["image_auc"].get<double>() == doctest::Approx(0.5));
  REQUIRE(warnings.size() == 1);  // 3 patients
  CHECK(warnings[0].find("3 patient(s)") != std::string::npos);
  CHECK(m["froc"].size() == 6);
  CHECK(m["froc_band"]["fp_per_image"].size() == m["froc_band"]["lo"].size());
}

TEST_CASE("scorer_metrics: image AUC and ROC points from the map maxima, by hand") {
  // Mass images with maxima 0.9 and 0.4, images without a mass at 0.5 and 0.1: of the 4 (mass, no mass) pairs the
  // mass image ranks higher in 3: AUC 0.75. ROC points by descending maximum: (0, 1/2), (1/2, 1/2), (1/2, 1),
  // (1, 1) after the origin.
  std::vector<ImageRecord> records(4);
  const float maxima[4] = {0.9f, 0.4f, 0.5f, 0.1f};
  for (size_t i = 0; i < 4; ++i) {
    records[i].patient = "P" + std::to_string(i);
    records[i].cnn.image_max = maxima[i];
    if (i < 2) {
      records[i].masses.resize(1);
      records[i].cnn.on_mask.mass_best = {-1.f};
      records[i].cnn.roi.resize(1);
    }
    records[i].cnn.on_box = records[i].cnn.on_mask;
  }
  ScoringOptions o;
  o.replicates = 10;
  const nlohmann::json m = scorer_metrics(records, false, o);
  CHECK(m["image_auc"].get<double>() == doctest::Approx(0.75));
  const double fpr[5] = {0, 0, 0.5, 0.5, 1}, tpr[5] = {0, 0.5, 0.5, 1, 1};
  REQUIRE(m["image_roc"].size() == 5);
  for (size_t k = 0; k < 5; ++k) {
    CHECK(m["image_roc"][k]["fpr"].get<double>() == fpr[k]);
    CHECK(m["image_roc"][k]["tpr"].get<double>() == tpr[k]);
  }
  CHECK(m["headline"]["sensitivity"].get<double>() == 0);  // no detection at all
  CHECK(m["headline"]["threshold"].is_null());
  CHECK(m["operating_point"].is_null());  // no threshold given
}

TEST_CASE("reliability: bins of patch probabilities by hand, the last bin closed, empty bins null") {
  // p 0.05 (non-mass), 0.15 (mass), 0.12 (non-mass), 1.0 (mass), 0.95 (mass) in 10 bins.
  const nlohmann::json r = reliability({0.05f, 0.15f, 0.12f, 1.0f, 0.95f}, {0, 1, 0, 1, 1}, 10);
  REQUIRE(r.size() == 10);
  CHECK(r[0]["count"] == 1);
  CHECK(r[0]["fraction_mass"].get<double>() == 0);
  CHECK(r[1]["count"] == 2);
  CHECK(r[1]["mean_p"].get<double>() == doctest::Approx((0.15 + 0.12) / 2));
  CHECK(r[1]["fraction_mass"].get<double>() == 0.5);
  CHECK(r[9]["count"] == 2);  // 1.0 falls in the last bin
  CHECK(r[9]["fraction_mass"].get<double>() == 1);
  for (int b = 2; b < 9; ++b) {
    CHECK(r[b]["count"] == 0);
    CHECK(r[b]["mean_p"].is_null());
  }
  CHECK(r[3]["lo"].get<double>() == doctest::Approx(0.3));
}

TEST_CASE("report: base64 against the RFC 4648 test vectors") {
  CHECK(base64("") == "");
  CHECK(base64("f") == "Zg==");
  CHECK(base64("fo") == "Zm8=");
  CHECK(base64("foo") == "Zm9v");
  CHECK(base64("foobar") == "Zm9vYmFy");
}
