// Image reading and writing (data/image_io.h): round trips through our PNG writers, files of every format built in
// the test (PGM byte by byte, TIFF with libtiff, DICOM with DCMTK, JPEG with stb), and corrupt, truncated, absurd
// and missing files, each raising BadInput that names the file and the reason.
#include "data/image_io.h"

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/errors.h"
#include "tests/support/check.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb/stb_image.h>
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
#include <dcmtk/dcmjpls/djrparam.h>
#endif
#ifdef MASSMAP_HAVE_DCMJPEG
#include <dcmtk/dcmjpeg/djencode.h>
#include <dcmtk/dcmjpeg/djrplol.h>
#endif
#endif

using namespace massmap;
using namespace massmap::data;
namespace fs = std::filesystem;

namespace {

struct ScratchDir {
  fs::path path = fs::temp_directory_path() / ("massmap-image-io-test-" + std::to_string(::getpid()));
  ScratchDir() { fs::create_directories(path); }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

std::string test_path(const std::string& name) {
  static const ScratchDir dir;
  return (dir.path / name).string();
}

std::string write_raw(const std::string& name, const std::string& bytes) {
  const std::string path = test_path(name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A test image: a gradient plus seeded noise in 0..2^bits - 1, with the extremes present.
Image pattern(int width, int height, int bits, uint64_t seed) {
  testing_support::TestRng rng(seed);
  Image image;
  image.width = width;
  image.height = height;
  image.bits = bits;
  const int top = (1 << bits) - 1;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      image.pixels.push_back(
          uint16_t((int64_t(x + 3 * y) * top / (width + 3 * height) + rng.integer(0, 40)) % (top + 1)));
  image.pixels.front() = 0;
  image.pixels.back() = uint16_t(top);
  return image;
}

void expect_same(const Image& got, const Image& want, const std::string& what) {
  INFO(what);
  REQUIRE(got.width == want.width);
  REQUIRE(got.height == want.height);
  CHECK(got.bits == want.bits);
  REQUIRE(got.pixels.size() == want.pixels.size());
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.pixels.size(); ++i)
    if (got.pixels[i] != want.pixels[i] && bad++ == 0) first = i;
  CHECK_MESSAGE(bad == 0, bad << " pixels differ; first at " << first << ": " << got.pixels[first] << " vs "
                              << want.pixels[first]);
}

// read_image(path) must throw BadInput naming the file and containing `reason`.
void expect_bad(const std::string& path, const std::string& reason) {
  try {
    read_image(path);
    FAIL_CHECK("no BadInput for " << path << " (expected: " << reason << ")");
  } catch (const BadInput& e) {
    const std::string what = e.what();
    CHECK_MESSAGE(what.find(path) != std::string::npos, "message does not name the file: " << what);
    CHECK_MESSAGE(what.find(reason) != std::string::npos, "expected '" << reason << "' in: " << what);
  }
}

void put32be(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = char(v >> (24 - 8 * i));
}

// A little-endian TIFF by hand: 8 tags, one strip of 1 byte (0x7f).
std::string handmade_tiff(uint32_t width, uint32_t height, uint16_t bits, uint16_t samples) {
  std::string s = std::string("II*\0", 4) + std::string("\x08\0\0\0", 4);
  auto u16 = [&](uint16_t v) { s += char(v & 0xff), s += char(v >> 8); };
  auto u32 = [&](uint32_t v) { u16(uint16_t(v & 0xffff)), u16(uint16_t(v >> 16)); };
  auto tag = [&](uint16_t id, uint16_t type, uint32_t value) {
    u16(id), u16(type), u32(1);
    if (type == 3) {
      u16(uint16_t(value)), u16(0);
    } else {
      u32(value);
    }
  };
  u16(8);
  tag(256, 4, width);
  tag(257, 4, height);
  tag(258, 3, bits);
  tag(259, 3, 1);
  tag(262, 3, 1);
  tag(273, 4, 8 + 2 + 8 * 12 + 4);  // strip offset: right after the directory
  tag(277, 3, samples);
  tag(279, 4, 1);
  u32(0);
  s += '\x7f';
  return s;
}
}  // namespace

TEST_CASE("16-bit PNG: write -> read_image and stbi_load_16 give the same pixels") {
  for (auto [w, h] : {std::pair{1, 1}, {37, 23}, {256, 3}}) {
    const Image image = pattern(w, h, 16, uint64_t(w * 100 + h));
    const std::string path = test_path("g16_" + std::to_string(w) + ".png");
    write_png16(path, image);
    expect_same(read_image(path), image, "read_image of " + path);

    const std::string bytes = slurp(path);
    CHECK(bytes == encode_png16(image));
    int sw = 0, sh = 0, comp = 0;
    stbi_us* data =
        stbi_load_16_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), int(bytes.size()), &sw, &sh, &comp, 0);
    REQUIRE(data != nullptr);
    CHECK(sw == w);
    CHECK(sh == h);
    CHECK(comp == 1);
    CHECK(std::equal(image.pixels.begin(), image.pixels.end(), data));
    stbi_image_free(data);
  }
  // A constant image compresses to almost nothing: under 1% of its 512 KB at the encoder's fastest zlib level.
  Image flat;
  flat.width = flat.height = 512;
  flat.pixels.assign(512 * 512, 1234);
  CHECK(encode_png16(flat).size() < 512 * 512 * 2 / 100);
}

TEST_CASE("8-bit PNG: grey round trip; RGB read as grey by stb's luma rule") {
  const Image grey = pattern(33, 17, 8, 5);
  const std::string path = test_path("g8.png");
  write_png8(path, grey);
  expect_same(read_image(path), grey, "grey PNG");

  std::vector<uint8_t> rgb;
  const uint8_t colours[][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 200, 77}, {255, 255, 255}, {0, 0, 0}};
  for (auto& c : colours) rgb.insert(rgb.end(), c, c + 3);
  const std::string rgb_path = test_path("rgb.png");
  write_png8(rgb_path, 3, 2, 3, rgb);
  const Image got = read_image(rgb_path);
  REQUIRE(got.pixels.size() == 6);
  CHECK(got.bits == 8);
  for (int i = 0; i < 6; ++i)
    CHECK(got.pixels[i] == ((77 * colours[i][0] + 150 * colours[i][1] + 29 * colours[i][2]) >> 8));
  // RGBA: alpha dropped.
  write_png8(test_path("rgba.png"), 1, 1, 4, {10, 200, 77, 0});
  CHECK(read_image(test_path("rgba.png")).pixels[0] == ((77 * 10 + 150 * 200 + 29 * 77) >> 8));

  CHECK_THROWS_AS(write_png8(test_path("x.png"), 2, 2, 2, std::vector<uint8_t>(8)), BadInput);
  CHECK_THROWS_AS(write_png8(test_path("x.png"), 2, 2, 3, std::vector<uint8_t>(11)), BadInput);
  Image too_deep = pattern(2, 2, 16, 1);
  CHECK_THROWS_AS(write_png8(test_path("x.png"), too_deep), BadInput);
  Image wrong = pattern(4, 4, 16, 1);
  wrong.pixels.pop_back();
  CHECK_THROWS_AS(write_png16(test_path("x.png"), wrong), BadInput);
  CHECK_FALSE(fs::exists(test_path("x.png")));
}

TEST_CASE("JPEG through stb: an 8-bit grey image reads back close") {
  const Image image = pattern(64, 48, 8, 9);
  std::vector<uint8_t> bytes(image.pixels.begin(), image.pixels.end());
  std::string jpeg;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), size_t(size));
  };
  REQUIRE(stbi_write_jpg_to_func(append, &jpeg, 64, 48, 1, bytes.data(), 100));
  const Image got = read_image(write_raw("grey.jpg.bin", jpeg));  // the extension plays no part
  REQUIRE(got.width == 64);
  REQUIRE(got.height == 48);
  CHECK(got.bits == 8);
  double err = 0;
  for (size_t i = 0; i < bytes.size(); ++i) err += std::abs(int(got.pixels[i]) - int(bytes[i]));
  CHECK(err / double(bytes.size()) < 6);
  expect_bad(write_raw("cut.jpg", jpeg.substr(0, 200)), "JPEG");
  expect_bad(write_raw("scan.jpg", jpeg.substr(0, jpeg.size() - 40)), "JPEG file is truncated");
  expect_bad(write_raw("eoi.jpg", jpeg.substr(0, jpeg.size() - 2)), "JPEG file is truncated");
  CHECK(read_image(write_raw("tail.jpg", jpeg + "trailing")).width == 64);
}

TEST_CASE("PGM: P5 at 8 and 16 bits, P2, comments, maxval") {
  // 3 x 2, 8-bit, comments between the fields and after maxval's line break.
  std::string p5 = "P5\n# made by hand\n3 # width\n2\n200\n";
  p5 += std::string("\x00\x10\x20\x30\x40\xc8", 6);
  Image got = read_image(write_raw("a.pgm", p5));
  CHECK(got.width == 3);
  CHECK(got.height == 2);
  CHECK(got.bits == 8);
  CHECK(got.pixels == std::vector<uint16_t>{0, 0x10, 0x20, 0x30, 0x40, 200});

  // 16-bit big-endian, maxval 4095 -> 12 bits.
  std::string p16 = "P5 2 2 4095\n";
  p16 += std::string("\x00\x01\x0f\xff\x01\x00\x08\x00", 8);
  got = read_image(write_raw("b.pgm", p16));
  CHECK(got.bits == 12);
  CHECK(got.pixels == std::vector<uint16_t>{1, 4095, 256, 2048});

  got = read_image(write_raw("c.pgm", "P2\n# text\n2 2\n65535\n0 65535\n# c\n7\t300\n"));
  CHECK(got.bits == 16);
  CHECK(got.pixels == std::vector<uint16_t>{0, 65535, 7, 300});

  expect_bad(write_raw("trunc.pgm", p16.substr(0, p16.size() - 1)), "truncated");
  expect_bad(write_raw("head.pgm", "P5 2 2"), "ends before its maxval");
  expect_bad(write_raw("maxval.pgm", "P5 1 1 70000\n\x01\x01"), "maxval is larger than 65535");
  expect_bad(write_raw("maxval0.pgm", "P5 1 1 0\n\x01"), "maxval is 0");
  expect_bad(write_raw("zero.pgm", "P5 0 5 255\n"), "empty image");
  expect_bad(write_raw("huge.pgm", "P5 100000 100000 255\n"), "exceeds the limit");
  expect_bad(write_raw("area.pgm", "P5 65535 65535 255\n"), "exceeds the limit");
  expect_bad(write_raw("above.pgm", "P5 1 2 100\n\x10\x65"), "above maxval");
  expect_bad(write_raw("text.pgm", "P2 2 1 255\n1 x"), "pixel is not a number");
  expect_bad(write_raw("overflow.pgm", "P2 1 1 255\n99999999999999999999"), "larger than 255");
  // Every truncation of a valid file is rejected through the in-memory entry point.
  for (size_t n = 0; n < p16.size(); ++n) CHECK_THROWS_AS(parse_pgm("cut.pgm", p16.data(), n), BadInput);
}

#ifdef MASSMAP_HAVE_TIFF
namespace {

// Writes `image` with libtiff: strips of `rows_per_strip` rows, or tiles of tile x tile when tile > 0.
std::string write_tiff(const std::string& name, const Image& image, int rows_per_strip, int tile,
                       uint16_t compression = COMPRESSION_NONE, uint16_t photometric = PHOTOMETRIC_MINISBLACK) {
  const std::string path = test_path(name);
  TIFF* t = TIFFOpen(path.c_str(), "w");
  REQUIRE(t != nullptr);
  const int bits = image.bits > 8 ? 16 : 8;
  TIFFSetField(t, TIFFTAG_IMAGEWIDTH, uint32_t(image.width));
  TIFFSetField(t, TIFFTAG_IMAGELENGTH, uint32_t(image.height));
  TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, uint16_t(1));
  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, uint16_t(bits));
  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, photometric);
  TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(t, TIFFTAG_COMPRESSION, compression);
  const size_t bpp = size_t(bits / 8);
  auto sample = [&](int x, int y, unsigned char* out) {
    const uint16_t v = image.at(x, y);
    if (bits == 8) {
      out[0] = uint8_t(v);
    } else {
      std::memcpy(out, &v, 2);  // native order: libtiff swaps as needed
    }
  };
  if (tile > 0) {
    TIFFSetField(t, TIFFTAG_TILEWIDTH, uint32_t(tile));
    TIFFSetField(t, TIFFTAG_TILELENGTH, uint32_t(tile));
    std::vector<unsigned char> buf(size_t(tile) * tile * bpp);
    for (int y0 = 0; y0 < image.height; y0 += tile)
      for (int x0 = 0; x0 < image.width; x0 += tile) {
        std::fill(buf.begin(), buf.end(), 0);
        for (int y = y0; y < std::min(y0 + tile, image.height); ++y)
          for (int x = x0; x < std::min(x0 + tile, image.width); ++x)
            sample(x, y, &buf[(size_t(y - y0) * tile + (x - x0)) * bpp]);
        REQUIRE(TIFFWriteTile(t, buf.data(), uint32_t(x0), uint32_t(y0), 0, 0) >= 0);
      }
  } else {
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, uint32_t(rows_per_strip));
    std::vector<unsigned char> row(size_t(image.width) * bpp);
    for (int y = 0; y < image.height; ++y) {
      for (int x = 0; x < image.width; ++x) sample(x, y, &row[size_t(x) * bpp]);
      REQUIRE(TIFFWriteScanline(t, row.data(), uint32_t(y), 0) >= 0);
    }
  }
  TIFFClose(t);
  return path;
}

}  // namespace

TEST_CASE("TIFF: 8 and 16 bits, strips and tiles, compression, MinIsWhite") {
  for (int bits : {8, 16}) {
    const Image image = pattern(40, 35, bits, uint64_t(bits));
    const std::string b = std::to_string(bits);
    expect_same(read_image(write_tiff("s" + b + ".tif", image, 3, 0)), image, "strips of 3 rows, " + b + " bits");
    expect_same(read_image(write_tiff("one" + b + ".tif", image, 35, 0)), image, "one strip, " + b + " bits");
    expect_same(read_image(write_tiff("t" + b + ".tif", image, 0, 16)), image, "16x16 tiles, " + b + " bits");
    expect_same(read_image(write_tiff("z" + b + ".tif", image, 0, 16, COMPRESSION_ADOBE_DEFLATE)), image,
                "deflate tiles, " + b + " bits");
    expect_same(read_image(write_tiff("l" + b + ".tif", image, 4, 0, COMPRESSION_LZW)), image,
                "LZW strips, " + b + " bits");
    Image inverted = image;
    for (auto& v : inverted.pixels) v = uint16_t((1 << bits) - 1 - v);
    expect_same(read_image(write_tiff("w" + b + ".tif", image, 5, 0, COMPRESSION_NONE, PHOTOMETRIC_MINISWHITE)),
                inverted, "MinIsWhite, " + b + " bits");
  }
  // Every truncation of a valid file is rejected.
  const std::string good = slurp(write_tiff("good.tif", pattern(20, 10, 16, 3), 2, 0));
  for (size_t n = 1; n < good.size(); n += 7) expect_bad(write_raw("cut.tif", good.substr(0, n)), "TIFF");
}

TEST_CASE("TIFF: absurd dimensions and unsupported layouts are rejected before decoding") {
  expect_same(read_image(write_raw("tiny.tif", handmade_tiff(1, 1, 8, 1))), Image{1, 1, 8, {0x7f}}, "hand-made TIFF");
  expect_bad(write_raw("huge.tif", handmade_tiff(100000, 100000, 8, 1)), "exceeds the limit");
  expect_bad(write_raw("area.tif", handmade_tiff(65535, 65535, 8, 1)), "exceeds the limit");
  expect_bad(write_raw("zero.tif", handmade_tiff(0, 10, 8, 1)), "TIFF");
  expect_bad(write_raw("bits.tif", handmade_tiff(1, 1, 12, 1)), "12 bits per sample");
  expect_bad(write_raw("rgb.tif", handmade_tiff(1, 1, 8, 3)), "3 samples per pixel");
  expect_bad(write_raw("short.tif", handmade_tiff(100, 100, 8, 1)), "strip 0 cannot be decoded");
}
#endif

#ifdef MASSMAP_HAVE_DCMTK
namespace {

struct DicomSpec {
  const char* photometric = "MONOCHROME2";
  int bits_stored = 12;
  const char* slope = nullptr;
  const char* intercept = nullptr;
  const char* spacing = nullptr;
  bool pixels = true;
  E_TransferSyntax syntax = EXS_LittleEndianExplicit;
};

std::string write_dicom(const std::string& name, const Image& image, const DicomSpec& spec) {
  DcmFileFormat file;
  DcmDataset* ds = file.getDataset();
  char uid[100];
  ds->putAndInsertString(DCM_SOPClassUID, UID_DigitalMammographyXRayImageStorageForPresentation);
  ds->putAndInsertString(DCM_SOPInstanceUID, dcmGenerateUniqueIdentifier(uid, SITE_INSTANCE_UID_ROOT));
  ds->putAndInsertString(DCM_Modality, "MG");
  ds->putAndInsertUint16(DCM_Rows, Uint16(image.height));
  ds->putAndInsertUint16(DCM_Columns, Uint16(image.width));
  ds->putAndInsertUint16(DCM_SamplesPerPixel, 1);
  ds->putAndInsertString(DCM_PhotometricInterpretation, spec.photometric);
  ds->putAndInsertUint16(DCM_BitsAllocated, 16);
  ds->putAndInsertUint16(DCM_BitsStored, Uint16(spec.bits_stored));
  ds->putAndInsertUint16(DCM_HighBit, Uint16(spec.bits_stored - 1));
  ds->putAndInsertUint16(DCM_PixelRepresentation, 0);
  if (spec.slope) ds->putAndInsertString(DCM_RescaleSlope, spec.slope);
  if (spec.intercept) ds->putAndInsertString(DCM_RescaleIntercept, spec.intercept);
  if (spec.spacing) ds->putAndInsertString(DCM_ImagerPixelSpacing, spec.spacing);
  if (spec.pixels) REQUIRE(ds->putAndInsertUint16Array(DCM_PixelData, image.pixels.data(), image.pixels.size()).good());
  if (spec.syntax != EXS_LittleEndianExplicit) REQUIRE(ds->chooseRepresentation(spec.syntax, nullptr).good());
  const std::string path = test_path(name);
  const OFCondition status = file.saveFile(path.c_str(), spec.syntax);
  REQUIRE_MESSAGE(status.good(), status.text());
  return path;
}

}  // namespace

TEST_CASE("DICOM: MONOCHROME2 and MONOCHROME1, 16 bits, rescale, pixel spacing") {
  const Image image = pattern(31, 17, 12, 11);
  DicomSpec plain;
  plain.spacing = "0.07\\0.07";
  Image got = read_image(write_dicom("m2.dcm", image, plain));
  expect_same(got, image, "MONOCHROME2");
  CHECK(got.pixel_spacing_mm == doctest::Approx(0.07));

  DicomSpec mono1;
  mono1.photometric = "MONOCHROME1";
  Image inverted = image;
  for (auto& v : inverted.pixels) v = uint16_t(4095 - v);
  expect_same(read_image(write_dicom("m1.dcm", image, mono1)), inverted, "MONOCHROME1");

  DicomSpec rescaled;
  rescaled.slope = "2";
  rescaled.intercept = "-100";
  Image expected = image;
  for (auto& v : expected.pixels) v = uint16_t(std::max(0, 2 * int(v) - 100));
  expect_same(read_image(write_dicom("rescale.dcm", image, rescaled)), expected, "slope 2, intercept -100");
  CHECK(read_image(write_dicom("rescale.dcm", image, rescaled)).pixel_spacing_mm == 0);

  DicomSpec none;
  none.pixels = false;
  expect_bad(write_dicom("nopixels.dcm", image, none), "no pixel data");
  const std::string good = slurp(write_dicom("good.dcm", image, plain));
  expect_bad(write_raw("cut.dcm", good.substr(0, good.size() - 100)), "DICOM");
  expect_bad(write_raw("preamble.dcm", good.substr(0, 140)), "DICOM");
  DicomSpec colour;
  colour.photometric = "RGB";
  expect_bad(write_dicom("rgb.dcm", image, colour), "PhotometricInterpretation is 'RGB'");
}

#if defined(MASSMAP_HAVE_DCMJPLS) || defined(MASSMAP_HAVE_DCMJPEG)
TEST_CASE("DICOM: JPEG-LS lossless and JPEG lossless decode exactly") {
  const Image image = pattern(40, 24, 12, 13);
#ifdef MASSMAP_HAVE_DCMJPLS
  DJLSEncoderRegistration::registerCodecs();
  DicomSpec jpls;
  jpls.syntax = EXS_JPEGLSLossless;
  const std::string path = write_dicom("jpls.dcm", image, jpls);
  expect_same(read_image(path), image, "JPEG-LS lossless");
  DJLSEncoderRegistration::cleanup();
#endif
#ifdef MASSMAP_HAVE_DCMJPEG
  DJEncoderRegistration::registerCodecs();
  DicomSpec jpeg;
  jpeg.syntax = EXS_JPEGProcess14SV1;
  expect_same(read_image(write_dicom("jpegll.dcm", image, jpeg)), image, "JPEG lossless SV1");
  DJEncoderRegistration::cleanup();
#endif
}
#endif
#endif

TEST_CASE("corrupt, absurd and missing files raise BadInput naming the file") {
  Image image = pattern(20, 10, 16, 2);
  const std::string png = encode_png16(image);
  expect_bad(write_raw("trunc.png", png.substr(0, png.size() - 20)), "PNG file is truncated");
  expect_bad(write_raw("header.png", png.substr(0, 20)), "truncated before the end of its IHDR");
  for (size_t n = 1; n < png.size(); n += 3)
    CHECK_THROWS_AS(read_image(write_raw("cut.png", png.substr(0, n))), BadInput);

  std::string zero = png;
  put32be(zero, 16, 0);
  expect_bad(write_raw("zero.png", zero), "empty image (0 x 10)");
  std::string huge = png;
  put32be(huge, 16, 100000);
  put32be(huge, 20, 100000);
  expect_bad(write_raw("huge.png", huge), "exceeds the limit of 65535 per side");
  std::string area = png;
  put32be(area, 16, 65535);
  put32be(area, 20, 65535);
  expect_bad(write_raw("area.png", area), "exceeds the limit of 134217728 pixels");
  // Header fields are checked before the CRCs, so each of these gets its own reason.
  std::string depth = png;
  depth[24] = 12;
  expect_bad(write_raw("depth.png", depth), "bit depth 12");
  std::string colour = png;
  colour[25] = 5;
  expect_bad(write_raw("colour.png", colour), "colour type 5");

  std::string flipped = png;
  flipped[50] = char(flipped[50] ^ 0x10);  // inside IDAT
  expect_bad(write_raw("crc.png", flipped), "chunk 'IDAT' has a wrong CRC");
  expect_bad(write_raw("noiend.png", png.substr(0, png.size() - 12)), "ends before its IEND");

  expect_bad(write_raw("empty.png", ""), "empty");
  expect_bad(test_path("missing.png"), "No such file");
  fs::create_directories(test_path("dir.png"));
  expect_bad(test_path("dir.png"), "directory");
  expect_bad(write_raw("text.png", "hello, world\n"), "unknown image format");
  expect_bad(write_raw("short.png", "\x89P"), "unknown image format");
}

TEST_CASE("formats built without their library are rejected by name") {
  const std::string dicom = std::string(128, '\0') + "DICM" + std::string(64, '\0');
#ifndef MASSMAP_HAVE_TIFF
  expect_bad(write_raw("nolib.tif", handmade_tiff(1, 1, 8, 1)), "built without TIFF support");
#endif
#ifndef MASSMAP_HAVE_DCMTK
  expect_bad(write_raw("nolib.dcm", dicom), "built without DICOM support");
#else
  expect_bad(write_raw("nolib.dcm", dicom), "DICOM");
#endif
  CHECK(handmade_tiff(1, 1, 8, 1).size() == 8 + 2 + 8 * 12 + 4 + 1);
}
