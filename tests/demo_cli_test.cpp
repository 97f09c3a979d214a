// massmap demo, the whole search, on a tiny run: every stage runs, the scores count the test set's masses and
// images as its manifest lists them, and the run folder holds a massmap train run.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/dataset.h"
#include "engine/safetensors.h"
#include "tests/support/cli.h"

using namespace testing_support;

TEST_CASE("demo: a tiny run end to end") {
  TempDir d;
  const std::string out = d / "demo";
  const CliResult r =
      run_massmap("demo --out " + out + " --train-images 12 --test-images 6 --iterations 12 --batch 16");
  INFO(r.output);
  REQUIRE(r.code == 0);
  for (const char* stage : {"synthesise the training set", "synthesise the test set", "prepare and train",
                            "evaluate on the test set", "total"})
    CHECK(contains(r.output, stage));
  CHECK(contains(r.output, "headline:"));
  CHECK(contains(r.output, "found by subtlety"));

  std::ifstream in(out + "/evaluation/metrics.json");
  const nlohmann::json metrics = nlohmann::json::parse(in);
  massmap::data::DatasetOptions o;
  o.format = "manifest";
  o.root = out + "/synth-test";
  const massmap::data::Dataset test = massmap::data::read_dataset(o);
  int64_t masses = 0;
  for (const auto& image : test.images)
    for (const auto& lesion : image.lesions) masses += lesion.type == "mass";
  // Every test image evaluated, every mass of the test manifest counted, the baseline beside it.
  CHECK(metrics["images"].size() == test.images.size());
  int64_t counted = 0;
  for (const auto& image : metrics["images"]) counted += int64_t(image["masses"].size());
  CHECK(counted == masses);
  const double sensitivity = metrics["headline"]["sensitivity"].get<double>();
  CHECK((sensitivity >= 0 && sensitivity <= 1));
  CHECK(metrics["baseline_dog"].is_object());
  CHECK(std::filesystem::exists(out + "/evaluation/report.html"));
  std::ifstream demo_in(out + "/demo.json");
  CHECK(nlohmann::json::parse(demo_in)["stages"].size() == 5);

  // The training run inside: the checkpoint carries the threshold chosen on validation.
  const massmap::TensorFile ckpt = massmap::read_safetensors(out + "/train/checkpoint.safetensors");
  CHECK(ckpt.metadata.at("builder") == "mapnet_bn_fine");
  CHECK(ckpt.metadata.at("iteration") == "12");
  CHECK(ckpt.metadata.count("threshold") == 1);
  // The rate falls tenfold at 70% and 90% of the run: iterations 8 and 10 of 12 (integer parts of 8.4 and 10.8).
  std::ifstream config_in(out + "/train/config.json");
  const nlohmann::json config = nlohmann::json::parse(config_in);
  // mapnet_bn_fine's geometry: 93-pixel crops of 128-pixel patches at 0.2 mm.
  CHECK(config["preprocess"]["spacing_mm"].get<double>() == doctest::Approx(0.2));
  CHECK(config["patches"]["size"] == 128);
  CHECK(config["net_options"]["input"] == 93);
  const nlohmann::json lr = config["solver"]["lr_policy"];
  CHECK(lr["type"] == "multistep");
  CHECK(lr["stepvalues"] == nlohmann::json::array({8, 10}));
  CHECK(lr["gamma"].get<double>() == doctest::Approx(0.1));

  // Fast failures before any synthesis: a device that is not here, a checkpoint that is not there.
  CHECK(run_massmap("demo --out " + (d / "x") + " --device cuda").code == 5);
  CHECK(run_massmap("demo --out " + (d / "x") + " --resume " + (d / "nope.safetensors")).code == 3);
  CHECK(!std::filesystem::exists(d / "x/synth-train"));
}
