// Seed corpora for the image-reader fuzz targets, from synth's own images: two 64 x 64 synth-v1 mammograms (one
// with a mass) written as every variant read_image knows, each in its target's folder:
//   OUT/png_image_fuzz/    16-bit grey (our encoder), 8-bit grey, RGB and RGBA (stb's writer)
//   OUT/jpeg_image_fuzz/   8-bit grey and RGB baseline JPEG (stb's writer)
//   OUT/tiff_image_fuzz/   8 and 16 bits, strips and tiles, none / LZW / deflate, MinIsWhite (libtiff)
//   OUT/dicom_image_fuzz/  explicit and implicit little endian, big endian, MONOCHROME1 with rescale, a nested
//                          sequence, JPEG-LS and JPEG lossless where DCMTK's encoders are built (DCMTK)
// usage: make_image_seeds OUT_DIR      (run by tools/fuzz.sh; files are overwritten)
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/image_io.h"
#include "data/synth.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

#ifdef MASSMAP_HAVE_TIFF
#include <tiffio.h>
#endif
#ifdef MASSMAP_HAVE_DCMTK
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>
#ifdef MASSMAP_HAVE_DCMJPLS
#include <dcmtk/dcmjpls/djencode.h>
#endif
#ifdef MASSMAP_HAVE_DCMJPEG
#include <dcmtk/dcmjpeg/djencode.h>
#endif
#endif

namespace fs = std::filesystem;
using massmap::data::Image;

namespace {

std::string out_dir;

std::string path_in(const char* target, const std::string& name) {
  fs::create_directories(fs::path(out_dir) / target);
  return (fs::path(out_dir) / target / name).string();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

void append(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), size_t(size));
}

// The image's 12-bit values as 8 bits, repeated over `channels`.
std::vector<uint8_t> bytes8(const Image& image, int channels) {
  std::vector<uint8_t> out;
  for (uint16_t v : image.pixels)
    for (int c = 0; c < channels; ++c) out.push_back(uint8_t((v >> 4) ^ (c * 40)));
  return out;
}

void png_seeds(const Image& image, const std::string& stem) {
  write_bytes(path_in("png_image_fuzz", stem + "-16.png"), massmap::data::encode_png16(image));
  for (int channels : {1, 3, 4}) {
    std::string png;
    const std::vector<uint8_t> px = bytes8(image, channels);
    stbi_write_png_to_func(append, &png, image.width, image.height, channels, px.data(), image.width * channels);
    write_bytes(path_in("png_image_fuzz", stem + "-8x" + std::to_string(channels) + ".png"), png);
  }
}

void jpeg_seeds(const Image& image, const std::string& stem) {
  for (int channels : {1, 3}) {
    std::string jpeg;
    const std::vector<uint8_t> px = bytes8(image, channels);
    stbi_write_jpg_to_func(append, &jpeg, image.width, image.height, channels, px.data(), 80);
    write_bytes(path_in("jpeg_image_fuzz", stem + "-" + std::to_string(channels) + ".jpg"), jpeg);
  }
}

#ifdef MASSMAP_HAVE_TIFF
void tiff_seed(const Image& image, const std::string& name, int bits, int tile, uint16_t compression,
               uint16_t photometric) {
  const std::string path = path_in("tiff_image_fuzz", name);
  TIFF* t = TIFFOpen(path.c_str(), "w");
  if (!t) return;
  TIFFSetField(t, TIFFTAG_IMAGEWIDTH, uint32_t(image.width));
  TIFFSetField(t, TIFFTAG_IMAGELENGTH, uint32_t(image.height));
  TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, uint16_t(1));
  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, uint16_t(bits));
  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, photometric);
  TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(t, TIFFTAG_COMPRESSION, compression);
  const size_t bpp = size_t(bits / 8);
  auto sample = [&](int x, int y, unsigned char* out) {
    const uint16_t v = bits == 8 ? uint16_t(image.at(x, y) >> 4) : image.at(x, y);
    if (bits == 8)
      out[0] = uint8_t(v);
    else
      std::memcpy(out, &v, 2);
  };
  if (tile > 0) {
    TIFFSetField(t, TIFFTAG_TILEWIDTH, uint32_t(tile));
    TIFFSetField(t, TIFFTAG_TILELENGTH, uint32_t(tile));
    std::vector<unsigned char> buf(size_t(tile) * size_t(tile) * bpp);
    for (int y0 = 0; y0 < image.height; y0 += tile)
      for (int x0 = 0; x0 < image.width; x0 += tile) {
        for (int y = 0; y < tile; ++y)
          for (int x = 0; x < tile; ++x) sample(x0 + x, y0 + y, &buf[(size_t(y) * size_t(tile) + size_t(x)) * bpp]);
        TIFFWriteTile(t, buf.data(), uint32_t(x0), uint32_t(y0), 0, 0);
      }
  } else {
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, uint32_t(8));
    std::vector<unsigned char> row(size_t(image.width) * bpp);
    for (int y = 0; y < image.height; ++y) {
      for (int x = 0; x < image.width; ++x) sample(x, y, &row[size_t(x) * bpp]);
      TIFFWriteScanline(t, row.data(), uint32_t(y), 0);
    }
  }
  TIFFClose(t);
}

void tiff_seeds(const Image& image, const std::string& stem) {
  tiff_seed(image, stem + "-16-strips.tif", 16, 0, COMPRESSION_NONE, PHOTOMETRIC_MINISBLACK);
  tiff_seed(image, stem + "-8-tiles.tif", 8, 16, COMPRESSION_NONE, PHOTOMETRIC_MINISBLACK);
  tiff_seed(image, stem + "-16-lzw.tif", 16, 0, COMPRESSION_LZW, PHOTOMETRIC_MINISBLACK);
  tiff_seed(image, stem + "-16-deflate-tiles.tif", 16, 32, COMPRESSION_ADOBE_DEFLATE, PHOTOMETRIC_MINISBLACK);
  tiff_seed(image, stem + "-8-white.tif", 8, 0, COMPRESSION_NONE, PHOTOMETRIC_MINISWHITE);
}
#endif

#ifdef MASSMAP_HAVE_DCMTK
void dicom_seed(const Image& image, const std::string& name, E_TransferSyntax syntax, bool mono1, bool nested) {
  DcmFileFormat file;
  DcmDataset* ds = file.getDataset();
  ds->putAndInsertString(DCM_SOPClassUID, UID_DigitalMammographyXRayImageStorageForPresentation);
  ds->putAndInsertString(DCM_SOPInstanceUID, "1.2.3.4");
  ds->putAndInsertString(DCM_Modality, "MG");
  ds->putAndInsertUint16(DCM_Rows, Uint16(image.height));
  ds->putAndInsertUint16(DCM_Columns, Uint16(image.width));
  ds->putAndInsertUint16(DCM_SamplesPerPixel, 1);
  ds->putAndInsertString(DCM_PhotometricInterpretation, mono1 ? "MONOCHROME1" : "MONOCHROME2");
  ds->putAndInsertUint16(DCM_BitsAllocated, 16);
  ds->putAndInsertUint16(DCM_BitsStored, 12);
  ds->putAndInsertUint16(DCM_HighBit, 11);
  ds->putAndInsertUint16(DCM_PixelRepresentation, 0);
  ds->putAndInsertString(DCM_ImagerPixelSpacing, "0.2\\0.2");
  if (mono1) ds->putAndInsertString(DCM_RescaleSlope, "2"), ds->putAndInsertString(DCM_RescaleIntercept, "-100");
  if (nested) {  // ViewCodeSequence > ViewModifierCodeSequence: the nesting the reader bounds
    DcmItem* view = nullptr;
    if (ds->findOrCreateSequenceItem(DCM_ViewCodeSequence, view, -2).good()) {
      view->putAndInsertString(DCM_CodeValue, "R-10242");
      DcmItem* modifier = nullptr;
      if (view->findOrCreateSequenceItem(DCM_ViewModifierCodeSequence, modifier, -2).good())
        modifier->putAndInsertString(DCM_CodeValue, "R-102D2");
    }
  }
  ds->putAndInsertUint16Array(DCM_PixelData, image.pixels.data(), image.pixels.size());
  if (syntax != EXS_LittleEndianExplicit && ds->chooseRepresentation(syntax, nullptr).bad()) return;
  file.saveFile(path_in("dicom_image_fuzz", name).c_str(), syntax);
}

void dicom_seeds(const Image& image, const std::string& stem) {
  dicom_seed(image, stem + "-explicit.dcm", EXS_LittleEndianExplicit, false, false);
  dicom_seed(image, stem + "-implicit-nested.dcm", EXS_LittleEndianImplicit, false, true);
  dicom_seed(image, stem + "-big-mono1.dcm", EXS_BigEndianExplicit, true, false);
#ifdef MASSMAP_HAVE_DCMJPLS
  DJLSEncoderRegistration::registerCodecs();
  dicom_seed(image, stem + "-jpls.dcm", EXS_JPEGLSLossless, false, true);
  DJLSEncoderRegistration::cleanup();
#endif
#ifdef MASSMAP_HAVE_DCMJPEG
  DJEncoderRegistration::registerCodecs();
  dicom_seed(image, stem + "-jpeg-lossless.dcm", EXS_JPEGProcess14SV1, false, false);
  DJEncoderRegistration::cleanup();
#endif
}
#endif

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_image_seeds OUT_DIR\n");
    return 2;
  }
  out_dir = argv[1];
  massmap::data::SynthParams p;
  p.width = p.height = 64;
  p.mass_min_mm = 2, p.mass_max_mm = 4;
  for (int64_t index : {0, 1}) {
    const massmap::data::SynthImage s = massmap::data::synth_image(p, 7, index);
    Image image;
    image.width = s.width, image.height = s.height, image.bits = 12, image.pixels = s.pixels;
    const std::string stem = "synth" + std::to_string(index);
    png_seeds(image, stem);
    jpeg_seeds(image, stem);
#ifdef MASSMAP_HAVE_TIFF
    tiff_seeds(image, stem);
#endif
#ifdef MASSMAP_HAVE_DCMTK
    dicom_seeds(image, stem);
#endif
  }
  for (const char* target : {"png_image_fuzz", "jpeg_image_fuzz", "tiff_image_fuzz", "dicom_image_fuzz"}) {
    size_t n = 0;
    if (fs::exists(fs::path(out_dir) / target))
      for (const auto& entry : fs::directory_iterator(fs::path(out_dir) / target)) n += entry.is_regular_file();
    std::printf("%s: %zu seeds\n", target, n);
  }
  return 0;
}
