#include "engine/npy.h"

#include <cmath>
#include <cstring>
#include <set>
#include <type_traits>

#include "base/atomic_file.h"
#include "base/errors.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, ".npy IO copies little-endian data as it is");

namespace massmap {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
constexpr int64_t kMaxElements = int64_t(1) << 40;  // far beyond any real array; stops absurd allocations
constexpr size_t kAlignment = 64;                   // numpy pads the header so the data starts 64-byte aligned

[[noreturn]] void fail(const std::string& name, const std::string& reason) {
  throw BadInput("'" + name + "' is not a valid .npy file: " + reason);
}

uint32_t read_le(const char* p, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | uint8_t(p[i]);
  return v;
}

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  Shape shape;
};

// The header is a Python dict literal, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
// This parses exactly that grammar (string keys, a string, a bool, a tuple of non-negative integers), nothing
// more: no evaluation, and every read is bounds-checked.
class HeaderParser {
 public:
  HeaderParser(const std::string& name, const char* begin, const char* end)
      : name_(name), begin_(begin), p_(begin), end_(end) {}

  NpyHeader parse() {
    NpyHeader header;
    std::set<std::string> seen;
    skip_space();
    expect('{');
    for (;;) {
      skip_space();
      if (peek() == '}') break;
      std::string key = parse_string();
      if (!seen.insert(key).second) fail(name_, "header has the key '" + key + "' twice");
      skip_space();
      expect(':');
      skip_space();
      if (key == "descr") {
        header.descr = parse_string();
      } else if (key == "fortran_order") {
        header.fortran_order = parse_bool();
      } else if (key == "shape") {
        header.shape = parse_shape();
      } else {
        fail(name_, "header has an unknown key '" + key + "'");
      }
      skip_space();
      if (peek() == ',') {
        ++p_;
        continue;
      }
      if (peek() != '}') expect(',');  // fails, naming the offset
      break;
    }
    ++p_;  // '}'

    skip_space();
    if (p_ != end_) fail(name_, "unexpected text after the header dictionary");
    for (const char* key : {"descr", "fortran_order", "shape"})
      if (!seen.count(key)) fail(name_, std::string("header lacks the key '") + key + "'");
    return header;
  }

 private:
  char peek() {
    if (p_ == end_) fail(name_, "header ends early");
    return *p_;
  }
  void expect(char c) {
    if (peek() != c) fail(name_, std::string("header: expected '") + c + "' at offset " + offset());
    ++p_;
  }
  std::string offset() const { return std::to_string(p_ - begin_); }
  void skip_space() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }

  std::string parse_string() {
    char quote = peek();
    if (quote != '\'' && quote != '"') fail(name_, "header: expected a quoted string");
    const char* start = ++p_;
    while (peek() != quote) {
      if (*p_ == '\\') fail(name_, "header: escapes in strings are not supported");
      ++p_;
    }
    return std::string(start, p_++);
  }

  bool parse_bool() {
    for (const auto& [word, value] : {std::pair<const char*, bool>{"True", true}, {"False", false}}) {
      size_t n = std::strlen(word);
      if (size_t(end_ - p_) >= n && std::memcmp(p_, word, n) == 0) {
        p_ += n;
        return value;
      }
    }
    fail(name_, "header: fortran_order must be True or False");
  }

  int64_t parse_dimension() {
    if (peek() == '-') fail(name_, "header: shape has a negative dimension");
    if (*p_ < '0' || *p_ > '9') fail(name_, "header: shape must be a tuple of integers");
    int64_t value = 0;
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9') {
      value = value * 10 + (*p_++ - '0');
      if (value > kMaxElements) fail(name_, "header: shape has an absurd dimension (more than 2^40)");
    }
    if (p_ != end_ && *p_ == 'L') ++p_;  // Python 2 long literal
    return value;
  }

  // "()", "(5,)", "(2, 3)", "(2, 3,)"
  Shape parse_shape() {
    Shape shape;
    expect('(');
    skip_space();
    while (peek() != ')') {
      shape.push_back(parse_dimension());
      skip_space();
      if (peek() == ',') {
        ++p_;
        skip_space();
      } else if (peek() != ')') {
        fail(name_, "header: shape must be a tuple of integers");
      }
    }
    ++p_;
    return shape;
  }

  const std::string& name_;
  const char* begin_;
  const char* p_;
  const char* end_;
};

int64_t checked_numel(const std::string& name, const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d != 0 && n > kMaxElements / d) fail(name, "shape " + shape_str(shape) + " has more than 2^40 elements");
    n *= d;
  }
  return n;
}

template <typename T>
T load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Calls f(value) for each element of the array, read with the array's C type.
template <typename F>
void for_each_value(const NpyArray& a, F&& f) {
  const char* p = a.bytes.data();
  const size_t n = a.bytes.size();
  if (a.dtype == "<f4") {
    for (size_t i = 0; i < n; i += 4) f(load<float>(p + i));
  } else if (a.dtype == "<f8") {
    for (size_t i = 0; i < n; i += 8) f(load<double>(p + i));
  } else if (a.dtype == "<i4") {
    for (size_t i = 0; i < n; i += 4) f(load<int32_t>(p + i));
  } else if (a.dtype == "<i8") {
    for (size_t i = 0; i < n; i += 8) f(load<int64_t>(p + i));
  } else if (a.dtype == "|u1") {
    for (size_t i = 0; i < n; i += 1) f(load<uint8_t>(p + i));
  } else if (a.dtype == "<u2") {
    for (size_t i = 0; i < n; i += 2) f(load<uint16_t>(p + i));
  }
}

std::string header_text(const Shape& shape) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dims += ",";
  return "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
}

}  // namespace

size_t npy_item_size(const std::string& dtype, const std::string& file) {
  if (dtype == "<f4" || dtype == "<i4") return 4;
  if (dtype == "<f8" || dtype == "<i8") return 8;
  if (dtype == "|u1") return 1;
  if (dtype == "<u2") return 2;
  if (!dtype.empty() && dtype[0] == '>')
    fail(file, "big-endian dtype '" + dtype + "' is not supported; save it little-endian");
  fail(file, "unsupported dtype '" + dtype + "' (supported: <f4 <f8 <i4 <i8 |u1 <u2)");
}

NpyArray parse_npy(const std::string& name, const char* data, size_t size) {
  if (size < kMagicSize + 2 || std::memcmp(data, kMagic, kMagicSize) != 0)
    fail(name, "bad magic (not a NumPy array file)");
  const int major = uint8_t(data[6]);
  if (major < 1 || major > 3)
    fail(name, "unsupported format version " + std::to_string(major) + "." + std::to_string(uint8_t(data[7])));
  const int length_bytes = major == 1 ? 2 : 4;
  const size_t prefix = kMagicSize + 2 + size_t(length_bytes);
  if (size < prefix) fail(name, "file ends inside the header length");
  const size_t header_length = read_le(data + kMagicSize + 2, length_bytes);
  if (header_length > size - prefix)
    fail(name, "header length " + std::to_string(header_length) + " runs past the end of the file (" +
                   std::to_string(size) + " bytes)");
  const char* header_begin = data + prefix;
  NpyHeader header = HeaderParser(name, header_begin, header_begin + header_length).parse();
  if (header.fortran_order) fail(name, "fortran_order True is not supported; save a C-ordered array");

  NpyArray array;
  array.dtype = header.descr;
  array.shape = header.shape;
  const size_t item = npy_item_size(array.dtype, name);
  const size_t needed = size_t(checked_numel(name, array.shape)) * item;
  const size_t available = size - prefix - header_length;
  if (available < needed)
    fail(name, "data is truncated: shape " + shape_str(array.shape) + " of " + array.dtype + " needs " +
                   std::to_string(needed) + " bytes, the file holds " + std::to_string(available));
  if (available > needed)
    fail(name,
         std::to_string(available - needed) + " unexpected bytes after the data of shape " + shape_str(array.shape));
  const char* payload = header_begin + header_length;
  array.bytes.assign(payload, payload + needed);
  return array;
}

NpyArray read_npy(const std::string& path) {
  std::vector<char> bytes = read_file_bytes(path);  // [file size]
  return parse_npy(path, bytes.data(), bytes.size());
}

Tensor read_npy_float(const std::string& path) {
  NpyArray array = read_npy(path);
  Tensor t(array.shape);
  float* out = t.data();
  if (array.dtype == "<f4") {
    if (!array.bytes.empty()) std::memcpy(out, array.bytes.data(), array.bytes.size());  // data() may be null
  } else {
    for_each_value(array, [&](auto v) { *out++ = float(v); });
  }
  return t;
}

std::vector<int64_t> read_npy_int(const std::string& path) {
  NpyArray array = read_npy(path);
  std::vector<int64_t> values;  // [numel]
  values.reserve(array.bytes.size() / npy_item_size(array.dtype, path));
  for_each_value(array, [&](auto v) {
    if constexpr (std::is_floating_point_v<decltype(v)>) {
      // 2^63 is exact in double; values at or beyond it do not fit int64.
      if (!std::isfinite(v) || v != std::floor(v) || std::fabs(double(v)) >= 9223372036854775808.0)
        throw BadInput("'" + path + "': value " + std::to_string(v) + " at index " + std::to_string(values.size()) +
                       " is not a whole number; integer labels were expected");
    }
    values.push_back(int64_t(v));
  });
  return values;
}

std::string encode_npy(const Tensor& t) {
  if (!t.defined()) throw Error("encode_npy: the tensor is undefined");
  if (t.device() != Device::cpu) throw Error("encode_npy: the tensor is not on the CPU");
  std::string header = header_text(t.shape());
  // The header is padded with spaces and ends in '\n' so that prefix + header is a multiple of 64.
  auto padded_length = [&](size_t prefix) {
    return (prefix + header.size() + 1 + kAlignment - 1) / kAlignment * kAlignment - prefix;
  };
  const bool version2 = padded_length(10) > 65535;  // version 1.0 stores the header length in 16 bits
  const size_t prefix = version2 ? 12 : 10;
  const size_t padded = padded_length(prefix);
  header.append(padded - header.size() - 1, ' ');
  header += '\n';

  std::string out(kMagic, kMagicSize);
  out += char(version2 ? 2 : 1);
  out += char(0);
  for (size_t i = 0; i < prefix - kMagicSize - 2; ++i) out += char((padded >> (8 * i)) & 0xff);
  out += header;
  out.append(reinterpret_cast<const char*>(t.data()), size_t(t.numel()) * sizeof(float));
  return out;
}

void write_npy(const std::string& path, const Tensor& t) {
  std::string bytes = encode_npy(t);
  write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace massmap
