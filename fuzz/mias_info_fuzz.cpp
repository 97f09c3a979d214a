// libFuzzer target for the mini-MIAS Info.txt parser (data/dataset_internal.h, parse_mias_info). It never throws
// on content: any exception, crash or sanitizer report is a finding, and so is an accepted entry the reader could
// not use (a reference other than mdbNNN, an unknown class, a location with radius < 1) or one whose fields are not
// those of the line it names (x, y and radius must read back as the line's fifth to seventh fields). Run through
// tools/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include "data/dataset_internal.h"
#include "fuzz/row_place.h"

namespace {

void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "mias_info_fuzz: %s\n", what);
  std::abort();
}

// The whitespace-separated fields of line `number` (1-based, '\n'-separated, as the parser counts).
std::vector<std::string> fields_of_line(const std::string& text, long number) {
  std::istringstream in(text);
  std::string line;
  for (long i = 0; i < number && std::getline(in, line);) ++i;
  std::istringstream fields(line);
  std::vector<std::string> t;
  for (std::string f; fields >> f;) t.push_back(f);
  return t;
}

// A whole number as the parser reads it: digits, leading zeros dropped.
std::string canonical(const std::string& digits) {
  const size_t nonzero = digits.find_first_not_of('0');
  return nonzero == std::string::npos ? "0" : digits.substr(nonzero);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    for (const auto& e : massmap::data::detail::parse_mias_info(text, "Info.txt")) {
      check(has_place(e.where, "Info.txt:"), "entry without its place");
      if (!e.error.empty()) continue;
      check(e.ref.size() == 6 && e.ref.compare(0, 3, "mdb") == 0 && e.number >= 1, "accepted a bad reference");
      check(e.tissue == "F" || e.tissue == "G" || e.tissue == "D", "accepted a bad tissue");
      check(e.abnormality != "NORM" || !e.has_location, "a NORM entry with a location");
      check(!e.has_location || e.radius >= 1, "accepted a radius below 1");
      // The entry's fields are those of the line it names: x, y and radius read back as written.
      const std::vector<std::string> t =
          fields_of_line(text, std::strtol(e.where.c_str() + std::strlen("Info.txt:"), nullptr, 10));
      check(t.size() >= 3 && t[1] == e.tissue && t[2] == e.abnormality, "fields differ from the line named");
      if (e.has_location) {
        check(t.size() == 7, "a location from a line without seven fields");
        if (t.size() == 7)
          check(canonical(t[4]) == std::to_string(e.x) && canonical(t[5]) == std::to_string(e.y) &&
                    canonical(t[6]) == std::to_string(e.radius),
                "x, y or radius differ from the line's fields");
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mias_info_fuzz: %s\n", e.what());
    check(false, "parse_mias_info threw");
  }
  return 0;
}
