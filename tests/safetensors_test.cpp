// safetensors checkpoints: the exact bytes of a small file against a hand-built byte string, round trips,
// files written by hand (as another tool would), corrupt headers, check_tensor_set, and the atomic write.
#include "engine/safetensors.h"

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/atomic_file.h"
#include "base/errors.h"
#include "tests/support/check.h"

using namespace massmap;
namespace fs = std::filesystem;

namespace {

// A scratch directory for this process, removed when the program exits.
struct ScratchDir {
  fs::path path = fs::temp_directory_path() / ("massmap-safetensors-test-" + std::to_string(::getpid()));
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

std::string le64(uint64_t v) {
  std::string out;
  for (int i = 0; i < 8; ++i) out += char((v >> (8 * i)) & 0xff);
  return out;
}

// A safetensors file from a header written out by hand and raw data bytes.
std::string st_file(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

std::string float_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// parse_safetensors must throw BadInput whose message names the file and contains each fragment.
void expect_bad(const std::string& bytes, const std::vector<std::string>& fragments) {
  const std::string name = "model-" + std::to_string(bytes.size()) + ".safetensors";
  try {
    parse_safetensors(name, bytes.data(), bytes.size());
    FAIL_CHECK("no BadInput; expected " << fragments[0]);
  } catch (const BadInput& e) {
    const std::string message = e.what();
    CHECK_MESSAGE(message.find(name) != std::string::npos, message);
    for (const std::string& f : fragments)
      CHECK_MESSAGE(message.find(f) != std::string::npos, message << " lacks '" << f << "'");
  }
}

}  // namespace

TEST_CASE("a tiny file has exactly the bytes the format prescribes") {
  TensorFile file;
  file.tensors["b"] = Tensor::from({2}, {1.0f, -2.0f});
  file.tensors["a"] = Tensor::from({1, 1}, {0.5f});
  file.metadata["k"] = "v";

  // Keys in byte order ('_' < 'a'), tensors laid out in name order, header padded with spaces to 8 bytes.
  std::string header = R"({"__metadata__":{"k":"v"},"a":{"data_offsets":[0,4],"dtype":"F32","shape":[1,1]},)"
                       R"("b":{"data_offsets":[4,12],"dtype":"F32","shape":[2]}})";
  REQUIRE(header.size() == 135);
  header += " ";
  const std::string data = std::string("\x00\x00\x00\x3f", 4)     // 0.5f  = 0x3f000000
                           + std::string("\x00\x00\x80\x3f", 4)   // 1.0f  = 0x3f800000
                           + std::string("\x00\x00\x00\xc0", 4);  // -2.0f = 0xc0000000
  const std::string expected = std::string("\x88\x00\x00\x00\x00\x00\x00\x00", 8) + header + data;  // 136
  CHECK(encode_safetensors(file) == expected);

  const std::string path = test_dir() + "/tiny.safetensors";
  write_safetensors(path, file);
  CHECK(read_all(path) == expected);
}

TEST_CASE("round trip keeps names, shapes, values and metadata; same content gives identical bytes") {
  TensorFile file;
  file.tensors["conv1/weight"] = Tensor::from({4, 3, 2, 2}, testing_support::random_vector(48, 1));
  file.tensors["conv1/bias"] = Tensor::from({4}, testing_support::random_vector(4, 2));
  file.tensors["scalar"] = Tensor::from({}, {3.5f});
  file.tensors["empty"] = Tensor::zeros({0, 5});
  file.metadata = {{"builder", "alexnet"}, {"options", R"({"width": 0.5})"}, {"pixel_spacing_um", "200"}};

  const std::string path = test_dir() + "/round.safetensors";
  write_safetensors(path, file);
  TensorFile back = read_safetensors(path);
  CHECK(back.metadata == file.metadata);
  REQUIRE(back.tensors.size() == file.tensors.size());
  for (const auto& [name, t] : file.tensors) {
    REQUIRE_MESSAGE(back.tensors.count(name), name);
    CHECK_MESSAGE(back.tensors.at(name).shape() == t.shape(), name);
    CHECK_MESSAGE(back.tensors.at(name).to_vector() == t.to_vector(), name);
  }

  TensorFile copy;
  for (auto it = file.tensors.rbegin(); it != file.tensors.rend(); ++it) copy.tensors[it->first] = it->second.clone();
  copy.metadata = file.metadata;
  CHECK(encode_safetensors(copy) == read_all(path));
}

TEST_CASE("reads a file written by another tool: unsorted layout, unpadded header, no metadata") {
  const std::string header =
      R"({"w": {"dtype": "F32", "shape": [2, 1], "data_offsets": [4, 12]}, "b": {"dtype":"F32","shape":[],"data_offsets":[0,4]}})";
  const std::string bytes = st_file(header, float_bytes({9.f, 1.f, 2.f}));
  TensorFile file = parse_safetensors("other.safetensors", bytes.data(), bytes.size());
  CHECK(file.metadata.empty());
  CHECK(file.tensors.at("b").shape() == Shape{});
  CHECK(file.tensors.at("b").to_vector() == std::vector<float>{9.f});
  CHECK(file.tensors.at("w").shape() == Shape{2, 1});
  CHECK(file.tensors.at("w").to_vector() == std::vector<float>{1.f, 2.f});
}

TEST_CASE("corrupt files raise BadInput naming the file and the tensor") {
  const std::string eight = float_bytes({1, 2});
  auto one = [](const std::string& entry) { return R"({"t": )" + entry + "}"; };

  expect_bad("", {"shorter than the 8-byte header length"});
  expect_bad(std::string("\x05\x00\x00", 3), {"shorter"});
  expect_bad(le64(1000) + "{}", {"header length 1000", "past the end"});
  expect_bad(le64(uint64_t(-1)) + "{}", {"past the end"});
  expect_bad(st_file(R"({"t": {"dtype": "F32",)", eight), {"not valid JSON"});
  expect_bad(st_file("[1, 2]", ""), {"not a JSON object"});
  expect_bad(st_file(one(R"({"dtype": "F16", "shape": [4], "data_offsets": [0, 8]})"), eight),
             {"tensor 't'", "dtype F16"});
  expect_bad(st_file(one(R"({"dtype": "F32", "shape": [2], "data_offsets": [0, 16]})"), eight),
             {"tensor 't'", "outside the data section"});
  expect_bad(st_file(one(R"({"dtype": "F32", "shape": [2], "data_offsets": [8, 0]})"), eight), {"tensor 't'"});
  expect_bad(st_file(one(R"({"dtype": "F32", "shape": [2], "data_offsets": [-1, 7]})"), eight), {"tensor 't'"});
  expect_bad(st_file(one(R"({"dtype": "F32", "shape": [3], "data_offsets": [0, 8]})"), eight),
             {"tensor 't'", "needs 12"});
  expect_bad(st_file(one(R"({"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]})"), eight),
             {"tensor 't'", "negative dimension"});
  expect_bad(st_file(one(R"({"dtype": "F32", "shape": [1048576, 1048576, 1048576], "data_offsets": [0, 8]})"), eight),
             {"tensor 't'", "2^40"});
  expect_bad(st_file(one(R"({"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]})"), eight),
             {"tensor 't'", "invalid dimension"});
  expect_bad(st_file(one(R"({"dtype": "F32", "shape": [2]})"), eight), {"tensor 't'", "data_offsets"});
  expect_bad(st_file(one(R"({"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "crc": 1})"), eight),
             {"tensor 't'", "unknown key 'crc'"});
  expect_bad(st_file(one(R"([0, 8])"), eight), {"tensor 't'"});
  expect_bad(st_file(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
                     R"( "t": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                     eight),
             {"'t' twice"});
  expect_bad(st_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                     R"( "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                     eight),
             {"tensor 'b'", "overlaps tensor 'a'"});
  expect_bad(st_file(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", eight), {"tensor 'a'", "gap"});
  expect_bad(st_file(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", eight),
             {"4 bytes after the last tensor"});
  expect_bad(st_file(R"({"__metadata__": {"epoch": 3}})", ""), {"__metadata__", "'epoch'"});
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  expect_bad(st_file(one(R"({"dtype": "F32", "shape": )" + deep + R"(, "data_offsets": [0, 8]})"), eight),
             {"tensor 't'", "nested"});
  expect_bad(st_file(deep, ""), {"not a JSON object"});

  try {
    read_safetensors(test_dir() + "/missing.safetensors");
    FAIL_CHECK("no BadInput for a missing file");
  } catch (const BadInput& e) {
    CHECK(std::string(e.what()).find("missing.safetensors") != std::string::npos);
  }
}

TEST_CASE("every truncation or corrupted header byte of a valid file is rejected, never a crash") {
  TensorFile file;
  file.tensors["w"] = Tensor::from({2, 2}, {1, 2, 3, 4});
  file.metadata["k"] = "v";
  const std::string good = encode_safetensors(file);
  for (size_t n = 0; n < good.size(); ++n)
    CHECK_THROWS_AS(parse_safetensors("cut.safetensors", good.data(), n), BadInput);

  // Random bytes written over the length and the header: a clean BadInput or a consistent file.
  testing_support::TestRng rng(11);
  const int header_end = int(good.size()) - 16;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string bad = good;
    bad[size_t(rng.integer(0, header_end - 1))] = char(rng.integer(0, 255));
    try {
      TensorFile f = parse_safetensors("flipped.safetensors", bad.data(), bad.size());
      for (const auto& entry : f.tensors) CHECK(entry.second.numel() * 4 <= int64_t(bad.size()));
    } catch (const BadInput& e) {
      CHECK(std::string(e.what()).find("flipped.safetensors") != std::string::npos);
    }
  }
}

TEST_CASE("check_tensor_set names the first missing, mis-shaped or unexpected tensor") {
  const std::map<std::string, Shape> expected = {{"fc/bias", {10}}, {"fc/weight", {10, 20}}};
  std::map<std::string, Tensor> got = {{"fc/bias", Tensor::zeros({10})}, {"fc/weight", Tensor::zeros({10, 20})}};
  CHECK_NOTHROW(check_tensor_set("ck.safetensors", expected, got));

  auto message = [&](const std::map<std::string, Tensor>& tensors) {
    try {
      check_tensor_set("ck.safetensors", expected, tensors);
    } catch (const BadInput& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  auto contains = [](const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; };

  std::map<std::string, Tensor> missing = got;
  missing.erase("fc/weight");
  std::string m = message(missing);
  CHECK_MESSAGE((contains(m, "ck.safetensors") && contains(m, "lacks tensor 'fc/weight'") && contains(m, "(10, 20)")),
                m);

  std::map<std::string, Tensor> misshaped = got;
  misshaped["fc/weight"] = Tensor::zeros({20, 10});
  m = message(misshaped);
  CHECK_MESSAGE((contains(m, "'fc/weight' has shape (20, 10)") && contains(m, "expects (10, 20)")), m);

  std::map<std::string, Tensor> extra = got;
  extra["fc2/weight"] = Tensor::zeros({3});
  m = message(extra);
  CHECK_MESSAGE((contains(m, "ck.safetensors") && contains(m, "'fc2/weight'") && contains(m, "does not have")), m);
}

TEST_CASE("an atomic write that fails midway leaves the old file intact and no temporary file") {
  const std::string dir = test_dir() + "/atomic";
  fs::create_directories(dir);
  const std::string path = dir + "/ck.safetensors";
  TensorFile old_file;
  old_file.tensors["w"] = Tensor::from({3}, {1, 2, 3});
  write_safetensors(path, old_file);
  const std::string before = read_all(path);

  CHECK_THROWS_AS(write_file_atomic(path,
                                    [](std::ostream& out) {
                                      out << std::string(3 << 20, 'x');  // past the buffer: bytes reach the disk
                                      throw std::runtime_error("writer failed");
                                    }),
                  std::runtime_error);
  CHECK(read_all(path) == before);
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    ++entries;
    CHECK_MESSAGE(e.path().filename() == "ck.safetensors", "left behind: " << e.path());
  }
  CHECK(entries == 1);

  // A directory that does not exist: BadInput naming the path.
  const std::string nowhere = dir + "/no/such/dir/ck.safetensors";
  try {
    write_safetensors(nowhere, old_file);
    FAIL_CHECK("no BadInput");
  } catch (const BadInput& e) {
    CHECK_MESSAGE(std::string(e.what()).find(nowhere) != std::string::npos, e.what());
  }

  // A successful rewrite replaces the content.
  TensorFile new_file;
  new_file.tensors["w"] = Tensor::from({2}, {7, 8});
  write_safetensors(path, new_file);
  CHECK(read_safetensors(path).tensors.at("w").to_vector() == std::vector<float>{7, 8});
}
