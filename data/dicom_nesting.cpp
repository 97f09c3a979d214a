// How deeply a DICOM file nests its sequence items, estimated from the raw bytes before DCMTK parses it: DCMTK's
// parser recurses once per level and overflows the stack on files of some ten thousand levels (issue 15).
#include <cstring>
#include <vector>

#include "data/image_io_internal.h"

namespace massmap::data::detail {

namespace {

constexpr uint64_t kUndefined = ~uint64_t(0);

uint32_t read32(const unsigned char* p, bool little) {
  return little ? uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24
                : uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

}  // namespace

// Every item starts with the tag (FFFE,E000) in either byte order; an item of undefined length ends at an item
// delimiter (FFFE,E00D), one of defined length after its length. Each item header found anywhere counts, even
// inside another element's value: a stray pattern can only raise the estimate. Delimiter patterns planted inside
// values can lower it; the count of undefined-length items cannot be lowered, and bounds what they can nest.
DicomNesting dicom_item_nesting(const unsigned char* p, size_t size) {
  static const unsigned char item_le[4] = {0xfe, 0xff, 0x00, 0xe0}, item_be[4] = {0xff, 0xfe, 0xe0, 0x00};
  static const unsigned char end_le[4] = {0xfe, 0xff, 0x0d, 0xe0}, end_be[4] = {0xff, 0xfe, 0xe0, 0x0d};
  std::vector<uint64_t> open;  // end offset of each open item, innermost last; kUndefined until its delimiter
  size_t deepest = 0;
  int64_t undefined = 0;
  for (size_t at = 0; at + 8 <= size; ++at) {
    while (!open.empty() && open.back() != kUndefined && open.back() <= at) open.pop_back();
    if (p[at] != 0xfe && p[at] != 0xff) continue;
    const bool little = p[at] == 0xfe;
    if (std::memcmp(p + at, little ? item_le : item_be, 4) == 0) {
      const uint32_t length = read32(p + at + 4, little);
      open.push_back(length == 0xffffffffu ? kUndefined : at + 8 + length);
      undefined += length == 0xffffffffu;
      deepest = std::max(deepest, open.size());
    } else if (std::memcmp(p + at, little ? end_le : end_be, 4) == 0 && !open.empty() && open.back() == kUndefined) {
      open.pop_back();
    }
  }
  return {int(deepest), undefined};
}

}  // namespace massmap::data::detail
