// TIFF through libtiff: one grey sample per pixel, 8 or 16 bits, strips or tiles. libtiff's messages go to a
// per-file collector (never to stderr) and become the reason of the BadInput.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "data/image_io_internal.h"

#ifdef MASSMAP_HAVE_TIFF
#include <tiffio.h>

#include <cstdarg>
#include <cstdio>
#endif

namespace massmap::data::detail {

#ifndef MASSMAP_HAVE_TIFF

Image read_tiff(const std::string& path) {
  fail(path, "a TIFF file, but massmap was built without TIFF support (libtiff not found when configuring)");
}

#else

namespace {

struct Messages {
  std::string errors;
  std::string warnings;
};

int collect(TIFF*, void* user, const char* module, const char* format, va_list args, bool error) {
  auto* m = static_cast<Messages*>(user);
  char text[512];
  std::vsnprintf(text, sizeof text, format, args);
  std::string& to = error ? m->errors : m->warnings;
  if (to.size() < 2000) {
    if (!to.empty()) to += "; ";
    if (module && *module) to += std::string(module) + ": ";
    to += text;
  }
  return 1;  // handled: libtiff prints nothing
}
int on_error(TIFF* t, void* user, const char* module, const char* format, va_list args) {
  return collect(t, user, module, format, args, true);
}
int on_warning(TIFF* t, void* user, const char* module, const char* format, va_list args) {
  return collect(t, user, module, format, args, false);
}

struct TiffClose {
  void operator()(TIFF* t) const { TIFFClose(t); }
};
struct OptionsFree {
  void operator()(TIFFOpenOptions* o) const { TIFFOpenOptionsFree(o); }
};

}  // namespace

Image read_tiff(const std::string& path) {
  Messages messages;
  auto libtiff_fail = [&](const std::string& what) {
    fail(path, "TIFF " + what + (messages.errors.empty() ? "" : " (libtiff: " + messages.errors + ")"));
  };
  std::unique_ptr<TIFFOpenOptions, OptionsFree> options(TIFFOpenOptionsAlloc());
  TIFFOpenOptionsSetErrorHandlerExtR(options.get(), on_error, &messages);
  TIFFOpenOptionsSetWarningHandlerExtR(options.get(), on_warning, &messages);
  // No single allocation beyond our image limit (a whole image in one strip is the largest legitimate one).
  TIFFOpenOptionsSetMaxSingleMemAlloc(options.get(), tmsize_t(max_read_pixels() * 2) + 65536);
  // "m": read through read(), not a memory map, so a file truncated while mapped cannot raise SIGBUS.
  std::unique_ptr<TIFF, TiffClose> tif(TIFFOpenExt(path.c_str(), "rm", options.get()));
  if (!tif) libtiff_fail("file cannot be opened (corrupt or truncated header)");
  TIFF* t = tif.get();

  uint32_t width = 0, height = 0;
  uint16_t samples = 1, bits = 1, format = SAMPLEFORMAT_UINT, photometric = 0;
  if (!TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &width) || !TIFFGetField(t, TIFFTAG_IMAGELENGTH, &height))
    libtiff_fail("file has no ImageWidth or ImageLength tag");
  check_size(path, "TIFF", width, height, 2);  // a strip or tile buffer as large as the image, at most
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &samples);
  TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLEFORMAT, &format);
  if (!TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &photometric)) photometric = PHOTOMETRIC_MINISBLACK;
  if (samples != 1)
    fail(path, "TIFF has " + std::to_string(samples) + " samples per pixel; only greyscale (1) is read");
  if (bits != 8 && bits != 16) fail(path, "TIFF has " + std::to_string(bits) + " bits per sample; 8 and 16 are read");
  if (format != SAMPLEFORMAT_UINT)
    fail(path, "TIFF samples are not unsigned integers (SampleFormat " + std::to_string(format) + ")");
  if (photometric != PHOTOMETRIC_MINISBLACK && photometric != PHOTOMETRIC_MINISWHITE)
    fail(path, "TIFF photometric interpretation " + std::to_string(photometric) +
                   " is not greyscale (MinIsBlack or MinIsWhite)");

  Image image;
  image.width = int(width);
  image.height = int(height);
  image.bits = bits;
  image.pixels.resize(size_t(width) * size_t(height));
  const size_t bytes_per = bits / 8;
  // Copies a decoded block of `bw` x `bh` samples (rows of `bw`) to (x0, y0), clipped to the image.
  auto place = [&](const std::vector<unsigned char>& block, uint32_t x0, uint32_t y0, uint32_t bw, uint32_t bh) {
    for (uint32_t y = 0; y < bh && y0 + y < height; ++y) {
      const uint32_t n = std::min(bw, width - x0);
      uint16_t* dst = image.pixels.data() + size_t(y0 + y) * width + x0;
      const unsigned char* src = block.data() + size_t(y) * bw * bytes_per;
      if (bits == 8) {
        for (uint32_t x = 0; x < n; ++x) dst[x] = src[x];
      } else {
        std::memcpy(dst, src, size_t(n) * 2);  // libtiff returns native byte order
      }
    }
  };

  if (TIFFIsTiled(t)) {
    uint32_t tw = 0, th = 0;
    if (!TIFFGetField(t, TIFFTAG_TILEWIDTH, &tw) || !TIFFGetField(t, TIFFTAG_TILELENGTH, &th))
      libtiff_fail("tiled file has no TileWidth or TileLength tag");
    check_size(path, "TIFF tile", tw, th);
    const tmsize_t tile_bytes = TIFFTileSize(t);
    if (tile_bytes != tmsize_t(size_t(tw) * th * bytes_per)) libtiff_fail("tile size is inconsistent");
    std::vector<unsigned char> block(static_cast<size_t>(tile_bytes));
    for (uint32_t y = 0; y < height; y += th) {
      for (uint32_t x = 0; x < width; x += tw) {
        const uint32_t index = TIFFComputeTile(t, x, y, 0, 0);
        if (TIFFReadEncodedTile(t, index, block.data(), tile_bytes) < 0)
          libtiff_fail("tile " + std::to_string(index) + " cannot be decoded (corrupt or truncated)");
        place(block, x, y, tw, th);
      }
    }
  } else {
    uint32_t rows_per_strip = height;
    TIFFGetFieldDefaulted(t, TIFFTAG_ROWSPERSTRIP, &rows_per_strip);
    if (rows_per_strip == 0 || rows_per_strip > height) rows_per_strip = height;
    const size_t strip_bytes = size_t(rows_per_strip) * width * bytes_per;
    std::vector<unsigned char> block(strip_bytes);
    for (uint32_t y = 0; y < height; y += rows_per_strip) {
      const uint32_t index = TIFFComputeStrip(t, y, 0);
      const uint32_t rows = std::min(rows_per_strip, height - y);
      const tmsize_t want = tmsize_t(size_t(rows) * width * bytes_per);
      const tmsize_t got = TIFFReadEncodedStrip(t, index, block.data(), want);
      if (got < want) libtiff_fail("strip " + std::to_string(index) + " cannot be decoded (corrupt or truncated)");
      place(block, 0, y, width, rows);
    }
  }
  if (photometric == PHOTOMETRIC_MINISWHITE) {
    const uint16_t top = uint16_t((1u << bits) - 1);
    for (uint16_t& v : image.pixels) v = uint16_t(top - v);
  }
  return image;
}

#endif

}  // namespace massmap::data::detail
