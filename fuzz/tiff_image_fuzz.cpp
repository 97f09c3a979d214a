// libFuzzer target: read_image on TIFF input (fuzz/read_image_fuzz.h says what counts as a finding).
#include "fuzz/read_image_fuzz.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  image_fuzz::set_limits();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Both byte orders: a big-endian input keeps its "MM\0*".
  const bool big = size >= 4 && std::memcmp(data, "MM\0*", 4) == 0;
  return image_fuzz::read_one("tiff_image_fuzz", data, size, big ? "MM\0*" : "II*\0", 4, 0, false);
}
