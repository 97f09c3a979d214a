// The pieces of massmap train that are plain functions: patch metrics against brute-force definitions, SHA-256
// against the standard's test vectors, and the settings' JSON (overrides merged, unknown keys refused).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "apps/search/operating_point.h"
#include "apps/search/patch_metrics.h"
#include "apps/search/sha256.h"
#include "apps/search/train_settings.h"
#include "base/errors.h"

using namespace massmap;
using namespace massmap::search;

namespace {

// The AUC by its definition: over every (mass, non-mass) pair, 1 when the mass scores higher, 1/2 on a tie.
double pairwise_auc(const std::vector<float>& p, const std::vector<int>& labels) {
  double wins = 0, pairs = 0;
  for (size_t i = 0; i < p.size(); ++i)
    for (size_t j = 0; j < p.size(); ++j)
      if (labels[i] == 1 && labels[j] == 0) {
        wins += p[i] > p[j] ? 1.0 : p[i] == p[j] ? 0.5 : 0.0;
        pairs += 1;
      }
  return wins / pairs;
}

}  // namespace

TEST_CASE("patch metrics: a hand example") {
  // p(mass):         0.9  0.8  0.3  0.6  0.1  0.5
  // label:           1    0    1    0    0    1
  // said mass (>=.5) y    y    n    y    n    y   -> TP 2, FP 2, TN 1, FN 1
  const std::vector<float> p = {0.9f, 0.8f, 0.3f, 0.6f, 0.1f, 0.5f};
  const std::vector<int> labels = {1, 0, 1, 0, 0, 1};
  const PatchMetrics m = patch_metrics(p, labels);
  CHECK(m.patches == 6);
  CHECK(m.true_positive == 2);
  CHECK(m.false_positive == 2);
  CHECK(m.true_negative == 1);
  CHECK(m.false_negative == 1);
  CHECK(m.accuracy == doctest::Approx(3.0 / 6));
  const double loss =
      -(std::log(0.9) + std::log(0.2) + std::log(0.3) + std::log(0.4) + std::log(0.9) + std::log(0.5)) / 6;
  CHECK(m.loss == doctest::Approx(loss).epsilon(1e-6));
  // Mass scores 0.9, 0.3, 0.5 against non-mass 0.8, 0.6, 0.1: 0.9 beats 3, 0.3 beats 1, 0.5 beats 1 -> 5 of 9.
  CHECK(m.auc == doctest::Approx(5.0 / 9));
}

TEST_CASE("patch metrics: AUC with ties equals the pairwise definition; degenerate cases") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    const int n = 1 + int(rng() % 60);
    std::vector<float> p(static_cast<size_t>(n));     // (n) p(mass)
    std::vector<int> labels(static_cast<size_t>(n));  // (n)
    for (int i = 0; i < n; ++i) {
      p[size_t(i)] = float(rng() % 7) / 6.f;  // few distinct values: many ties
      labels[size_t(i)] = int(rng() % 2);
    }
    const PatchMetrics m = patch_metrics(p, labels);
    const int positives = int(std::count(labels.begin(), labels.end(), 1));
    if (positives == 0 || positives == n)
      CHECK(m.auc == 0.5);
    else
      CHECK(m.auc == doctest::Approx(pairwise_auc(p, labels)).epsilon(1e-12));
    CHECK(m.true_positive + m.false_positive + m.true_negative + m.false_negative == n);
  }
  CHECK(patch_metrics({}, {}).patches == 0);
  CHECK_THROWS_AS(patch_metrics({0.5f}, {}), BadInput);
  // A perfect ranker and a perfectly wrong one.
  CHECK(patch_metrics({0.9f, 0.1f}, {1, 0}).auc == 1.0);
  CHECK(patch_metrics({0.1f, 0.9f}, {1, 0}).auc == 0.0);
}

TEST_CASE("sha256: the standard's test vectors") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  CHECK_THROWS_AS(sha256_of_file("/nonexistent/split.json"), BadInput);
}

TEST_CASE("train settings: the net's defaults, overrides merged by key, unknown keys refused") {
  const TrainSettings alexnet = default_train_settings("alexnet");
  CHECK(alexnet.augmentation.output == 227);
  CHECK(alexnet.patches.size == 256);
  CHECK(alexnet.preprocess.spacing_mm == 0.2);
  CHECK(alexnet.net_options.channels == 1);
  CHECK(alexnet.net_options.classes == 2);

  TrainSettings s = default_train_settings("smallnet");
  CHECK(s.augmentation.output == 24);
  const float momentum = s.solver.momentum;
  s.apply_json({{"solver", {{"lr_policy", {{"base_lr", 0.5}}}}}, {"patches", {{"per_mass", 3}}}, {"iterations", 77}},
               "test.json");
  CHECK(s.solver.lr.base_lr == doctest::Approx(0.5));
  CHECK(s.solver.momentum == momentum);  // untouched keys keep their values
  CHECK(s.patches.per_mass == 3);
  CHECK(s.iterations == 77);
  CHECK(s.solver.max_iter == 77);

  TrainSettings back = default_train_settings("smallnet");
  nlohmann::json everything = s.to_json();
  everything.erase("net");  // chosen on the command line only
  back.apply_json(everything, "round trip");
  CHECK(back.to_json() == s.to_json());

  CHECK_THROWS_WITH_AS(s.apply_json({{"iteratons", 5}}, "c.json"), doctest::Contains("'iteratons'"), BadConfig);
  CHECK_THROWS_WITH_AS(s.apply_json({{"solver", {{"momentun", 0.5}}}}, "c.json"), doctest::Contains("momentun"),
                       BadConfig);
  CHECK_THROWS_AS(s.apply_json({{"net_options", {{"classes", 3}}}}, "c.json"), BadConfig);
  CHECK_THROWS_WITH_AS(s.apply_json({{"patches", {{"size", 16}}}}, "c.json"), doctest::Contains("larger than"),
                       BadConfig);
  CHECK(s.precision == "float32");
  s.apply_json({{"precision", "bfloat16"}}, "c.json");
  CHECK(s.precision == "bfloat16");
  CHECK_THROWS_WITH_AS(s.apply_json({{"precision", "fp16"}}, "c.json"), doctest::Contains("'fp16'"), BadConfig);
  CHECK(s.precision == "bfloat16");  // unchanged by the refused value
}

TEST_CASE("operating point: detections judged on the masks, the threshold read off the false positives") {
  data::DatasetImage image;
  data::DatasetLesion mass, calcification;
  mass.type = "mass", mass.has_box = true, mass.box = {10, 10, 5, 5};  // no mask file: the box is the mask
  calcification.type = "calcification", calcification.has_box = true, calcification.box = {30, 30, 4, 4};
  image.lesions = {mass, calcification};
  auto at = [](double x, double y, float p) {
    Detection d;
    d.x = x, d.y = y, d.probability = p;
    return d;
  };
  const JudgedImage j =
      judge_detections({at(12, 12, 0.8f), at(31, 31, 0.95f), at(50, 5, 0.4f), at(11, 13, 0.6f)}, image, 64, 48);
  REQUIRE(j.mass_best.size() == 1);
  CHECK(j.mass_best[0] == 0.8f);  // its best detection; the calcification's is neither hit nor false positive
  CHECK(j.false_positives == std::vector<float>{0.4f});

  // Three images, false positives 0.9, 0.7, 0.5 in all, masses found at 0.8 and 0.6 and one missed.
  std::vector<JudgedImage> images(3);
  images[0].false_positives = {0.9f, 0.5f}, images[0].mass_best = {0.8f, -1.f};
  images[1].false_positives = {0.7f}, images[1].mass_best = {0.6f};
  // 0.9 per image over 3 images allows 2 false positives: the threshold lies just above the third, 0.5.
  const OperatingPoint op = choose_threshold(images, 0.9);
  CHECK(op.threshold > 0.5);
  CHECK(op.threshold < 0.5000001);
  CHECK(op.fp_per_image == doctest::Approx(2.0 / 3));
  CHECK(op.sensitivity == doctest::Approx(2.0 / 3));
  CHECK(op.masses == 3);
  const OperatingPoint none = choose_threshold(images, 0);  // no false positive allowed: above 0.9
  CHECK(none.threshold > 0.9);
  CHECK(none.fp_per_image == 0);
  CHECK(none.sensitivity == 0);
  const OperatingPoint all = choose_threshold(images, 5);  // more allowed than there are: every detection
  CHECK(all.threshold == 0);
  CHECK(all.fp_per_image == 1);
}
