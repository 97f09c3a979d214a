// massmap evaluate through the real program on a small synth-v1 set with a briefly trained smallnet: every file per
// image and the report, metrics.json's keys, and its numbers recomputed here from the saved maps and the dataset's
// masks with plain loops (detections against map.npy, hits and false positives judged by hand, the FROC's
// sensitivity at 0.9 FP/image and CPM by brute force over thresholds, the paper's ROI maximum by a bilinear
// interpolation written from map.json's geometry), for the CNN and the DoG baseline; the report refers to nothing
// outside itself; patch accuracy and the loss curve from the run folder (none for another split); the usage
// errors and a missing checkpoint with their exit codes.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "data/dataset.h"
#include "engine/npy.h"
#include "engine/safetensors.h"
#include "tests/support/check.h"
#include "tests/support/cli.h"

using namespace massmap;
using testing_support::contains;
using testing_support::read_json;
using testing_support::read_text;
using testing_support::run_massmap;
using testing_support::TempDir;

namespace {

// 24 images of 6 patients split 3 / 1 / 2; smallnet trained for 20 iterations (its threshold in the metadata).
struct Fixture {
  TempDir dir;
  std::string root = dir / "syn", split = dir / "split.json", weights = dir / "run/checkpoint.safetensors";
  std::string dataset_args() const { return "--format manifest --root " + root + " --split-file " + split; }
  Fixture() {
    REQUIRE(run_massmap("synth --out " + root + " --images 24 --seed 5 --size 200x256 --mass-max-mm 12").code == 0);
    REQUIRE(run_massmap("data split --format manifest --root " + root + " --out " + split +
                        " --seed 1 --train 0.5 --validation 0.17")
                .code == 0);
    const auto t = run_massmap("train --format manifest --root " + root + " --split-file " + split + " --cache " +
                               (dir / "cache") + " --out " + (dir / "run") +
                               " --net smallnet --batch 16 --iterations 20 --validate-every 20 --checkpoint-every 20");
    INFO(t.output);
    REQUIRE(t.code == 0);
  }
};

const Fixture& fixture() {
  static Fixture f;
  return f;
}

struct Judged {
  std::vector<double> mass_best;        // (masses) -1: missed
  std::vector<double> false_positives;  // (false positives)
};

// Sensitivity at `budget` FP per image: the best over every candidate threshold within the budget.
double brute_sensitivity(const std::vector<Judged>& images, double budget) {
  std::vector<double> candidates = {std::numeric_limits<double>::infinity()};
  for (const Judged& j : images) {
    candidates.insert(candidates.end(), j.false_positives.begin(), j.false_positives.end());
    candidates.insert(candidates.end(), j.mass_best.begin(), j.mass_best.end());
  }
  double best = 0;
  for (double t : candidates) {
    double fp = 0, hits = 0, masses = 0;
    for (const Judged& j : images) {
      for (double p : j.false_positives) fp += p >= t;
      for (double p : j.mass_best) hits += p >= 0 && p >= t, masses += 1;
    }
    if (fp / double(images.size()) <= budget + 1e-12) best = std::max(best, hits / masses);
  }
  return best;
}

// Judges a detections file against the image's lesion masks by hand: the mask pixel at the rounded centre.
Judged judge_by_hand(const nlohmann::json& detections, const data::DatasetImage& meta, int width, int height) {
  std::vector<std::vector<uint8_t>> masks;  // (lesions) (height, width)
  for (const auto& l : meta.lesions) masks.push_back(data::lesion_mask(l, width, height));
  Judged j;
  for (const auto& l : meta.lesions)
    if (l.type == "mass") j.mass_best.push_back(-1);
  for (const auto& d : detections["detections"]) {
    const long x = std::lround(d["original_px"]["x"].get<double>()),
               y = std::lround(d["original_px"]["y"].get<double>());
    const double p = d["probability"].get<float>();
    bool in_lesion = false;
    size_t mass = 0;
    for (size_t l = 0; l < masks.size(); ++l) {
      const bool is_mass = meta.lesions[l].type == "mass";
      if (x >= 0 && y >= 0 && x < width && y < height && masks[l][size_t(y * width + x)]) {
        in_lesion = true;
        if (is_mass) j.mass_best[mass] = std::max(j.mass_best[mass], p);
      }
      mass += is_mass;
    }
    if (!in_lesion) j.false_positives.push_back(p);
  }
  return j;
}

// The map at original pixel (x, y), bilinear between cell centres (clamped), from map.json's geometry.
double bilinear(const std::vector<float>& map, const nlohmann::json& g, double x, double y) {
  const int64_t h = g["cells"][0], w = g["cells"][1];
  const double fy = std::clamp(
      (y - g["first_cell_centre"]["original_px"][0].get<double>()) / g["stride"]["original_px"][0].get<double>(), 0.0,
      double(h - 1));
  const double fx = std::clamp(
      (x - g["first_cell_centre"]["original_px"][1].get<double>()) / g["stride"]["original_px"][1].get<double>(), 0.0,
      double(w - 1));
  const int64_t y0 = int64_t(fy), x0 = int64_t(fx), y1 = std::min(y0 + 1, h - 1), x1 = std::min(x0 + 1, w - 1);
  const double ay = fy - double(y0), ax = fx - double(x0);
  auto at = [&](int64_t i, int64_t j) { return double(map[size_t(i * w + j)]); };
  return (1 - ay) * ((1 - ax) * at(y0, x0) + ax * at(y0, x1)) + ay * ((1 - ax) * at(y1, x0) + ax * at(y1, x1));
}

}  // namespace

TEST_CASE("evaluate: every file, the keys, and every headline number recomputed from the saved maps") {
  const Fixture& f = fixture();
  const std::string out = f.dir / "eval";
  const auto r = run_massmap("evaluate --weights " + f.weights + " " + f.dataset_args() + " --part test --out " + out +
                             " --baseline dog --replicates 200");
  INFO(r.output);
  REQUIRE(r.code == 0);
  CHECK(contains(r.output, "sensitivity at 0.9 FP/image"));
  CHECK(contains(r.output, "warning: 2 patient(s) in the part"));
  const nlohmann::json m = read_json(out + "/metrics.json");
  for (const char* key : {"headline",
                          "cpm",
                          "operating_point",
                          "froc",
                          "froc_band",
                          "image_auc",
                          "image_roc",
                          "patches",
                          "patch_accuracy",
                          "paper_roi_max",
                          "paper_roi_mean",
                          "breakdowns",
                          "baseline_dog",
                          "counts",
                          "parameters",
                          "on_box",
                          "fp_per_image_mass_images",
                          "fp_per_cm2",
                          "timings",
                          "images"})
    CHECK_MESSAGE(m.contains(key), key);
  CHECK(m["headline"]["fp_per_image"] == 0.9);
  CHECK(m["headline"]["ci95"].size() == 2);
  CHECK(m["cpm"]["ci95"].size() == 2);
  CHECK(m["parameters"]["nms_radius_mm"] == 10.0);
  CHECK(m["parameters"]["bootstrap"]["replicates"] == 200);
  for (const char* key : {"headline", "cpm", "froc", "image_auc", "paper_roi_max", "breakdowns", "on_box"})
    CHECK_MESSAGE(m["baseline_dog"].contains(key), key);
  // The operating threshold is the one training stored.
  const TensorFile ckpt = read_safetensors(f.weights);
  CHECK(m["operating_point"]["threshold"].get<double>() == doctest::Approx(std::stod(ckpt.metadata.at("threshold"))));
  CHECK(m["operating_point"]["source"] == "checkpoint");
  // Patch accuracy and the loss curve from the run folder the checkpoint sits in (same split, final checkpoint).
  const nlohmann::json run = read_json(f.dir / "run/metrics.json");
  CHECK(m["patch_accuracy"]["accuracy"] == run["final"]["test"]["accuracy"]);
  CHECK(m["patch_accuracy"]["patches"] == run["final"]["test"]["patches"]);
  // Patches sampled and classified here: accuracy and the reliability bins from the saved probabilities by hand.
  const auto p = m["patches"]["p_mass"].get<std::vector<double>>();
  const auto label = m["patches"]["label"].get<std::vector<int>>();
  REQUIRE(p.size() == label.size());
  REQUIRE(!p.empty());
  CHECK(m["patches"]["patches"] == p.size());
  double right = 0;
  std::vector<int64_t> count(10, 0);
  for (size_t i = 0; i < p.size(); ++i) {
    right += (p[i] >= 0.5) == (label[i] == 1);
    ++count[size_t(std::min(9, int(p[i] * 10)))];
  }
  CHECK(m["patches"]["accuracy"].get<double>() == doctest::Approx(right / double(p.size())));
  for (size_t b = 0; b < 10; ++b) CHECK(m["patches"]["reliability"][b]["count"] == count[b]);
  REQUIRE(m["training_curve"].is_object());
  CHECK(m["training_curve"]["loss"].size() == 20);  // 20 logged iterations, under the 200-point limit
  CHECK(m["training_curve"]["validation"].size() == run["validations"].size());

  data::DatasetOptions dopt;
  dopt.format = "manifest";
  dopt.root = f.root;
  const data::Dataset ds = data::read_dataset(dopt);
  const nlohmann::json& images = m["images"];
  REQUIRE(images.size() == 8);
  CHECK(m["counts"]["images"] == 8);
  CHECK(m["counts"]["patients"] == 2);
  std::vector<Judged> cnn, dog;
  int64_t masses = 0, normals = 0;
  std::vector<double> roi_max;
  for (const auto& im : images) {
    const std::string id = im["id"];
    CAPTURE(id);
    const auto meta = std::find_if(ds.images.begin(), ds.images.end(), [&](const auto& d) { return d.id == id; });
    REQUIRE(meta != ds.images.end());
    normals += meta->lesions.empty();
    const std::string dir = out + "/" + im["maps"].get<std::string>();
    for (const char* file : {"map.npy", "map.json", "detections.json", "dog.npy", "dog_detections.json"})
      CHECK_MESSAGE(std::filesystem::exists(dir + "/" + file), file);
    const nlohmann::json g = read_json(dir + "/map.json");
    const int width = g["original"]["width"], height = g["original"]["height"];
    for (const auto& [npy, dets, judged, key] : {std::tuple{"map.npy", "detections.json", &cnn, "cnn"},
                                                 std::tuple{"dog.npy", "dog_detections.json", &dog, "dog"}}) {
      const std::vector<float> map = read_npy_float(dir + "/" + npy).to_vector();  // (cells_y, cells_x)
      REQUIRE(int64_t(map.size()) == g["cells"][0].get<int64_t>() * g["cells"][1].get<int64_t>());
      const nlohmann::json d = read_json(dir + "/" + dets);
      for (const auto& det : d["detections"])
        CHECK(
            det["probability"].get<float>() ==
            map[size_t(det["cell"][0].get<int64_t>() * g["cells"][1].get<int64_t>() + det["cell"][1].get<int64_t>())]);
      CHECK(im[key]["image_max"].get<float>() == *std::max_element(map.begin(), map.end()));
      const Judged j = judge_by_hand(d, *meta, width, height);
      REQUIRE(im[key]["masses"].size() == j.mass_best.size());
      for (size_t k = 0; k < j.mass_best.size(); ++k)
        CHECK(im[key]["masses"][k]["best_on_mask"].get<double>() == j.mass_best[k]);
      CHECK(im[key]["false_positives"].get<std::vector<double>>() == j.false_positives);
      judged->push_back(j);
      if (std::string(key) != "cnn") continue;
      // The paper's ROI maximum over each mass's mask, from the map's geometry.
      size_t k = 0;
      for (const auto& l : meta->lesions) {
        if (l.type != "mass") continue;
        const std::vector<uint8_t> mask = data::lesion_mask(l, width, height);  // (height, width)
        double mx = -1;
        for (int y = 0; y < height; ++y)
          for (int x = 0; x < width; ++x)
            if (mask[size_t(y * width + x)]) mx = std::max(mx, bilinear(map, g, x, y));
        CHECK(im["cnn"]["masses"][k++]["roi_max"].get<double>() == doctest::Approx(mx).epsilon(1e-5));
        roi_max.push_back(mx);
        ++masses;
      }
    }
  }
  CHECK(m["counts"]["masses"] == masses);
  CHECK(m["counts"]["normals"] == normals);
  CHECK(masses > 0);
  for (const auto& [judged, metrics] : {std::pair{&cnn, &m}, std::pair{&dog, &m["baseline_dog"]}}) {
    CHECK((*metrics)["headline"]["sensitivity"].get<double>() == doctest::Approx(brute_sensitivity(*judged, 0.9)));
    double c = 0;
    for (double level : {0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0}) c += brute_sensitivity(*judged, level) / 7;
    CHECK((*metrics)["cpm"]["value"].get<double>() == doctest::Approx(c));
    const double lo = (*metrics)["headline"]["ci95"][0], hi = (*metrics)["headline"]["ci95"][1];
    CHECK(lo <= hi);
  }
  double passed = 0;
  for (double v : roi_max) passed += v >= 0.4;
  CHECK(m["paper_roi_max"]["sensitivity"].get<double>() == doctest::Approx(passed / double(roi_max.size())));

  // The report: self-contained, the headline in it, the overlays embedded.
  const std::string html = read_text(out + "/report.html");
  CHECK(contains(html, "data:image/png;base64,"));
  CHECK(!contains(html, "<script"));
  CHECK(contains(html, "85%"));
  // Any "//" left once the embedded PNGs (whose base64 may hold "//") are cut out must be the SVG namespace.
  // (A plain scan: std::regex recurses once per character and overflows the stack on megabytes of base64.)
  std::string text;
  const std::string prefix = "data:image/png;base64,";
  for (size_t at = 0; at < html.size();) {
    const size_t found = html.find(prefix, at);
    text += html.substr(at, found == std::string::npos ? std::string::npos : found - at);
    if (found == std::string::npos) break;
    at = found + prefix.size();
    while (at < html.size() && (std::isalnum(static_cast<unsigned char>(html[at])) || html[at] == '+' ||
                                html[at] == '/' || html[at] == '='))
      ++at;
  }
  for (size_t at = text.find("//"); at != std::string::npos; at = text.find("//", at + 2))
    CHECK_MESSAGE(text.compare(at >= 5 ? at - 5 : 0, 26, "http://www.w3.org/2000/svg") == 0,
                  text.substr(at >= 30 ? at - 30 : 0, 60));
  CHECK(contains(text, "http://www.w3.org/2000/svg"));
}

TEST_CASE("evaluate: --help, usage errors, a missing checkpoint; another split has no patch accuracy") {
  const Fixture& f = fixture();
  const auto help = run_massmap("evaluate --help");
  CHECK(help.code == 0);
  CHECK(contains(help.output, "metrics.json"));
  CHECK(contains(help.output, "--split-file"));
  const std::string base = "evaluate --weights " + f.weights + " " + f.dataset_args() + " --out " + (f.dir / "e");
  const auto part = run_massmap(base + " --part holdout");
  CHECK(part.code == 2);
  CHECK(contains(part.output, "--part"));
  CHECK(run_massmap(base + " --patches-per-mass -1").code == 2);
  const auto baseline = run_massmap(base + " --baseline sift");
  CHECK(baseline.code == 2);
  CHECK(contains(baseline.output, "--baseline"));
  CHECK(
      run_massmap("evaluate --weights " + f.weights + " --format manifest --root " + f.root + " --out " + (f.dir / "e"))
          .code == 2);  // no --split-file
  const auto missing = run_massmap("evaluate --weights " + (f.dir / "none.safetensors") + " " + f.dataset_args() +
                                   " --out " + (f.dir / "e"));
  CHECK(missing.code == 3);
  CHECK(contains(missing.output, "none.safetensors"));
  // A corrupt image of the test part: named with exit 3, or with --skip-bad left out and listed.
  const std::string bad = f.dir / "bad";
  std::filesystem::copy(f.root, bad, std::filesystem::copy_options::recursive);
  const std::string patient = read_json(f.split)["test"][0];
  const std::string corrupt = "images/" + patient + "_L_CC.png";
  std::ofstream(bad + "/" + corrupt, std::ios::binary | std::ios::trunc) << "not a png";
  const std::string on_bad = "evaluate --weights " + f.weights + " --format manifest --root " + bad + " --split-file " +
                             f.split + " --replicates 20 --patches-per-mass 0 --out ";
  const auto stopped = run_massmap(on_bad + (f.dir / "e3"));
  CHECK(stopped.code == 3);
  CHECK(contains(stopped.output, patient + "_L_CC.png"));
  const auto skipped = run_massmap(on_bad + (f.dir / "e4") + " --skip-bad");
  INFO(skipped.output);
  REQUIRE(skipped.code == 0);
  const nlohmann::json ms = read_json(f.dir / "e4/metrics.json");
  CHECK(ms["counts"]["images"] == 7);
  CHECK(ms["counts"]["skipped"] == 1);
  CHECK(ms["skipped"][0]["id"] == corrupt);
  CHECK(ms["images"].size() == 7);

  // Another split than the checkpoint's: no patch accuracy, and the reason.
  const std::string other = f.dir / "other-split.json";
  // The default fractions (0.8, 0.1) leave 6 patients' test part empty: an error naming the split and the part.
  REQUIRE(run_massmap("data split --format manifest --root " + f.root + " --out " + other + " --seed 9").code == 0);
  const auto empty = run_massmap("evaluate --weights " + f.weights + " --format manifest --root " + f.root +
                                 " --split-file " + other + " --out " + (f.dir / "e2"));
  CHECK(empty.code == 3);
  CHECK(contains(empty.output, "other-split.json: the part 'test' holds no image"));
  REQUIRE(run_massmap("data split --format manifest --root " + f.root + " --out " + other +
                      " --seed 9 --train 0.5 --validation 0.17")
              .code == 0);
  const auto r =
      run_massmap("evaluate --weights " + f.weights + " --format manifest --root " + f.root + " --split-file " + other +
                  " --out " + (f.dir / "e2") + " --replicates 20 --patches-per-mass 0");
  INFO(r.output);
  REQUIRE(r.code == 0);
  const nlohmann::json m = read_json(f.dir / "e2/metrics.json");
  CHECK(m["patch_accuracy"]["value"].is_null());
  CHECK(contains(m["patch_accuracy"]["reason"].get<std::string>(), "another split"));
  CHECK(m["baseline_dog"].is_null());
  CHECK(m["patches"].is_null());  // --patches-per-mass 0
}
