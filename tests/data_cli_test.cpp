// massmap data check end to end: exit codes (0 ok, 2 usage, 3 bad input), the summary it prints, --skip-bad, and
// a CBIS-DDSM-shaped set written by massmap synth --cbis-csv read back with the counts synth reported.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "data/image_io.h"
#include "data/pgm_write.h"
#include "tests/support/cli.h"

using testing_support::contains;
using testing_support::run_massmap;
using testing_support::TempDir;
namespace fs = std::filesystem;

namespace {

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// mini-MIAS: three 32 x 24 images, two lesions and a normal image.
void make_mias(const TempDir& d) {
  const std::vector<uint8_t> px(32 * 24, 9);  // (24, 32)
  for (const char* name : {"mdb001.pgm", "mdb002.pgm", "mdb003.pgm"}) massmap::data::write_pgm8(d / name, 32, 24, px);
  write_text(d / "Info.txt", "mdb001 G CIRC B 10 5 3\nmdb002 G NORM\nmdb003 F CALC M 4 4 2\n");
}

}  // namespace

TEST_CASE("data check: a good mini-MIAS set prints its summary and exits 0") {
  TempDir d;
  make_mias(d);
  const auto r = run_massmap("data check --format mini-mias --root " + d.path.string());
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK(contains(r.output, "dataset: mini-mias at " + d.path.string()));
  CHECK(contains(r.output, "images: 3\n"));
  CHECK(contains(r.output, "patients: 2\n"));
  CHECK(contains(r.output, "lesions: 2 (calcification 1, mass 1)\n"));
  CHECK(contains(r.output, "images without lesions: 1\n"));
  CHECK(contains(r.output, "decoded: 3 of 3 images, 0 lesion masks\n"));
  CHECK(contains(r.output, "data check: 3/3"));  // the progress line (not a terminal: plain lines)
}

TEST_CASE("data check: a bad row exits 3 naming it; --skip-bad reports it and exits 0") {
  TempDir d;
  make_mias(d);
  write_text(d / "Info.txt", "mdb001 G CIRC B 10 5 3\nmdb002 G NORM\nmdb004 F CALC M 4 4 2\n");
  auto r = run_massmap("data check --format mini-mias --root " + d.path.string());
  CHECK(r.code == 3);
  CHECK(contains(r.output, "Info.txt:3: file not found: image mdb004"));
  r = run_massmap("data check --format mini-mias --root " + d.path.string() + " --skip-bad");
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK(contains(r.output, "images: 2\n"));
  CHECK(contains(r.output, "skipped: 1\n  file not found: 1\n    Info.txt:3: file not found"));
}

TEST_CASE("data check: an image that does not decode exits 3; --skip-bad exits 0 while one image is usable") {
  TempDir d;
  make_mias(d);
  // A valid PGM header over too few pixels: the reader's header check passes, decoding fails.
  write_text(d / "mdb002.pgm", "P5\n32 24\n255\nshort");
  auto r = run_massmap("data check --format mini-mias --root " + d.path.string());
  CHECK(r.code == 3);
  CHECK(contains(r.output, "image mdb002: cannot read image"));
  r = run_massmap("data check --format mini-mias --root " + d.path.string() + " --skip-bad");
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK(contains(r.output, "decoded: 2 of 3 images"));
  CHECK(contains(r.output, "  undecodable: 1\n    image mdb002: undecodable: cannot read image"));
  for (const char* name : {"mdb001.pgm", "mdb003.pgm"}) write_text(d / name, "P5\n32 24\n255\nx");
  r = run_massmap("data check --format mini-mias --root " + d.path.string() + " --skip-bad");
  CHECK(r.code == 3);
  CHECK(contains(r.output, "no usable image"));
}

TEST_CASE("data check: usage errors exit 2, --help exits 0") {
  CHECK(run_massmap("data check --help").code == 0);
  CHECK(contains(run_massmap("data check --help").output, "--skip-bad"));
  CHECK(run_massmap("data --help").code == 0);
  CHECK(run_massmap("data").code == 2);
  CHECK(run_massmap("data verify --format manifest --root .").code == 2);
  CHECK(run_massmap("data check --root .").code == 2);
  CHECK(run_massmap("data check --format dicomdir --root .").code == 2);
  CHECK(run_massmap("data check --format mini-mias").code == 2);
  CHECK(run_massmap("data check --format mini-mias --root . --split test").code == 2);
  CHECK(run_massmap("data check --format cbis-ddsm --root . --split val").code == 2);
  CHECK(run_massmap("data check --format mini-mias --root . --bogus 1").code == 2);
  const auto r = run_massmap("data check --format cbis-ddsm --root /nonexistent-massmap-dir");
  CHECK(r.code == 3);
  CHECK(contains(r.output, "no CBIS-DDSM case CSV"));
}

TEST_CASE("data check: massmap synth --cbis-csv read back as CBIS-DDSM and as a manifest") {
  TempDir d;
  const auto s =
      run_massmap("synth --out " + d.path.string() + " --images 8 --seed 3 --cbis-csv --size 200x256 --mass-max-mm 12");
  REQUIRE(s.code == 0);
  // synth's own count: "N images (K without masses), M masses, ..."
  long images = 0, normals = 0, masses = 0;
  REQUIRE(std::sscanf(s.output.substr(s.output.rfind('\n', s.output.size() - 2) + 1).c_str(),
                      "%ld images (%ld without masses), %ld masses", &images, &normals, &masses) == 3);
  REQUIRE(masses > 0);
  auto r =
      run_massmap("data check --format cbis-ddsm --root " + d.path.string() + " --csv mass_case_description_synth.csv");
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK(contains(r.output, "images: " + std::to_string(images - normals) + "\n"));
  CHECK(contains(r.output, "lesions: " + std::to_string(masses) + " (mass " + std::to_string(masses) + ")\n"));
  CHECK(contains(r.output, std::to_string(masses) + " lesion masks\n"));
  CHECK(contains(r.output, "CBIS-DDSM has no normal images"));
  CHECK(contains(r.output, "official split") == false);  // synth's CSV name says neither train nor test
  {  // --csv repeated: both files are read (a header-only second CSV adds nothing; a missing one is named)
    const std::string csv = d / "mass_case_description_synth.csv";
    std::ifstream in(csv);
    std::string header;
    std::getline(in, header);
    std::ofstream(d / "extra.csv") << header << "\n";
    const auto both = run_massmap("data check --format cbis-ddsm --root " + d.path.string() +
                                  " --csv mass_case_description_synth.csv --csv extra.csv");
    CHECK(both.code == 0);
    CHECK(contains(both.output, "lesions: " + std::to_string(masses) + " (mass " + std::to_string(masses) + ")\n"));
    const auto missing = run_massmap("data check --format cbis-ddsm --root " + d.path.string() +
                                     " --csv mass_case_description_synth.csv --csv nowhere.csv");
    CHECK(missing.code == 3);
    CHECK(contains(missing.output, "nowhere.csv"));
  }
  r = run_massmap("data check --format manifest --root " + d.path.string());
  CHECK(r.code == 0);
  CHECK(contains(r.output, "images: " + std::to_string(images) + "\n"));
  CHECK(contains(r.output, "images without lesions: "));
}

TEST_CASE("data check: every lesion mask is decoded and size-checked, boxes or not") {
  TempDir d;
  const auto s = run_massmap("synth --out " + d.path.string() + " --images 4 --seed 5 --size 200x256 --mass-max-mm 12");
  REQUIRE(s.code == 0);
  long images = 0, normals = 0, masses = 0, clusters = 0;
  REQUIRE(std::sscanf(s.output.substr(s.output.rfind('\n', s.output.size() - 2) + 1).c_str(),
                      "%ld images (%ld without masses), %ld masses, %ld calcification clusters", &images, &normals,
                      &masses, &clusters) == 4);
  REQUIRE(masses + clusters > 0);
  auto r = run_massmap("data check --format manifest --root " + d.path.string());
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK(contains(r.output, "decoded: " + std::to_string(images) + " of " + std::to_string(images) + " images, " +
                               std::to_string(masses + clusters) + " lesion masks\n"));
  // Every synth lesion has a box and a mask; a mask of the wrong size must still be found.
  std::string mask;
  for (const auto& e : fs::directory_iterator(d / "masks"))
    if (mask.empty() || e.path().string() < mask) mask = e.path().string();
  REQUIRE(!mask.empty());
  massmap::data::write_png8(mask, 10, 10, 1, std::vector<uint8_t>(100, 255));
  r = run_massmap("data check --format manifest --root " + d.path.string());
  CHECK(r.code == 3);
  CHECK(contains(r.output, "lesion mask '" + mask + "' is 10 x 10 pixels"));
  r = run_massmap("data check --format manifest --root " + d.path.string() + " --skip-bad");
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK(contains(r.output, "decoded: " + std::to_string(images - 1) + " of " + std::to_string(images) + " images"));
  CHECK(contains(r.output, "  bad lesion mask: 1\n"));
  CHECK(contains(r.output, "lesion mask '" + mask + "' is 10 x 10 pixels"));
}

TEST_CASE("data split: an empty dataset exits 3; an empty part is warned about") {
  TempDir d;
  write_text(d / "Info.txt", "REFNUM BG CLASS SEVERITY X Y RADIUS\n");
  auto r = run_massmap("data split --format mini-mias --root " + d.path.string() + " --out " + (d / "split.json"));
  INFO(r.output);
  CHECK(r.code == 3);
  CHECK(contains(r.output, "no image"));
  CHECK_FALSE(fs::exists(d / "split.json"));
  make_mias(d);  // two patients: 2 for training, none for validation or test
  r = run_massmap("data split --format mini-mias --root " + d.path.string() + " --out " + (d / "split.json"));
  INFO(r.output);
  CHECK(r.code == 0);
  CHECK(fs::exists(d / "split.json"));
  CHECK(contains(r.output, "warning: the validation part is empty"));
  CHECK(contains(r.output, "warning: the test part is empty"));
  CHECK_FALSE(contains(r.output, "warning: the train part"));
}
