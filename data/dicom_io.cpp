// DICOM through DCMTK's dcmdata: Part-10 files with one frame of one sample, 8 or 16 bits allocated; compressed
// transfer syntaxes are decoded by whichever of DCMTK's codecs (JPEG, JPEG-LS) were found when configuring.
#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "base/atomic_file.h"
#include "base/errors.h"
#include "data/image_io_internal.h"

#ifdef MASSMAP_HAVE_DCMTK
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/oflog/oflog.h>
#include <pthread.h>

#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#ifdef MASSMAP_HAVE_DCMJPEG
#include <dcmtk/dcmjpeg/djdecode.h>
#endif
#ifdef MASSMAP_HAVE_DCMJPLS
#include <dcmtk/dcmjpls/djdecode.h>
#endif
#endif

namespace massmap::data::detail {

#ifndef MASSMAP_HAVE_DCMTK

Image read_dicom(const std::string& path) {
  fail(path, "a DICOM file, but massmap was built without DICOM support (DCMTK not found when configuring)");
}

#else

namespace {

// Refuses what DCMTK's parser cannot survive, from the raw bytes: nesting deeper than kMaxDicomNesting, more
// undefined-length items than kMaxDicomUndefinedItems, and a deflated dataset, whose nesting the scan cannot see
// (no mammogram is stored deflated). Returns the scan's counts.
DicomNesting check_dicom_structure(const std::string& path) {
  const std::vector<char> bytes = read_file_bytes(path);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::string_view head(bytes.data(), std::min(bytes.size(), size_t(1) << 16));
  if (head.find("1.2.840.10008.1.2.1.99") != std::string_view::npos)
    fail(path, "DICOM file in the deflated transfer syntax (1.2.840.10008.1.2.1.99) is not read");
  const DicomNesting nesting = dicom_item_nesting(p, bytes.size());
  if (nesting.deepest > kMaxDicomNesting)
    fail(path, "DICOM file nests its sequence items " + std::to_string(nesting.deepest) + " levels deep; at most " +
                   std::to_string(kMaxDicomNesting) + " are read (corrupt or hostile file?)");
  if (nesting.undefined_items > kMaxDicomUndefinedItems)
    fail(path, "DICOM file has " + std::to_string(nesting.undefined_items) +
                   " sequence items of undefined length; at most " + std::to_string(kMaxDicomUndefinedItems) +
                   " are read (corrupt or hostile file?)");
  return nesting;
}

void setup_dcmtk() {
  static std::once_flag once;
  std::call_once(once, [] {
    OFLog::configure(OFLogger::OFF_LOG_LEVEL);  // failures reach the user as BadInput, not as log lines
#ifdef MASSMAP_HAVE_DCMJPEG
    DJDecoderRegistration::registerCodecs();
#endif
#ifdef MASSMAP_HAVE_DCMJPLS
    DJLSDecoderRegistration::registerCodecs();
#endif
  });
}

// Runs `body` on a thread whose stack is `bytes` (reserved, touched only as deep as the recursion goes), and
// rethrows what it throws. DCMTK's parser and DcmFileFormat's destructor recurse once per nesting level, about
// 1.3 KB each (8 MB overflowed at 10,000 levels): 128 MiB holds the kMaxDicomUndefinedItems levels a file may
// nest whatever delimiters it plants to fool the depth estimate, with room for AddressSanitizer's larger frames.
Image on_large_stack(size_t bytes, const std::function<Image()>& body) {
  struct Job {
    const std::function<Image()>* body;
    Image image;
    std::exception_ptr error;
  } job{&body, {}, nullptr};
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, bytes);
  pthread_t thread;
  const int created = pthread_create(
      &thread, &attr,
      [](void* p) -> void* {
        Job& j = *static_cast<Job*>(p);
        try {
          j.image = (*j.body)();
        } catch (...) {
          j.error = std::current_exception();
        }
        return nullptr;
      },
      &job);
  pthread_attr_destroy(&attr);
  if (created != 0)
    throw ResourceError("cannot start the DICOM parser's thread (" + std::to_string(bytes >> 20) +
                        " MiB of stack): " + std::strerror(created));
  pthread_join(thread, nullptr);
  if (job.error) std::rethrow_exception(job.error);
  return std::move(job.image);
}

Image decode_dicom(const std::string& path);

}  // namespace

Image read_dicom(const std::string& path) {
  setup_dcmtk();
  const DicomNesting nesting = check_dicom_structure(path);
  // Few undefined-length items bound the recursion to a few hundred KB, which any thread's stack holds.
  if (nesting.undefined_items <= kMaxDicomNesting) return decode_dicom(path);
  return on_large_stack(size_t(128) << 20, [&] { return decode_dicom(path); });
}

namespace {

Image decode_dicom(const std::string& path) {
  DcmFileFormat file;
  OFCondition status = file.loadFile(path.c_str());
  if (status.bad()) fail(path, std::string("DICOM file cannot be parsed (") + status.text() + ")");
  DcmDataset* ds = file.getDataset();

  Uint16 rows = 0, columns = 0, allocated = 0, stored = 0, representation = 0, samples = 1;
  if (ds->findAndGetUint16(DCM_Rows, rows).bad() || ds->findAndGetUint16(DCM_Columns, columns).bad())
    fail(path, "DICOM file has no Rows or Columns (not an image?)");
  check_size(path, "DICOM", columns, rows, 4);  // DCMTK's stored samples, and a decompressed copy
  if (!ds->tagExistsWithValue(DCM_PixelData)) fail(path, "DICOM file has no pixel data");
  if (ds->findAndGetUint16(DCM_BitsAllocated, allocated).bad()) fail(path, "DICOM file has no BitsAllocated");
  if (ds->findAndGetUint16(DCM_BitsStored, stored).bad()) stored = allocated;
  ds->findAndGetUint16(DCM_PixelRepresentation, representation);
  ds->findAndGetUint16(DCM_SamplesPerPixel, samples);
  if (allocated != 8 && allocated != 16)
    fail(path, "DICOM BitsAllocated is " + std::to_string(allocated) + "; 8 and 16 are read");
  if (stored == 0 || stored > allocated)
    fail(path, "DICOM BitsStored is " + std::to_string(stored) + " with BitsAllocated " + std::to_string(allocated));
  if (samples != 1)
    fail(path, "DICOM has " + std::to_string(samples) + " samples per pixel; only greyscale (1) is read");
  OFString photometric;
  ds->findAndGetOFString(DCM_PhotometricInterpretation, photometric);
  const bool inverted = photometric == "MONOCHROME1";
  if (!inverted && photometric != "MONOCHROME2")
    fail(path, "DICOM PhotometricInterpretation is '" + std::string(photometric.c_str()) +
                   "'; MONOCHROME1 and MONOCHROME2 are read");
  Sint32 frames = 1;
  if (ds->findAndGetSint32(DCM_NumberOfFrames, frames).good() && frames != 1)
    fail(path, "DICOM file has " + std::to_string(frames) + " frames; single-frame images are read");
  Float64 slope = 1, intercept = 0;
  if (ds->findAndGetFloat64(DCM_RescaleSlope, slope).bad()) slope = 1;
  if (ds->findAndGetFloat64(DCM_RescaleIntercept, intercept).bad()) intercept = 0;
  if (!std::isfinite(slope) || !std::isfinite(intercept) || slope == 0)
    fail(path, "DICOM rescale slope " + std::to_string(slope) + " / intercept " + std::to_string(intercept) +
                   " is not usable");

  Image image;
  image.width = columns;
  image.height = rows;
  image.bits = stored;
  Float64 spacing = 0;
  if (ds->findAndGetFloat64(DCM_PixelSpacing, spacing, 0).good() && spacing > 0 && std::isfinite(spacing))
    image.pixel_spacing_mm = spacing;
  else if (ds->findAndGetFloat64(DCM_ImagerPixelSpacing, spacing, 0).good() && spacing > 0 && std::isfinite(spacing))
    image.pixel_spacing_mm = spacing;

  // Decompress (a no-op for uncompressed files) into host-order samples.
  const E_TransferSyntax syntax = ds->getOriginalXfer();
  status = ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
  if (status.bad() || !ds->canWriteXfer(EXS_LittleEndianExplicit))
    fail(path, std::string("DICOM pixel data in transfer syntax '") + DcmXfer(syntax).getXferName() +
                   "' cannot be decoded (no DCMTK codec for it in this build, or corrupt data)");
  DcmElement* element = nullptr;
  if (ds->findAndGetElement(DCM_PixelData, element).bad() || element == nullptr)
    fail(path, "DICOM file has no pixel data");
  const size_t count = size_t(rows) * size_t(columns);
  const size_t need = count * (allocated / 8);
  if (element->getLength() < need)
    fail(path, "DICOM pixel data is truncated: " + std::to_string(need) + " bytes expected, " +
                   std::to_string(element->getLength()) + " present");

  // The stored values' range, for MONOCHROME1's mirror and the rescale's clamp.
  const bool is_signed = representation == 1;
  const double lo = is_signed ? -std::ldexp(1.0, stored - 1) : 0.0;
  const double hi = is_signed ? std::ldexp(1.0, stored - 1) - 1 : std::ldexp(1.0, stored) - 1;
  const double r_lo = std::min(lo * slope + intercept, hi * slope + intercept);
  const double r_hi = std::max(lo * slope + intercept, hi * slope + intercept);
  const uint32_t mask = stored >= 32 ? 0xffffffffu : (1u << stored) - 1;
  auto convert = [&](uint32_t raw) {
    raw &= mask;  // bits above BitsStored (overlays, garbage) are not part of the value
    double v = is_signed && (raw >> (stored - 1)) ? double(int64_t(raw) - (int64_t(1) << stored)) : double(raw);
    v = v * slope + intercept;
    if (inverted) v = r_lo + r_hi - v;
    return uint16_t(std::lround(std::min(65535.0, std::max(0.0, v))));
  };
  image.pixels.resize(count);
  if (allocated == 16) {
    Uint16* data = nullptr;
    if (element->getUint16Array(data).bad() || data == nullptr) fail(path, "DICOM 16-bit pixel data cannot be read");
    for (size_t i = 0; i < count; ++i) image.pixels[i] = convert(data[i]);
  } else {
    Uint8* data = nullptr;
    if (element->getUint8Array(data).bad() || data == nullptr) fail(path, "DICOM 8-bit pixel data cannot be read");
    for (size_t i = 0; i < count; ++i) image.pixels[i] = convert(data[i]);
  }
  return image;
}

}  // namespace

#endif

}  // namespace massmap::data::detail
