#pragma once
// Shared by the format readers in data/*_io.cpp; not part of the data library's interface.
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/image_io.h"

namespace massmap::data::detail {

// BadInput "cannot read image '<path>': <reason>".
[[noreturn]] void fail(const std::string& path, const std::string& reason);
// Rejects sides outside 1..kMaxImageSide and more than max_read_pixels() pixels, naming `what` (e.g. "PNG"), and
// (ResourceError) a decode that needs more memory than the process may use: the image's 16-bit pixels twice (a
// converted copy and ours) plus `decoded_bytes_per_pixel` of the library's own buffers.
void check_size(const std::string& path, const char* what, int64_t width, int64_t height,
                int decoded_bytes_per_pixel = 0);

// Items nested deeper than this make a DICOM file bad input: real images nest a few levels, and DCMTK's parser
// recurses per level (over 1 KB of stack each) with no limit of its own.
constexpr int kMaxDicomNesting = 100;
// More items of undefined length than this make a DICOM file bad input: their nesting, unlike the depth estimate,
// cannot be understated by delimiters planted inside values, and the parser's stack holds this many levels.
constexpr int64_t kMaxDicomUndefinedItems = 10000;
struct DicomNesting {
  int deepest = 0;              // the deepest nesting of sequence items, an estimate from the bytes
  int64_t undefined_items = 0;  // item headers of undefined length: a bound on how deep they can nest
};
// Both from the DICOM bytes [p, p + size) (dicom_nesting.cpp).
DicomNesting dicom_item_nesting(const unsigned char* p, size_t size);

Image read_tiff(const std::string& path);   // tiff_io.cpp
Image read_dicom(const std::string& path);  // dicom_io.cpp

}  // namespace massmap::data::detail
