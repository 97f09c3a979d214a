// libFuzzer target for our PGM parser (data/image_io.h parse_pgm). Every input must either parse or be rejected
// with massmap::BadInput naming the file. A crash, a sanitizer report, an allocation over -malloc_limit_mb, an
// exception of any other type, or an accepted image that breaks the parser's promises (size within the limits,
// width * height pixels, every pixel below 2^bits; it survives encode_png16 and parses again from an equivalent
// P5 file unchanged) is a finding. Run through tools/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <typeinfo>

#include "base/errors.h"
#include "data/image_io.h"

namespace {

const std::string kName = "fuzz-input";

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "pgm_fuzz: %s\n", what);
  std::abort();
}

void check(bool ok, const char* what) {
  if (!ok) finding(what);
}

void check_accepted(const massmap::data::Image& image) {
  using massmap::data::kMaxImageSide;
  check(image.width >= 1 && image.width <= kMaxImageSide, "accepted a width outside 1..65535");
  check(image.height >= 1 && image.height <= kMaxImageSide, "accepted a height outside 1..65535");
  check(image.pixels.size() == size_t(image.width) * size_t(image.height), "pixel count differs from width * height");
  check(image.bits >= 1 && image.bits <= 16, "bits outside 1..16");
  for (uint16_t v : image.pixels) check(v <= (1u << image.bits) - 1, "a pixel above 2^bits - 1");
  check(image.pixel_spacing_mm == 0, "a PGM with a pixel spacing");

  // The same pixels as a canonical P5 file (maxval 2^bits - 1) parse back unchanged.
  const unsigned maxval = (1u << image.bits) - 1;
  std::string p5 =
      "P5\n" + std::to_string(image.width) + " " + std::to_string(image.height) + "\n" + std::to_string(maxval) + "\n";
  for (uint16_t v : image.pixels) {
    if (maxval > 255) p5 += char(v >> 8);
    p5 += char(v & 0xff);
  }
  const massmap::data::Image again = massmap::data::parse_pgm(kName, p5.data(), p5.size());
  check(again.width == image.width && again.height == image.height, "canonical P5 changed the size");
  check(again.bits == image.bits, "canonical P5 changed the bits");
  check(again.pixels == image.pixels, "canonical P5 changed the pixels");
  // Small images also survive the 16-bit PNG encoder (its output is checked by the tests).
  if (image.pixels.size() <= 4096) check(!massmap::data::encode_png16(image).empty(), "empty PNG");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    massmap::data::Image image;
    try {
      image = massmap::data::parse_pgm(kName, reinterpret_cast<const char*>(data), size);
    } catch (const massmap::BadInput& e) {
      if (std::strstr(e.what(), kName.c_str()) == nullptr) finding("BadInput message does not name the file");
      return 0;  // the expected outcome for most inputs
    }
    check_accepted(image);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pgm_fuzz: unexpected exception %s: %s\n", typeid(e).name(), e.what());
    std::abort();
  } catch (...) {
    finding("unexpected exception of a non-std type");
  }
  return 0;
}
