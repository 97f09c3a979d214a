// libFuzzer target: read_image on DICOM input (fuzz/read_image_fuzz.h says what counts as a finding).
#include "fuzz/read_image_fuzz.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  image_fuzz::set_limits();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return image_fuzz::read_one("dicom_image_fuzz", data, size, "DICM", 4, 128, true);
}
