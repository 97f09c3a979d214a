// The command line as a new user meets it, one case per surprise it must not spring: options that are silently
// ignored or meaningless, messages that name no option or an internal function, raw floats, two spellings of a
// file position, "1 images", outputs checked only after the work, and a rerun that leaves an earlier set behind.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/manifest.h"
#include "data/patch_loader.h"
#include "data/patches.h"
#include "tests/support/cli.h"

using namespace testing_support;
namespace fs = std::filesystem;

namespace {

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// The files of a folder, by name ("" entries for none).
std::set<std::string> files_in(const std::string& dir) {
  std::set<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    names.insert(it->path().filename().string());
  return names;
}

// A small synthetic set: `images` images, 4 per patient.
std::string make_set(const TempDir& d, const std::string& name, int images) {
  const std::string root = d / name;
  const auto r =
      run_massmap("synth --out " + root + " --images " + std::to_string(images) + " --size 200x256 --mass-max-mm 12");
  REQUIRE_MESSAGE(r.code == 0, r.output);
  return root;
}

// The lines of `text` that start with `prefix`.
std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
  std::vector<std::string> lines;
  size_t at = 0;
  while (at < text.size()) {
    const size_t end = std::min(text.find('\n', at), text.size());
    if (text.compare(at, prefix.size(), prefix) == 0) lines.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  return lines;
}

}  // namespace

TEST_CASE("1: nets show refuses --batch 0 and --aux on a net without auxiliary heads") {
  auto r = run_massmap("nets show smallnet --batch 0");
  CHECK(r.code == 2);
  CHECK(contains(r.output, "option --batch expects an integer in 1.."));
  CHECK_FALSE(contains(r.output, "conv1"));  // no layer table
  r = run_massmap("nets show alexnet --aux");
  CHECK(r.code == 2);
  CHECK(contains(r.output, "--aux: alexnet has no auxiliary heads"));
  CHECK_FALSE(contains(r.output, "auxiliary heads\n"));
  // The one net that has them still takes it, and its table lists the heads.
  r = run_massmap("nets show googlenet --aux --width 0.25 --channels 1 --classes 2");
  CHECK(r.code == 0);
  CHECK(contains(r.output, ", auxiliary heads"));
  CHECK(contains(r.output, "loss1"));
}

TEST_CASE("2: synth without --images says the option is missing, and writes nothing") {
  TempDir d;
  const auto r = run_massmap("synth --out " + d / "s");
  CHECK(r.code == 2);
  CHECK(contains(r.output, "missing option --images"));
  CHECK_FALSE(contains(r.output, "must be a positive number"));
  CHECK_FALSE(fs::exists(d / "s"));
}

TEST_CASE("3: demo --toy names the option at fault, and its divergence message names --lr") {
  TempDir d;
  auto r = run_massmap("demo --toy --train 8 --batch 16 --out " + d / "toy");
  CHECK(r.code == 2);
  CHECK(contains(r.output, "--train 8 is less than one batch (--batch 16)"));
  CHECK_FALSE(contains(r.output, "--iterations, --batch, --width and --test"));
  r = run_massmap("demo --toy --iterations 0 --out " + d / "toy");
  CHECK(r.code == 2);
  CHECK(contains(r.output, "option --iterations expects an integer in 1.."));
  r = run_massmap("demo --toy --iterations 12 --lr 1e8 --train 64 --test 32 --batch 16 --width 4 --out " + d / "toy");
  CHECK(r.code == 6);
  CHECK(contains(r.output, "lower the learning rate with --lr"));
  CHECK_FALSE(contains(r.output, "base_lr"));
}

TEST_CASE("4: split fractions and split files: options in messages, decimals as written, the part's real trouble") {
  TempDir d;
  const std::string root = make_set(d, "s", 8);  // patients P00000, P00001
  const std::string data = "--format manifest --root " + root;

  auto r = run_massmap("data split " + data + " --out " + d / "split.json" + " --train 0.5 --validation 0.4");
  REQUIRE_MESSAGE(r.code == 0, r.output);
  const nlohmann::json split = read_json(d / "split.json");
  CHECK(split["fractions"]["test"].get<double>() == 0.1);  // not 1 - 0.5 - 0.4 = 0.09999999999999998
  CHECK(contains(read_text(d / "split.json"), "\"test\": 0.1,\n"));

  r = run_massmap("data split " + data + " --out " + d / "bad.json" + " --train 0.7 --validation 0.4");
  CHECK(r.code == 2);
  CHECK(contains(r.output, "--train 0.7 and --validation 0.4 add up to more than 1"));
  CHECK_FALSE(contains(r.output, "make_split"));
  CHECK_FALSE(contains(r.output, "0.700000"));
  CHECK_FALSE(fs::exists(d / "bad.json"));

  // A part whose patients are all absent from the dataset: not "is empty".
  const std::string absent = d / "absent.json";
  write_text(absent,
             R"({"seed": 1, "fractions": {"train": 0.4, "validation": 0, "test": 0.6},
                 "train": ["P00000", "P00001"], "validation": [], "test": ["X1", "X2", "X3"]})");
  const std::string patches = "data patches " + data + " --cache " + d / "cache" + " --split-file ";
  r = run_massmap(patches + absent + " --part test");
  CHECK(r.code == 3);
  CHECK(contains(r.output, "part 'test' of " + absent + " lists 3 patients, none of them in the dataset"));
  r = run_massmap(patches + absent + " --part validation");
  CHECK(r.code == 3);
  CHECK(contains(r.output, "part 'validation' of " + absent + " lists no patient"));

  // A split of another dataset: the dataset's patients it does not list, counted.
  const std::string other = d / "other.json";
  write_text(other, R"({"seed": 1, "fractions": {"train": 1, "validation": 0, "test": 0},
                        "train": ["Q1"], "validation": [], "test": []})");
  r = run_massmap(patches + other);
  CHECK(r.code == 3);
  CHECK(contains(r.output, other + ": patient 'P00000' and 1 other of the dataset are in no part of the split, "
                                   "which lists 1 patient"));
}

TEST_CASE("5: data patches names the image in its progress lines and explains sampling in words") {
  TempDir d;
  const std::string root = make_set(d, "s", 8);
  const auto r = run_massmap("data patches --format manifest --root " + root + " --cache " + d / "cache" +
                             " --spacing 0.4 --patch-size 64 --crop 57");
  INFO(r.output);
  REQUIRE(r.code == 0);
  const std::vector<std::string> progress = lines_starting(r.output, "prepare: ");
  REQUIRE(!progress.empty());
  for (const std::string& line : progress) CHECK_MESSAGE(contains(line, " images/P000"), line);
  CHECK_FALSE(contains(r.output, "{"));  // no raw JSON
  CHECK_FALSE(contains(r.output, "fallback_to_breast"));

  // The same sampling in process: every count it reports, in the command's words.
  massmap::data::DatasetOptions o;
  o.format = "manifest";
  o.root = root;
  const massmap::data::Dataset ds = massmap::data::read_dataset(o);
  std::vector<int> indices(ds.images.size());
  for (size_t i = 0; i < indices.size(); ++i) indices[i] = int(i);
  massmap::data::PatchSetOptions po;
  po.cache_dir = d / "cache2";
  po.preprocess.spacing_mm = 0.4;
  po.patches.size = 64;
  po.progress = false;
  const massmap::data::PatchSet set = massmap::data::build_patch_set(ds, indices, po);
  int64_t noted = 0;
  for (const auto source : {massmap::data::PatchSource::breast, massmap::data::PatchSource::edge,
                            massmap::data::PatchSource::air, massmap::data::PatchSource::label}) {
    const int64_t n = set.stats.fallback[int(source)];
    const std::string name = massmap::data::patch_source_name(source);
    if (n == 0) {
      CHECK_FALSE(contains(r.output, "meant for " + name));
      continue;
    }
    ++noted;
    CHECK(contains(r.output, "  " + std::to_string(n) + (n == 1 ? " non-mass patch" : " non-mass patches") +
                                 " meant for " + name + " found no valid centre there"));
  }
  noted += set.stats.dropped + set.stats.masses_without_mask + set.stats.negatives_withheld;
  CHECK(contains(r.output, noted == 0 ? "sampling: every patch came from the region it was drawn for"
                                      : "sampling: not every patch came from the region it was drawn for:"));
}

TEST_CASE("6: the help says what data does, data patches' help is balanced, and --csv alone names a manifest") {
  auto r = run_massmap("--help");
  CHECK(r.code == 0);
  const std::vector<std::string> data_line = lines_starting(r.output, "  data ");
  REQUIRE(data_line.size() == 1);
  for (const char* word : {"check", "split", "patches"}) CHECK_MESSAGE(contains(data_line[0], word), data_line[0]);

  r = run_massmap("data patches --help");
  CHECK(r.code == 0);
  CHECK(std::count(r.output.begin(), r.output.end(), '(') == std::count(r.output.begin(), r.output.end(), ')'));
  CHECK(contains(r.output, "but for a manifest named by --csv"));

  TempDir d;
  const std::string root = make_set(d, "s", 4);
  r = run_massmap("data check --format manifest --csv " + root + "/manifest.csv");
  CHECK(r.code == 0);
  CHECK(contains(r.output, "images: 4\n"));
}

TEST_CASE("7: file positions read file:line everywhere; counts of one are singular") {
  TempDir d;
  const std::string root = make_set(d, "s", 4);
  // The manifest's third line names an image that is not there.
  const massmap::data::Manifest m = massmap::data::read_manifest(root + "/manifest.csv");
  std::string text = read_text(root + "/manifest.csv");
  const size_t header = text.find("image,");
  const size_t header_line = size_t(std::count(text.begin(), text.begin() + long(header), '\n')) + 1;
  const std::string first = m.images.front().image;
  text.replace(text.find(first), first.size(), "images/missing.png");
  write_text(root + "/manifest.csv", text);
  auto r = run_massmap("data check --format manifest --root " + root);
  CHECK(r.code == 3);
  CHECK(contains(r.output, "manifest.csv:" + std::to_string(header_line + 1) + ": file not found"));
  CHECK_FALSE(contains(r.output, " line "));
  write_text(root + "/manifest.csv", text + "\"unclosed,P9,L,CC\n");
  r = run_massmap("data check --format manifest --root " + root);
  CHECK(r.code == 3);
  const size_t last_line = size_t(std::count(text.begin(), text.end(), '\n')) + 1;
  CHECK(contains(r.output, "manifest.csv:" + std::to_string(last_line) + ": a quoted field is not closed"));

  r = run_massmap("synth --out " + d / "one" + " --images 1 --size 200x256 --mass-max-mm 12 --normal-fraction 0");
  REQUIRE(r.code == 0);
  CHECK(contains(r.output, "1 image ("));
  CHECK_FALSE(contains(r.output, "1 images"));
  r = run_massmap("data split --format manifest --root " + d / "one" + " --out " + d / "one.json");
  REQUIRE(r.code == 0);
  CHECK(contains(r.output, "train:      1 patient, 1 image\n"));
  r = run_massmap("demo --toy --iterations 1 --train 16 --test 1 --batch 16 --width 2 --out " + d / "toy");
  REQUIRE(r.code == 0);
  CHECK(contains(r.output, "(1 image, 1 iteration)"));
}

TEST_CASE("8: output paths are checked before the work; a synth rerun replaces the earlier set") {
  TempDir d;
  auto r = run_massmap("synth --out " + d / "s" + " --images 8 --size 200x256 --mass-max-mm 12 --overview " +
                       d / "no/such/o.png");
  CHECK(r.code == 3);
  CHECK(contains(r.output,
                 "--overview '" + d / "no/such/o.png" + "': the folder '" + d / "no/such" + "' does not exist"));
  CHECK(files_in(d / "s/images").empty());  // refused before any image was made

  const std::string root = make_set(d, "set", 8);
  r = run_massmap("data patches --format manifest --root " + root + " --cache " + d / "cache" + " --sheet " +
                  d / "no/such/sheet.png");
  CHECK(r.code == 3);
  CHECK(contains(r.output, "--sheet '" + d / "no/such/sheet.png" + "'"));
  CHECK(files_in(d / "cache").empty());  // no image was prepared

  // Rerun with fewer images and as PGM: what is left is exactly what the new manifest lists.
  std::set<std::string> before;
  for (const char* folder : {"images", "masks", "regions"})
    for (const std::string& f : files_in(root + "/" + folder)) before.insert(std::string(folder) + "/" + f);
  r = run_massmap("synth --out " + root + " --images 4 --size 200x256 --mass-max-mm 12 --format pgm --seed 2");
  INFO(r.output);
  REQUIRE(r.code == 0);
  const massmap::data::Manifest m = massmap::data::read_manifest(root + "/manifest.csv");
  std::set<std::string> listed, regions;
  for (const auto& im : m.images) {
    listed.insert(im.image);
    regions.insert("regions/" + fs::path(im.image).filename().string());
    for (const auto& l : im.lesions)
      if (!l.mask.empty()) listed.insert(l.mask);
  }
  std::set<std::string> after;
  for (const char* folder : {"images", "masks", "regions"})
    for (const std::string& f : files_in(root + "/" + folder)) after.insert(std::string(folder) + "/" + f);
  std::set<std::string> expected = listed;
  expected.insert(regions.begin(), regions.end());
  CHECK(after == expected);
  CHECK(contains(r.output, "removed its " + std::to_string(before.size()) + " files"));  // png -> pgm: all of them

  // A folder that synth did not write is refused, and left as it was.
  fs::create_directories(d / "mine/images");
  write_text(d / "mine/images/keep.png", "x");
  r = run_massmap("synth --out " + d / "mine" + " --images 4 --size 200x256 --mass-max-mm 12");
  CHECK(r.code == 2);
  CHECK(contains(r.output, "holds images/keep.png but no synth.json"));
  CHECK(read_text(d / "mine/images/keep.png") == "x");
}
