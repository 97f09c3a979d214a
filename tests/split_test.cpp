// Patient-level split: exact 80/10/10 counts by rounding, every patient in one part with all its images,
// determinism per seed, stability when patients are added, the JSON file's round trip and its errors.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "base/errors.h"
#include "data/patches.h"

namespace fs = std::filesystem;
using namespace massmap;
using namespace massmap::data;

namespace {

// `patients` patients with 1..4 images each (two views of one or both breasts).
Dataset make_dataset(int patients) {
  Dataset d;
  for (int p = 0; p < patients; ++p)
    for (int k = 0; k <= p % 4; ++k) {
      DatasetImage im;
      im.patient_id = "P_" + std::to_string(1000 + p);
      im.id = im.patient_id + "_" + std::to_string(k);
      d.images.push_back(im);
    }
  return d;
}

fs::path temp_dir() {
  const fs::path dir = fs::temp_directory_path() / ("massmap_split_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

}  // namespace

TEST_CASE("80/10/10 by patient: exact counts, every patient once, all images of a patient together") {
  const Dataset d = make_dataset(100);
  const Split s = make_split(d, 7);
  CHECK(s.train_patients.size() == 80);
  CHECK(s.validation_patients.size() == 10);
  CHECK(s.test_patients.size() == 10);
  std::set<std::string> all;
  for (const auto* part : {&s.train_patients, &s.validation_patients, &s.test_patients}) {
    CHECK(std::is_sorted(part->begin(), part->end()));
    for (const std::string& p : *part) CHECK(all.insert(p).second);  // in no other part
  }
  CHECK(all.size() == 100);
  std::map<std::string, std::string> part_of;
  for (const DatasetImage& im : d.images) {
    const std::string w = s.which(im.patient_id);
    auto [it, fresh] = part_of.emplace(im.patient_id, w);
    CHECK(it->second == w);
  }
  CHECK_THROWS_WITH_AS(s.which("P_nobody"), doctest::Contains("P_nobody"), BadInput);
}

TEST_CASE("counts round to nearest (halves up), test takes the rest") {
  // n: (train, validation, test) = (round(0.8 n), round(0.1 n), rest)
  const std::tuple<int, size_t, size_t, size_t> cases[] = {{1, 1, 0, 0},   {3, 2, 0, 1},         {5, 4, 1, 0},
                                                           {7, 6, 1, 0},   {15, 12, 2, 1},       {19, 15, 2, 2},
                                                           {20, 16, 2, 2}, {1001, 801, 100, 100}};
  for (const auto& [n, train, validation, test] : cases) {
    const Split s = make_split(make_dataset(n), 1);
    INFO("n = " << n);
    CHECK(s.train_patients.size() == train);
    CHECK(s.validation_patients.size() == validation);
    CHECK(s.test_patients.size() == test);
  }
  const Split half = make_split(make_dataset(10), 1, 0.5, 0.5);
  CHECK(half.train_patients.size() == 5);
  CHECK(half.validation_patients.size() == 5);
  CHECK(half.test_patients.empty());
  CHECK(make_split(Dataset{}, 1).train_patients.empty());
}

TEST_CASE("deterministic per seed, different seeds differ, adding patients keeps the others' shuffle order") {
  const Dataset d = make_dataset(60);
  const Split a = make_split(d, 42), b = make_split(d, 42), c = make_split(d, 43);
  CHECK(a.train_patients == b.train_patients);
  CHECK(a.validation_patients == b.validation_patients);
  CHECK(a.test_patients == b.test_patients);
  CHECK((a.validation_patients != c.validation_patients || a.test_patients != c.test_patients));
  // The images' order in the dataset does not matter.
  Dataset reversed = d;
  std::reverse(reversed.images.begin(), reversed.images.end());
  CHECK(make_split(reversed, 42).test_patients == a.test_patients);
  // Each patient's key depends on its id only: with 10x the patients, a patient of the small set that went to
  // test (the tail of the shuffle) is still behind every small-set patient that went to train.
  const Split big = make_split(make_dataset(600), 42);
  for (const std::string& p : a.train_patients) CHECK_NOTHROW(big.which(p));
  int moved_to_train = 0;
  for (const std::string& p : a.test_patients) moved_to_train += big.which(p) == "train";
  int train_to_test = 0;
  for (const std::string& p : a.train_patients) train_to_test += big.which(p) == "test";
  CHECK((moved_to_train == 0 || train_to_test == 0));  // order among the old patients is kept
}

TEST_CASE("bad inputs and fractions") {
  Dataset d = make_dataset(5);
  d.images[2].patient_id.clear();
  CHECK_THROWS_WITH_AS(make_split(d, 1), doctest::Contains(d.images[2].id.c_str()), BadInput);
  CHECK_THROWS_AS(make_split(make_dataset(5), 1, 0.9, 0.2), BadConfig);
  CHECK_THROWS_AS(make_split(make_dataset(5), 1, -0.1, 0.2), BadConfig);
}

TEST_CASE("split file: round trip through JSON, atomic write, errors naming the file") {
  const fs::path dir = temp_dir();
  const Split s = make_split(make_dataset(30), 0xFFFFFFFFFFFFFFF1ull);  // a seed beyond 2^63 survives
  const std::string path = (dir / "split.json").string();
  write_split(path, s);
  const Split back = read_split(path);
  CHECK(back.seed == s.seed);
  CHECK(back.train == s.train);
  CHECK(back.validation == s.validation);
  CHECK(back.test == doctest::Approx(0.1));
  CHECK(back.train_patients == s.train_patients);
  CHECK(back.validation_patients == s.validation_patients);
  CHECK(back.test_patients == s.test_patients);
  for (const auto& entry : fs::directory_iterator(dir))  // no temporary left beside it
    CHECK(entry.path().filename() == "split.json");

  const std::string missing = (dir / "missing.json").string();
  CHECK_THROWS_WITH_AS(read_split(missing), doctest::Contains("missing.json"), BadInput);
  const std::pair<const char*, const char*> bad[] = {
      {"{not json", "not valid JSON"},
      {"[]", "JSON object"},
      {R"({"seed": 1, "fractions": {"train": 0.8, "validation": 0.1, "test": 0.1}, "train": ["a"],
          "validation": ["a"], "test": []})",
       "twice"},
      {R"({"seed": 1, "fractions": {"train": 0.8, "validation": 0.1, "test": 0.1}, "train": [],
          "validation": [], "test": [], "extra": 1})",
       "unknown key 'extra'"},
      {R"({"seed": -1, "fractions": {}, "train": [], "validation": [], "test": []})", "seed"},
      {R"({"seed": 1, "fractions": {"train": 0.8, "validation": 0.1, "test": 0.1}, "train": [3],
          "validation": [], "test": []})",
       "bad patient id"},
      {R"({"seed": 1, "fractions": {"train": 0.8, "validation": 0.1, "test": 0.1}, "train": []})", "'validation'"},
  };
  for (const auto& [text, reason] : bad) {
    const fs::path p = dir / "bad.json";
    write_text(p, text);
    INFO(text);
    CHECK_THROWS_WITH_AS(read_split(p.string()), doctest::Contains("bad.json"), BadInput);
    CHECK_THROWS_WITH_AS(read_split(p.string()), doctest::Contains(reason), BadInput);
  }
  fs::remove_all(dir);
}
