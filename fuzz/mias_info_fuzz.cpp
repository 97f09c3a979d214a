// libFuzzer target for the mini-MIAS Info.txt parser (data/dataset_internal.h, parse_mias_info). It never throws
// on content: any exception, crash or sanitizer report is a finding, and so is an accepted entry the reader could
// not use (a reference other than mdbNNN, an unknown class, a location with radius < 1). Run through tools/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "data/dataset_internal.h"

namespace {

void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "mias_info_fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    for (const auto& e : massmap::data::detail::parse_mias_info(text, "Info.txt")) {
      check(e.where.rfind("Info.txt line ", 0) == 0, "entry without its place");
      if (!e.error.empty()) continue;
      check(e.ref.size() == 6 && e.ref.compare(0, 3, "mdb") == 0 && e.number >= 1, "accepted a bad reference");
      check(e.tissue == "F" || e.tissue == "G" || e.tissue == "D", "accepted a bad tissue");
      check(e.abnormality != "NORM" || !e.has_location, "a NORM entry with a location");
      check(!e.has_location || (e.radius >= 1 && e.x >= 0 && e.y >= 0), "accepted a bad location");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mias_info_fuzz: %s\n", e.what());
    check(false, "parse_mias_info threw");
  }
  return 0;
}
