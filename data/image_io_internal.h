#pragma once
// Shared by the format readers in data/*_io.cpp; not part of the data library's interface.
#include <cstdint>
#include <string>

#include "data/image_io.h"

namespace massmap::data::detail {

// BadInput "cannot read image '<path>': <reason>".
[[noreturn]] void fail(const std::string& path, const std::string& reason);
// Rejects sides outside 1..kMaxImageSide and more than kMaxImageBytes of 16-bit pixels, naming `what` (e.g. "PNG").
void check_size(const std::string& path, const char* what, int64_t width, int64_t height);

Image read_tiff(const std::string& path);   // tiff_io.cpp
Image read_dicom(const std::string& path);  // dicom_io.cpp

}  // namespace massmap::data::detail
