// Hostile input through the binary (issue 15): files and options an adversarial user might pass must end in the
// README's exit codes with a message naming the file or option, never in a crash or "internal error".
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "tests/support/cli.h"

using testing_support::contains;
using testing_support::run_massmap;
using testing_support::TempDir;
namespace fs = std::filesystem;

namespace {

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

void put_le(std::string& out, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += char(v >> (8 * i));
}

// A Part-10 DICOM file (explicit VR little endian) whose dataset is `levels` nested sequences of undefined length,
// each holding one item of undefined length, never closed: the shape that overflowed DCMTK's recursive parser.
std::string nested_dicom(int levels) {
  std::string meta;
  const std::string syntax = std::string("1.2.840.10008.1.2.1") + '\0';
  put_le(meta, 0x0002, 2), put_le(meta, 0x0010, 2), meta += "UI", put_le(meta, uint32_t(syntax.size()), 2);
  meta += syntax;
  std::string file = std::string(128, '\0') + "DICM";
  put_le(file, 0x0002, 2), put_le(file, 0x0000, 2), file += "UL", put_le(file, 4, 2), put_le(file, meta.size(), 4);
  file += meta;
  for (int i = 0; i < levels; ++i) {
    put_le(file, 0x0008, 2), put_le(file, 0x1140, 2), file += "SQ", put_le(file, 0, 2), put_le(file, ~0u, 4);
    put_le(file, 0xfffe, 2), put_le(file, 0xe000, 2), put_le(file, ~0u, 4);
  }
  return file;
}

// A manifest dataset of one image file, for data check.
std::string manifest_root(const TempDir& d, const std::string& image_name) {
  write_text(d / "manifest.csv", "image,patient_id,laterality,view\n" + image_name + ",P1,L,CC\n");
  return d.path.string();
}

}  // namespace

TEST_CASE("case 1: a DICOM file of 20,000 nested sequences is bad input naming it, not a stack overflow") {
  TempDir d;
  write_text(d / "deep.dcm", nested_dicom(20000));
  for (const char* skip : {"", " --skip-bad"}) {
    const auto r = run_massmap("data check --format manifest --root " + manifest_root(d, "deep.dcm") + skip);
    INFO(r.output);
    CHECK(r.code == 3);
    CHECK(contains(r.output, "deep.dcm"));
    CHECK(contains(r.output, "nests its sequence items 20000 levels deep"));
  }
  // 50 levels pass the nesting limit and reach DCMTK, which reports the missing delimiters.
  write_text(d / "deep.dcm", nested_dicom(50));
  const auto r = run_massmap("data check --format manifest --root " + manifest_root(d, "deep.dcm"));
  CHECK(r.code == 3);
  CHECK(contains(r.output, "DICOM file cannot be parsed"));
}
