#pragma once
// The body of the image-reader fuzz targets (png_image_fuzz, jpeg_image_fuzz, tiff_image_fuzz, dicom_image_fuzz):
// read_image on a file holding the input, its first bytes set to the target's format so that every input reaches
// that decoder (read_image takes paths: libtiff and DCMTK read files). Every input must either give an image that
// keeps read_image's promises (sides within the limits, width * height pixels, each below 2^bits except DICOM's
// rescaled values) or be rejected with BadInput naming the file. A crash, a sanitizer report, an allocation over
// -rss_limit_mb, or an exception of another type is a finding. Images are limited to 2^22 pixels here
// (MASSMAP_MAX_IMAGE_PIXELS) so that a small input cannot ask for more memory than the fuzzer allows. Seeds:
// fuzz/make_image_seeds.cpp, from synth's images. Run through tools/fuzz.sh.
#include <unistd.h>

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

namespace image_fuzz {

// Where each input is written: one file per fuzzing process, in memory (/dev/shm) where there is one. On ext4 the
// rewrite of a truncated file waits for the disk at close (auto_da_alloc): 600 runs a second instead of thousands.
inline const std::string& input_path() {
  static const std::string path = [] {
    const char* tmp = std::getenv("TMPDIR");
    const std::string dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : tmp && *tmp ? tmp : "/tmp";
    return dir + "/massmap-image-fuzz-" + std::to_string(getpid());
  }();
  return path;
}

// Called once from LLVMFuzzerInitialize: the pixel limit, and the input file removed at exit.
inline void set_limits() {
  setenv("MASSMAP_MAX_IMAGE_PIXELS", "4194304", 1);
  std::atexit([] { unlink(input_path().c_str()); });
}

[[noreturn]] inline void finding(const char* target, const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", target, what.c_str());
  std::abort();
}

// `magic` is written at `offset` (DICOM: "DICM" after the 128-byte preamble) over the input's own bytes.
inline int read_one(const char* target, const uint8_t* data, size_t size, const char* magic, size_t magic_size,
                    size_t offset, bool dicom) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  if (bytes.size() < offset + magic_size) bytes.resize(offset + magic_size, '\0');
  bytes.replace(offset, magic_size, magic, magic_size);
  const std::string& path = input_path();
  {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() || std::fclose(f) != 0)
      finding(target, "cannot write the input file " + path);
  }
  try {
    massmap::data::Image image;
    try {
      image = massmap::data::read_image(path);
    } catch (const massmap::BadInput& e) {
      if (std::strstr(e.what(), path.c_str()) == nullptr) finding(target, "BadInput does not name the file");
      return 0;  // the expected outcome for most inputs
    }
    if (image.width < 1 || image.height < 1 || image.width > massmap::data::kMaxImageSide ||
        image.height > massmap::data::kMaxImageSide)
      finding(target, "accepted a side outside 1..65535");
    if (int64_t(image.width) * image.height > massmap::data::max_read_pixels())
      finding(target, "accepted more pixels than the limit");
    if (image.pixels.size() != size_t(image.width) * size_t(image.height))
      finding(target, "pixel count differs from width * height");
    if (image.bits < 1 || image.bits > 16) finding(target, "bits outside 1..16");
    if (!dicom)
      for (uint16_t v : image.pixels)
        if (v > (1u << image.bits) - 1) finding(target, "a pixel above 2^bits - 1");
  } catch (const std::exception& e) {
    finding(target, std::string("unexpected exception ") + typeid(e).name() + ": " + e.what());
  } catch (...) {
    finding(target, "unexpected exception of a non-std type");
  }
  return 0;
}

}  // namespace image_fuzz
