#pragma once
// Reading and writing greyscale images: mammograms in, 16-bit PNG out, 8-bit PNG overlays out.
//
// read_image() recognises the format by its first bytes, never by the file name:
//   PNG, JPEG (stb_image)  8 and 16 bits (16-bit PNG kept at 16 bits); colour is converted to grey by stb's rule
//                          grey = (77 R + 150 G + 29 B) >> 8 (BT.601 luma in 8-bit fixed point), alpha dropped;
//                          palette and 1/2/4-bit grey PNGs come out as 8-bit grey
//   PGM (our own parser)   P5 (binary) and P2 (text), comments, maxval 1..65535 (> 255: 16-bit big-endian samples)
//   TIFF (libtiff)         one grey sample per pixel (MinIsBlack, or MinIsWhite inverted), 8 or 16 bits, unsigned,
//                          strips or tiles, any compression libtiff decodes; the first directory (page)
//   DICOM (DCMTK)          Part-10 files ("DICM" after the 128-byte preamble), one frame, one sample, 8 or 16 bits
//                          allocated; uncompressed, and JPEG / JPEG-LS (lossless included) where DCMTK's decoders are
//                          built in; see Image for how rescale and MONOCHROME1 are applied; sequence items nested
//                          at most 100 deep and at most 10,000 of undefined length (DCMTK's parser recurses per
//                          level; it runs on a 128 MiB stack), no deflated transfer syntax
// Every reader checks the dimensions itself before a library allocates anything: each side 1..65535, at most
// max_read_pixels() pixels (2^27 = 134,217,728 unless MASSMAP_MAX_IMAGE_PIXELS says otherwise, up to 2^29), and
// no more decoding memory than the process may use: a few bytes per pixel by format (PNG: the decoded samples,
// up to 8 bytes for 16-bit RGBA, plus 4; a 400 KB file can declare gigabytes). A missing, empty, truncated, corrupt,
// absurd or unsupported file throws BadInput whose message names the file and the reason; no input crashes the reader.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace massmap::data {

constexpr int kMaxImageSide = 65535;
constexpr int64_t kMaxImageBytes = int64_t(1) << 30;  // of 16-bit pixels: 2^29 pixels, the most any image may have
constexpr int64_t kDefaultMaxReadPixels = int64_t(1) << 27;

// The most pixels read_image accepts: MASSMAP_MAX_IMAGE_PIXELS (a whole number in 1..2^29) or 2^27. A value that
// is not one is a BadConfig naming the variable.
int64_t max_read_pixels();

struct Image {
  int width = 0;
  int height = 0;
  // Significant bits per sample: 8 for 8-bit files; 16 for 16-bit PNG and TIFF; for PGM the bits of maxval
  // (maxval 4095 -> 12); for DICOM BitsStored. Every pixel is <= 2^bits - 1, except DICOM after a rescale (below).
  int bits = 0;
  // Row-major grey values, width * height of them, top row first, one value per pixel as stored in the file (no
  // scaling of 8-bit data to 16 bits). DICOM: stored value * RescaleSlope + RescaleIntercept, and for MONOCHROME1
  // mirrored within the range the stored bits can express (so that brighter is always denser), rounded and
  // clamped to 0..65535.
  std::vector<uint16_t> pixels;
  // Millimetres per pixel (row spacing) from DICOM's PixelSpacing, else ImagerPixelSpacing; 0 when unknown (every
  // other format).
  double pixel_spacing_mm = 0;

  uint16_t at(int x, int y) const { return pixels[size_t(y) * size_t(width) + size_t(x)]; }
};

// Reads the image at `path` (format from its content, see above).
Image read_image(const std::string& path);

// Parses a PGM file (P5 or P2) held in memory; `name` is the file name used in error messages. The fuzz target's
// entry point.
Image parse_pgm(const std::string& name, const char* data, size_t size);

// Encodes `image` as a 16-bit greyscale PNG (every pixel kept exactly, whatever `bits` says), with a zlib stream and
// CRCs of our own writer. BadInput when the image's size and pixel count disagree or are out of range.
std::string encode_png16(const Image& image);
// Writes encode_png16(image) to `path` atomically (a temporary file renamed over it).
void write_png16(const std::string& path, const Image& image);

// Writes an 8-bit PNG atomically: `channels` 1 (grey), 3 (RGB) or 4 (RGBA), `pixels` row-major interleaved,
// width * height * channels bytes. For overlays and heatmaps.
void write_png8(const std::string& path, int width, int height, int channels, const std::vector<uint8_t>& pixels);
// The same PNG as bytes in memory (a report embeds it as a data URI); `what` names it in errors.
std::string encode_png8(int width, int height, int channels, const std::vector<uint8_t>& pixels,
                        const std::string& what);
// Writes `image` (bits <= 8, every pixel <= 255) as an 8-bit grey PNG atomically.
void write_png8(const std::string& path, const Image& image);

}  // namespace massmap::data
