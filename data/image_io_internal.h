#pragma once
// Shared by the format readers in data/*_io.cpp; not part of the data library's interface.
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/image_io.h"

namespace massmap::data::detail {

// BadInput "cannot read image '<path>': <reason>".
[[noreturn]] void fail(const std::string& path, const std::string& reason);
// Rejects sides outside 1..kMaxImageSide and more than kMaxImageBytes of 16-bit pixels, naming `what` (e.g. "PNG").
void check_size(const std::string& path, const char* what, int64_t width, int64_t height);

// Items nested deeper than this make a DICOM file bad input: real images nest a few levels, and DCMTK's parser
// recurses per level (about 1 KB of stack each) with no limit of its own.
constexpr int kMaxDicomNesting = 100;
// The deepest nesting of sequence items in the DICOM bytes [p, p + size), an upper estimate (dicom_nesting.cpp).
int dicom_item_nesting(const unsigned char* p, size_t size);

Image read_tiff(const std::string& path);   // tiff_io.cpp
Image read_dicom(const std::string& path);  // dicom_io.cpp

}  // namespace massmap::data::detail
