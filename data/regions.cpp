#include "data/regions.h"

namespace massmap::data {

const char* region_name(uint8_t code) {
  switch (code) {
    case kAir: return "air";
    case kBreast: return "breast";
    case kPectoral: return "pectoral";
    case kLabel: return "label";
    default: return "unknown";
  }
}

}  // namespace massmap::data
