#pragma once
// Region codes of a mammogram's label map: what each pixel shows. The synthetic generator writes its truth in
// these codes, breast segmentation (data/breast_region.h) estimates them, and patch sampling reads them.
#include <cstdint>

namespace massmap::data {

enum Region : uint8_t { kAir = 0, kBreast = 1, kPectoral = 2, kLabel = 3 };
const char* region_name(uint8_t code);  // "air", "breast", "pectoral", "label", "unknown"

}  // namespace massmap::data
