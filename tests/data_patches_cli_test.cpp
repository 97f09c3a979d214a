// massmap data split and massmap data patches, end to end on a synthetic set: the split file holds every patient
// once, the patch set is balanced and its counts match the ones sampling reports, the cache is reused, the sheet
// has the documented geometry, and bad arguments get their exit codes.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "data/image_io.h"
#include "tests/support/cli.h"

using namespace testing_support;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

long number_after(const std::string& text, const std::string& key) {
  const size_t at = text.find(key);
  REQUIRE(at != std::string::npos);
  return std::strtol(text.c_str() + at + key.size(), nullptr, 10);
}

}  // namespace

TEST_CASE("data split and data patches on a synthetic set") {
  TempDir d;
  const std::string root = d / "synth";
  // 12 images = 3 patients (4 views each); masses up to 12 mm so 64-pixel patches at 0.4 mm hold them.
  REQUIRE(run_massmap("synth --out " + root + " --images 12 --seed 9 --size 200x256 --mass-max-mm 12").code == 0);
  const std::string data = "--format manifest --root " + root;

  const auto split =
      run_massmap("data split " + data + " --out " + d / "split.json" + " --seed 4 --train 0.67 --validation 0.33");
  INFO(split.output);
  REQUIRE(split.code == 0);
  const nlohmann::json s = nlohmann::json::parse(slurp(d / "split.json"));
  std::set<std::string> patients;
  size_t listed = 0;
  for (const char* part : {"train", "validation", "test"})
    for (const auto& p : s.at(part)) patients.insert(p.get<std::string>()), ++listed;
  CHECK(listed == 3);
  CHECK(patients == std::set<std::string>{"P00000", "P00001", "P00002"});
  CHECK(number_after(split.output, "train:") == long(s.at("train").size()));

  const std::string patches = "data patches " + data + " --cache " + d / "cache" + " --split-file " + d / "split.json" +
                              " --part train --spacing 0.4 --patch-size 64 --crop 57 --per-mass 3";
  const auto first = run_massmap(patches + " --sheet " + d / "sheet.png" + " --sheet-count 10");
  INFO(first.output);
  REQUIRE(first.code == 0);
  const size_t summary = first.output.find(" images, ");  // "N images, M patches of ..."
  REQUIRE(summary != std::string::npos);
  const long images = std::strtol(first.output.c_str() + first.output.rfind('\n', summary) + 1, nullptr, 10);
  CHECK(images == 4 * long(s.at("train").size()));  // every view of the train patients
  const long mass = number_after(first.output, "patches of 64x64: ");
  const long non_mass = number_after(first.output, " mass, ");
  CHECK(mass > 0);
  CHECK(mass % 3 == 0);
  CHECK(non_mass == mass);                      // balanced: one negative per mass patch
  CHECK(contains(first.output, "sampling: "));  // what could not be drawn as asked (usage_cli_test checks it)
  // One cache file per image; a second run reuses them and samples the same patches.
  size_t cached = 0;
  for (const auto& e : std::filesystem::directory_iterator(d / "cache")) cached += e.path().extension() == ".prep";
  CHECK(long(cached) == images);
  const auto second = run_massmap(patches);
  CHECK(second.code == 0);
  const auto summary_line = [](const std::string& out) {
    const size_t at = out.find(" images, ");
    return out.substr(out.rfind('\n', at) + 1, out.find('\n', at) - out.rfind('\n', at) - 1);
  };
  CHECK(summary_line(second.output) == summary_line(first.output));
  CHECK(contains(first.output, "images: " + std::to_string(images) + " prepared, 0 from the cache, 0 skipped"));
  CHECK(contains(second.output, "images: 0 prepared, " + std::to_string(images) + " from the cache, 0 skipped"));
  // The sheet: 8 columns of 57 + 6 pixels, two rows for 10 samples.
  const massmap::data::Image sheet = massmap::data::read_image(d / "sheet.png");
  CHECK(sheet.width == 8 * 63);
  CHECK(sheet.height == 2 * 63);

  const auto bad_part = run_massmap("data patches " + data + " --cache " + d / "cache" + " --split-file " +
                                    d / "split.json" + " --part holdout");
  CHECK(bad_part.code == 2);
  CHECK(contains(bad_part.output, "holdout"));
  const auto no_split =
      run_massmap("data patches " + data + " --cache " + d / "cache" + " --split-file " + d / "none.json");
  CHECK(no_split.code == 3);
  CHECK(contains(no_split.output, "none.json"));
  const auto no_cache = run_massmap("data patches " + data);
  CHECK(no_cache.code == 2);
  CHECK(contains(no_cache.output, "--cache"));
  const auto part_alone = run_massmap("data patches " + data + " --cache " + d / "cache" + " --part test");
  CHECK(part_alone.code == 2);
  CHECK(contains(part_alone.output, "--part needs --split-file"));
  const auto big_crop = run_massmap("data patches " + data + " --cache " + d / "cache" + " --patch-size 64 --crop 65");
  CHECK(big_crop.code == 2);
  CHECK(contains(big_crop.output, "--crop 65 is larger than --patch-size 64"));
  CHECK(run_massmap("data split --help").code == 0);
  CHECK(run_massmap("data patches --help").code == 0);
}
