// .npy reading and writing: round trips, files built byte by byte as numpy writes them, and every kind of corrupt
// file raising BadInput that names the file.
#include "engine/npy.h"

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/errors.h"
#include "tests/support/check.h"

using namespace massmap;
namespace fs = std::filesystem;

namespace {

// A scratch directory for this process, removed when the program exits.
struct ScratchDir {
  fs::path path = fs::temp_directory_path() / ("massmap-npy-test-" + std::to_string(::getpid()));
  ScratchDir() { fs::create_directories(path); }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

std::string test_dir() {
  static const ScratchDir dir;
  return dir.path.string();
}

std::string write_raw(const std::string& name, const std::string& bytes) {
  std::string path = test_dir() + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

template <typename T>
std::string raw_bytes(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

// A .npy file as numpy lays it out: magic, version, little-endian header length (2 bytes in 1.0, 4 in 2.0),
// the header dict padded with spaces and '\n' to a multiple of 64, then the data.
std::string npy_file(int major, std::string dict, const std::string& payload) {
  const size_t prefix = major == 1 ? 10 : 12;
  while ((prefix + dict.size() + 1) % 64 != 0) dict += ' ';
  dict += '\n';
  std::string out = "\x93NUMPY";
  out += char(major);
  out += char(0);
  for (size_t i = 0; i < prefix - 8; ++i) out += char((dict.size() >> (8 * i)) & 0xff);
  return out + dict + payload;
}

// A file with an explicit header length field (for lengths that lie).
std::string npy_file_with_length(uint16_t length, const std::string& rest) {
  std::string out = "\x93NUMPY\x01";
  out += char(0);
  out += char(length & 0xff);
  out += char(length >> 8);
  return out + rest;
}

void expect_bad_input(const std::string& path, const std::string& reason) {
  try {
    read_npy(path);
    FAIL_CHECK("no BadInput for " << path << " (expected: " << reason << ")");
  } catch (const BadInput& e) {
    const std::string message = e.what();
    CHECK_MESSAGE(message.find(path) != std::string::npos, message);
    CHECK_MESSAGE(message.find(reason) != std::string::npos, message << " lacks '" << reason << "'");
  }
}

}  // namespace

TEST_CASE("write_npy then read_npy_float keeps shape and values, 0-d and 1-d included") {
  const std::vector<Shape> shapes = {{}, {1}, {7}, {2, 3}, {2, 3, 4, 5}, {0}, {3, 0, 2}};
  int i = 0;
  for (const Shape& shape : shapes) {
    Tensor t = Tensor::from(shape, testing_support::random_vector(size_t(shape_numel(shape)), 10 + i));
    const std::string path = test_dir() + "/round" + std::to_string(i++) + ".npy";
    write_npy(path, t);
    Tensor back = read_npy_float(path);
    CHECK_MESSAGE(back.shape() == shape, shape_str(back.shape()) << " vs " << shape_str(shape));
    CHECK(back.to_vector() == t.to_vector());

    NpyArray raw = read_npy(path);
    CHECK(raw.dtype == "<f4");
    CHECK(raw.shape == shape);
  }
}

TEST_CASE("the written header is numpy's version 1.0 layout, data 64-byte aligned") {
  Tensor t = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  const std::string bytes = encode_npy(t);
  REQUIRE(bytes.size() == 128 + 6 * 4);  // a 59-character dict: 10 + 60 + 1 rounds up to 128
  CHECK(bytes.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
  CHECK(uint8_t(bytes[8]) + 256 * uint8_t(bytes[9]) == 118);
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  CHECK(bytes.substr(10, dict.size()) == dict);
  CHECK(bytes.substr(10 + dict.size(), 127 - 10 - dict.size()) == std::string(127 - 10 - dict.size(), ' '));
  CHECK(bytes[127] == '\n');
  CHECK(bytes.substr(128) == raw_bytes(std::vector<float>{1, 2, 3, 4, 5, 6}));

  CHECK(encode_npy(Tensor::from({3}, {1, 2, 3})).find("'shape': (3,), }") != std::string::npos);
  CHECK(encode_npy(Tensor::from({}, {1})).find("'shape': (), }") != std::string::npos);
}

TEST_CASE("files built byte by byte: <f8, <i8, <i4, |u1, <u2 and a version 2.0 header") {
  SUBCASE("<f8") {
    const std::string path =
        write_raw("f8.npy", npy_file(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
                                     raw_bytes<double>({1.5, -2.25, 1e10})));
    Tensor t = read_npy_float(path);
    CHECK(t.shape() == Shape{3});
    CHECK(t.to_vector() == std::vector<float>{1.5f, -2.25f, 1e10f});
    CHECK(read_npy(path).dtype == "<f8");
  }
  SUBCASE("<i8 labels and as floats") {
    const std::string path = write_raw(
        "i8.npy",
        npy_file(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 2), }", raw_bytes<int64_t>({0, 1, -5, 7})));
    CHECK(read_npy_int(path) == std::vector<int64_t>{0, 1, -5, 7});
    Tensor t = read_npy_float(path);
    CHECK(t.shape() == Shape{2, 2});
    CHECK(t.to_vector() == std::vector<float>{0, 1, -5, 7});
  }
  SUBCASE("<i4") {
    const std::string path = write_raw(
        "i4.npy",
        npy_file(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (4,), }", raw_bytes<int32_t>({3, 0, 1, 2})));
    CHECK(read_npy_int(path) == std::vector<int64_t>{3, 0, 1, 2});
  }
  SUBCASE("|u1 and <u2 images") {
    const std::string u1 = write_raw(
        "u1.npy",
        npy_file(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 3), }", std::string("\x00\x7f\xff", 3)));
    CHECK(read_npy_float(u1).to_vector() == std::vector<float>{0, 127, 255});
    const std::string u2 = write_raw("u2.npy", npy_file(1, "{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }",
                                                        raw_bytes<uint16_t>({4095, 65535})));
    CHECK(read_npy_float(u2).to_vector() == std::vector<float>{4095, 65535});
  }
  SUBCASE("version 2.0, double quotes, no trailing comma, Python 2 long") {
    const std::string path = write_raw(
        "v2.npy",
        npy_file(2, "{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":(2L,1)}", raw_bytes<float>({0.25f, -4.f})));
    Tensor t = read_npy_float(path);
    CHECK(t.shape() == Shape{2, 1});
    CHECK(t.to_vector() == std::vector<float>{0.25f, -4.f});
  }
  SUBCASE("float labels must be whole numbers") {
    const std::string whole = write_raw(
        "whole.npy",
        npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", raw_bytes<float>({0, 1, 2})));
    CHECK(read_npy_int(whole) == std::vector<int64_t>{0, 1, 2});
    const std::string half = write_raw(
        "half.npy",
        npy_file(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", raw_bytes<double>({1, 2.5})));
    CHECK_THROWS_AS(read_npy_int(half), BadInput);
  }
}

TEST_CASE("corrupt files raise BadInput naming the file and the reason") {
  const std::string dict_f4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  const std::string two_floats = raw_bytes<float>({1, 2});
  auto file = [&](const std::string& dict, const std::string& payload) { return npy_file(1, dict, payload); };

  expect_bad_input(write_raw("empty.npy", ""), "bad magic");
  expect_bad_input(write_raw("magic.npy", std::string("\x93NUMPX\x01\x00\x02\x00{}", 12)), "bad magic");
  expect_bad_input(write_raw("png.npy", "\x89PNG\r\n\x1a\n....."), "bad magic");
  expect_bad_input(write_raw("version.npy", npy_file(1, dict_f4, two_floats).replace(6, 1, "\x07")), "version 7");
  expect_bad_input(write_raw("short_length.npy", std::string("\x93NUMPY\x02\x00\x01", 9)), "header length");
  expect_bad_input(write_raw("long_header.npy", npy_file_with_length(4000, dict_f4 + "\n")), "past the end");
  expect_bad_input(write_raw("no_shape.npy", file("{'descr': '<f4', 'fortran_order': False, }", "")), "'shape'");
  expect_bad_input(write_raw("no_descr.npy", file("{'fortran_order': False, 'shape': (2,), }", two_floats)), "'descr'");
  expect_bad_input(write_raw("no_order.npy", file("{'descr': '<f4', 'shape': (2,), }", two_floats)), "'fortran_order'");
  expect_bad_input(
      write_raw("extra_key.npy", file("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", two_floats)),
      "unknown key 'x'");
  expect_bad_input(
      write_raw("twice.npy",
                file("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", two_floats)),
      "twice");
  expect_bad_input(write_raw("negative.npy", file("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", "")),
                   "negative");
  expect_bad_input(
      write_raw("absurd.npy", file("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", "")),
      "absurd");
  expect_bad_input(
      write_raw("overflow.npy",
                file("{'descr': '<f4', 'fortran_order': False, 'shape': (1048576, 1048576, 1048576), }", "")),
      "2^40");
  expect_bad_input(write_raw("truncated.npy", file(dict_f4, two_floats.substr(0, 7))), "truncated");
  expect_bad_input(write_raw("trailing.npy", file(dict_f4, two_floats + "xx")), "after the data");
  expect_bad_input(
      write_raw("big_endian.npy", file("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", two_floats)),
      "big-endian");
  expect_bad_input(
      write_raw("fortran.npy", file("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", two_floats)),
      "fortran_order");
  expect_bad_input(
      write_raw("complex.npy", file("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", "12345678")),
      "unsupported dtype '<c8'");
  expect_bad_input(write_raw("open_string.npy", npy_file_with_length(10, "{'descr': ")), "ends early");
  expect_bad_input(write_raw("not_dict.npy", file("[1, 2, 3]", "")), "expected '{'");
  expect_bad_input(write_raw("bad_shape.npy", file("{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,), }", "")),
                   "tuple of integers");
  expect_bad_input(write_raw("junk_after.npy", file(dict_f4 + " junk", two_floats)), "after the header");
  expect_bad_input(test_dir() + "/does_not_exist.npy", "No such file");
}

TEST_CASE("every truncation and byte corruption of a valid file is rejected or read, never a crash") {
  const std::string good = encode_npy(Tensor::from({2, 2}, {1, 2, 3, 4}));
  for (size_t n = 0; n < good.size(); ++n) CHECK_THROWS_AS(parse_npy("cut.npy", good.data(), n), BadInput);
  testing_support::TestRng rng(7);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string bad = good;
    bad[size_t(rng.integer(0, 63))] = char(rng.integer(0, 255));
    try {
      NpyArray a = parse_npy("flipped.npy", bad.data(), bad.size());
      CHECK(a.bytes.size() <= bad.size());
    } catch (const BadInput& e) {
      CHECK(std::string(e.what()).find("flipped.npy") != std::string::npos);
    }
  }
}
