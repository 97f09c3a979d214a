// Structured hostile image files (issue 15): a DICOM file built element by element and a PNG built chunk by chunk,
// then cut at every field boundary, given huge declared lengths and sizes, and nested deeply. read_image must
// return the image or throw BadInput naming the file; never crash, hang or allocate what the header declares.
// (The coverage-guided side is fuzz/*_image_fuzz.cpp.)
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/errors.h"
#include "data/image_io.h"

using namespace massmap;
using namespace massmap::data;
namespace fs = std::filesystem;

namespace {

std::string write_file(const std::string& bytes) {
  static const fs::path dir = [] {
    const fs::path p = fs::temp_directory_path() / ("massmap-image-hostile-" + std::to_string(getpid()));
    fs::create_directories(p);
    return p;
  }();
  const std::string path = (dir / "hostile.img").string();
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  return path;
}

// The outcome the readers promise: an image, or BadInput naming the file. Returns true for an image.
bool read_or_refuse(const std::string& bytes, const std::string& what) {
  const std::string path = write_file(bytes);
  INFO(what);
  try {
    const Image image = read_image(path);
    CHECK(image.pixels.size() == size_t(image.width) * size_t(image.height));
    return true;
  } catch (const BadInput& e) {
    CHECK_MESSAGE(std::string(e.what()).find(path) != std::string::npos, e.what());
  } catch (const std::exception& e) {
    FAIL_CHECK("not BadInput: " << e.what());
  }
  return false;
}

void put(std::string& out, uint32_t v, int bytes, bool big = false) {
  for (int i = 0; i < bytes; ++i) out += char(v >> (8 * (big ? bytes - 1 - i : i)));
}

// ---- DICOM, explicit VR little endian ------------------------------------------------------------------------

struct Element {
  uint16_t group, element;
  std::string vr, value;
  uint32_t length_override = 0;  // 0: the value's size
  bool long_form() const { return vr == "OB" || vr == "OW" || vr == "SQ" || vr == "UN" || vr == "UT"; }
};

std::string us(uint16_t v) {
  return std::string{char(v & 0xff), char(v >> 8)};
}

// The elements of an 8 x 6 MONOCHROME2 image, 16 bits allocated, 12 stored.
std::vector<Element> dicom_elements() {
  std::string pixels;
  for (int i = 0; i < 48; ++i) pixels += us(uint16_t(i * 80));
  return {{0x0028, 0x0002, "US", us(1)},  {0x0028, 0x0004, "CS", "MONOCHROME2 "}, {0x0028, 0x0010, "US", us(6)},
          {0x0028, 0x0011, "US", us(8)},  {0x0028, 0x0100, "US", us(16)},         {0x0028, 0x0101, "US", us(12)},
          {0x0028, 0x0102, "US", us(11)}, {0x0028, 0x0103, "US", us(0)},          {0x7fe0, 0x0010, "OW", pixels}};
}

// The file, and the offset where each element starts (and the end).
std::string dicom_file(const std::vector<Element>& elements, std::vector<size_t>* boundaries = nullptr) {
  std::string meta;
  const std::string syntax = std::string("1.2.840.10008.1.2.1") + '\0';
  put(meta, 0x0002, 2), put(meta, 0x0010, 2), meta += "UI", put(meta, uint32_t(syntax.size()), 2), meta += syntax;
  std::string file = std::string(128, '\0') + "DICM";
  put(file, 0x0002, 2), put(file, 0x0000, 2), file += "UL", put(file, 4, 2), put(file, uint32_t(meta.size()), 4);
  file += meta;
  for (const Element& e : elements) {
    if (boundaries) boundaries->push_back(file.size());
    put(file, e.group, 2), put(file, e.element, 2), file += e.vr;
    const uint32_t length = e.length_override ? e.length_override : uint32_t(e.value.size());
    if (e.long_form())
      put(file, 0, 2), put(file, length, 4);
    else
      put(file, length, 2);
    file += e.value;
  }
  if (boundaries) boundaries->push_back(file.size());
  return file;
}

}  // namespace

#ifdef MASSMAP_HAVE_DCMTK
TEST_CASE("DICOM built by fields: the whole file reads; cut at every field boundary and inside each, it is refused") {
  std::vector<size_t> boundaries;
  const std::string good = dicom_file(dicom_elements(), &boundaries);
  REQUIRE(read_or_refuse(good, "the whole file"));
  const Image image = read_image(write_file(good));
  CHECK(image.width == 8);
  CHECK(image.height == 6);
  CHECK(image.at(7, 5) == 47 * 80);
  for (size_t cut = 0; cut < good.size(); ++cut) {
    // Every prefix of the header, every field boundary and a few bytes into each element.
    const bool boundary = std::find(boundaries.begin(), boundaries.end(), cut) != boundaries.end();
    if (cut > boundaries.front() && !boundary && cut % 5 != 0) continue;
    CHECK_FALSE(read_or_refuse(good.substr(0, cut), "cut at byte " + std::to_string(cut)));
  }
}

TEST_CASE("DICOM with huge declared lengths and sizes: refused without allocating what they declare") {
  for (const uint32_t length : {0xffffffffu, 0xfffffff0u, 0x80000000u, 0x7ffffffeu, 97u}) {
    for (size_t k = 0; k < dicom_elements().size(); ++k) {
      std::vector<Element> elements = dicom_elements();
      elements[k].length_override = length;
      read_or_refuse(dicom_file(elements), "element " + std::to_string(k) + " declaring " + std::to_string(length));
    }
  }
  for (const uint16_t side : {0, 65535}) {  // (1 x 1 reads: extra pixel data is allowed)
    std::vector<Element> elements = dicom_elements();
    elements[2].value = us(side), elements[3].value = us(side);  // Rows, Columns over 96 bytes of pixels
    CHECK_FALSE(read_or_refuse(dicom_file(elements), "sides of " + std::to_string(side)));
  }
}

TEST_CASE("DICOM nesting: a few levels read on, thousands are refused before DCMTK recurses") {
  auto nested = [](int levels, bool closed) {
    std::vector<Element> elements = dicom_elements();
    std::string sequence;
    for (int i = 0; i < levels; ++i) {
      put(sequence, 0x0008, 2), put(sequence, 0x1140, 2), sequence += "SQ", put(sequence, 0, 2);
      put(sequence, ~0u, 4), put(sequence, 0xfffe, 2), put(sequence, 0xe000, 2), put(sequence, ~0u, 4);
    }
    for (int i = 0; closed && i < levels; ++i) {  // item delimiter, then sequence delimiter
      put(sequence, 0xfffe, 2), put(sequence, 0xe00d, 2), put(sequence, 0, 4);
      put(sequence, 0xfffe, 2), put(sequence, 0xe0dd, 2), put(sequence, 0, 4);
    }
    std::string file = dicom_file({});
    std::string rest = dicom_file(elements);
    rest = rest.substr(file.size());  // the image elements after the meta group
    return file + sequence + rest;
  };
  CHECK(read_or_refuse(nested(5, true), "5 closed levels"));
  CHECK(read_or_refuse(nested(100, true), "100 closed levels, the limit"));
  for (const int levels : {101, 5000, 50000}) {
    const std::string path = write_file(nested(levels, levels % 2 == 0));
    CHECK_THROWS_WITH_AS(read_image(path), doctest::Contains("levels deep; at most 100 are read"), BadInput);
  }
}

TEST_CASE("DICOM nesting that fools the scan (item delimiters planted inside values) parses on a large stack") {
  // Each level: a sequence, its item, and a private OB element whose value looks like an item delimiter. The scan
  // takes the planted delimiters for real ones; DCMTK nests 9,999 levels deep (the most undefined-length items a file
  // may have), which an 8 MB stack barely holds without AddressSanitizer and overflows with it.
  std::string levels;
  for (int i = 0; i < 9999; ++i) {
    put(levels, 0x0008, 2), put(levels, 0x1140, 2), levels += "SQ", put(levels, 0, 2), put(levels, ~0u, 4);
    put(levels, 0xfffe, 2), put(levels, 0xe000, 2), put(levels, ~0u, 4);
    put(levels, 0x0009, 2), put(levels, 0x1001, 2), levels += "OB", put(levels, 0, 2), put(levels, 8, 4);
    put(levels, 0xfffe, 2), put(levels, 0xe00d, 2), put(levels, 0, 4);
  }
  const std::string path = write_file(dicom_file({}) + levels);
  CHECK_THROWS_WITH_AS(read_image(path), doctest::Contains("DICOM file cannot be parsed"), BadInput);
  // 100,000 such levels overflowed even the parser's 128 MiB stack: refused by their count of undefined items.
  std::string more;
  for (int i = 0; i < 10; ++i) more += levels;
  CHECK_THROWS_WITH_AS(read_image(write_file(dicom_file({}) + more)),
                       doctest::Contains("99990 sequence items of undefined length; at most 10000"), BadInput);
}
#endif

namespace {

// ---- PNG, chunk by chunk ---------------------------------------------------------------------------------------

std::string png_with_ihdr(uint32_t width, uint32_t height, int depth, int colour) {
  const Image image = [] {
    Image i;
    i.width = 4, i.height = 3, i.bits = 16, i.pixels.assign(12, 300);
    return i;
  }();
  std::string png = encode_png16(image);
  // IHDR's fields sit at fixed offsets; the CRC after them is recomputed by the reader's check order: sizes first.
  for (int i = 0; i < 4; ++i) png[size_t(16 + i)] = char(width >> (8 * (3 - i)));
  for (int i = 0; i < 4; ++i) png[size_t(20 + i)] = char(height >> (8 * (3 - i)));
  png[24] = char(depth), png[25] = char(colour);
  return png;
}

}  // namespace

TEST_CASE("JPEG whose Huffman table lists more than 256 codes: refused before the decoder builds it") {
  // SOI, a DHT segment with one table whose 16 counts sum to `codes` (and that many symbol bytes), SOS, EOI.
  auto jpeg_with_dht = [](int codes) {
    std::string out = "\xff\xd8";
    std::string table(1, '\x00');  // class 0 (DC), id 0
    for (int i = 0; i < 16; ++i)
      table += char(i < 15 ? std::min(255, codes / 15) : codes - 15 * std::min(255, codes / 15));
    table += std::string(size_t(codes), '\x01');
    out += "\xff\xc4";
    put(out, uint32_t(table.size() + 2), 2, true);
    out += table;
    out += "\xff\xda";
    put(out, 8, 2, true);
    out += std::string("\x01\x01\x00\x00\x3f\x00", 6);
    out += "\xff\xd9";
    return out;
  };
  for (const int codes : {257, 300, 600}) {
    const std::string path = write_file(jpeg_with_dht(codes));
    CAPTURE(codes);
    try {
      read_image(path);
      FAIL_CHECK("read");
    } catch (const BadInput& e) {
      CHECK(std::string(e.what()).find("Huffman table lists " + std::to_string(codes) + " codes") != std::string::npos);
      CHECK(std::string(e.what()).find(path) != std::string::npos);
    }
  }
  // A segment one byte longer than its first table: the decoder reads a second table from the bytes after it.
  {
    std::string out = "\xff\xd8\xff\xc4";
    put(out, 2 + 17 + 1 + 1, 2, true);
    out += std::string(1, '\x00') + '\x01' + std::string(15, '\x00') + '\x05';  // table 1: one code
    out += std::string(1, '\x00');                                              // table 2 starts inside the segment
    for (int i = 0; i < 16; ++i) out += char(i < 15 ? 20 : 0);                  // 300 codes, past the segment's end
    out += std::string(300, '\x01') + "\xff\xda";
    put(out, 8, 2, true);
    out += std::string("\x01\x01\x00\x00\x3f\x00", 6) + "\xff\xd9";
    const std::string path = write_file(out);
    CHECK_THROWS_WITH_AS(read_image(path), doctest::Contains("Huffman table lists 300 codes"), BadInput);
  }
  // 256 codes pass this check (the file is refused later for other reasons, still as BadInput).
  CHECK_FALSE(read_or_refuse(jpeg_with_dht(256), "256 codes"));
}

TEST_CASE("PNG with huge declared sizes and chunk lengths: refused by the header checks, nothing allocated") {
  for (const uint32_t side : {0u, 65536u, 0x7fffffffu, 0xffffffffu})
    CHECK_FALSE(read_or_refuse(png_with_ihdr(side, 3, 16, 0), "width " + std::to_string(side)));
  // Within each side's limit, over the pixel limit (2^27 by default).
  CHECK_FALSE(read_or_refuse(png_with_ihdr(65535, 65535, 16, 6), "65535 x 65535 RGBA"));
  CHECK_FALSE(read_or_refuse(png_with_ihdr(16384, 8193, 8, 0), "2^27 + 16384 pixels"));
  // A chunk declaring 2 GiB after a valid IHDR.
  std::string png = png_with_ihdr(4, 3, 16, 0);
  const size_t idat = png.find("IDAT") - 4;
  for (const uint32_t length : {0x7fffffffu, 0xffffffffu, 0x10000u}) {
    std::string bad = png;
    for (int i = 0; i < 4; ++i) bad[idat + size_t(i)] = char(length >> (8 * (3 - i)));
    CHECK_FALSE(read_or_refuse(bad, "IDAT declaring " + std::to_string(length) + " bytes"));
  }
  // Cut at every byte.
  for (size_t cut = 0; cut < png.size(); ++cut)
    CHECK_FALSE(read_or_refuse(png.substr(0, cut), "cut at byte " + std::to_string(cut)));
}
