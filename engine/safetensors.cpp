#include "engine/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <vector>

#include "base/atomic_file.h"
#include "base/errors.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors IO copies little-endian data as it is");

namespace massmap {
namespace {

using nlohmann::json;

constexpr const char* kMetadataKey = "__metadata__";
constexpr int64_t kMaxElements = int64_t(1) << 40;  // far beyond any real tensor; stops absurd allocations

[[noreturn]] void fail(const std::string& file, const std::string& reason) {
  throw BadInput("'" + file + "' is not a valid safetensors file: " + reason);
}

[[noreturn]] void fail_tensor(const std::string& file, const std::string& tensor, const std::string& reason) {
  fail(file, "tensor '" + tensor + "' " + reason);
}

void write_le64(std::ostream& out, uint64_t v) {
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = char((v >> (8 * i)) & 0xff);
  out.write(bytes, 8);
}

// A short rendering of a header value for an error message. The header is untrusted: a deeply nested value
// would overflow the stack in dump(), and a huge one would flood the message.
std::string excerpt(const json& v) {
  if (v.is_structured())
    for (const json& element : v)
      if (element.is_structured()) return "(a nested " + std::string(v.type_name()) + ")";
  std::string text = v.dump();
  return text.size() <= 80 ? text : text.substr(0, 77) + "...";
}

uint64_t read_le64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | uint8_t(p[i]);
  return v;
}

// Header JSON padded with spaces to a multiple of 8, so the data starts 8-byte aligned.
std::string header_text(const TensorFile& file) {
  json header = json::object();
  uint64_t offset = 0;
  for (const auto& [name, t] : file.tensors) {
    if (name.empty() || name == kMetadataKey) throw Error("safetensors: invalid tensor name '" + name + "'");
    if (!t.defined() || t.device() != Device::cpu)
      throw Error("safetensors: tensor '" + name + "' is undefined or not on the CPU");
    const uint64_t bytes = uint64_t(t.numel()) * sizeof(float);
    header[name] = {{"dtype", "F32"}, {"shape", t.shape()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  if (!file.metadata.empty()) header[kMetadataKey] = file.metadata;
  std::string text;
  try {
    text = header.dump();  // keys sorted: deterministic
  } catch (const json::exception& e) {
    throw Error(std::string("safetensors: a tensor name or metadata entry is not valid UTF-8: ") + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

void write_to(std::ostream& out, const TensorFile& file) {
  const std::string header = header_text(file);
  write_le64(out, header.size());
  out << header;
  for (const auto& entry : file.tensors) {
    const Tensor& t = entry.second;
    out.write(reinterpret_cast<const char*>(t.data()), std::streamsize(t.numel() * sizeof(float)));
  }
}

// Parses the header JSON, failing on syntax errors and on any key that appears twice in one object (nlohmann
// would silently keep the last one, so a duplicated tensor name would go unnoticed).
json parse_header(const std::string& file, const char* begin, const char* end) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto watch_keys = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      open_objects.pop_back();
    } else if (event == json::parse_event_t::key && duplicate.empty() && !open_objects.empty()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second) duplicate = key;
    }
    return true;
  };
  json header;
  try {
    header = json::parse(begin, end, watch_keys);
  } catch (const json::exception& e) {
    std::string reason = e.what();
    if (reason.size() > 200) reason = reason.substr(0, 197) + "...";
    fail(file, "header is not valid JSON: " + reason);
  }
  if (!duplicate.empty()) fail(file, "header has the key '" + duplicate + "' twice");
  if (!header.is_object()) fail(file, "header is not a JSON object");
  return header;
}

// A non-negative JSON integer no larger than `limit`.
bool read_count(const json& v, uint64_t limit, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
  } else if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    *out = uint64_t(v.get<int64_t>());
  } else {
    return false;
  }
  return *out <= limit;
}

struct Entry {
  std::string name;
  Shape shape;
  uint64_t begin = 0, end = 0;  // byte range in the data section
};

Entry parse_entry(const std::string& file, const std::string& name, const json& info, uint64_t data_size) {
  if (name.empty()) fail(file, "a tensor has an empty name");  // the writer refuses one too
  if (!info.is_object()) fail_tensor(file, name, "is not described by a JSON object");
  for (const auto& item : info.items())
    if (item.key() != "dtype" && item.key() != "shape" && item.key() != "data_offsets")
      fail_tensor(file, name, "has an unknown key '" + item.key() + "'");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!info.contains(key)) fail_tensor(file, name, std::string("lacks '") + key + "'");

  const json& dtype = info["dtype"];
  if (!dtype.is_string()) fail_tensor(file, name, "has a dtype that is not a string");
  if (dtype != "F32") fail_tensor(file, name, "has dtype " + dtype.get<std::string>() + "; only F32 is supported");

  Entry entry;
  entry.name = name;
  const json& shape = info["shape"];
  if (!shape.is_array()) fail_tensor(file, name, "has a shape that is not an array");
  uint64_t numel = 1;
  for (const json& d : shape) {
    uint64_t dim = 0;
    if (d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0)
      fail_tensor(file, name, "has a negative dimension in its shape " + excerpt(shape));
    if (!read_count(d, uint64_t(kMaxElements), &dim))
      fail_tensor(file, name, "has an invalid dimension in its shape " + excerpt(shape));
    if (dim != 0 && numel > uint64_t(kMaxElements) / dim)
      fail_tensor(file, name, "has more than 2^40 elements: shape " + excerpt(shape));
    numel *= dim;
    entry.shape.push_back(int64_t(dim));
  }

  const json& offsets = info["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !read_count(offsets[0], data_size, &entry.begin) ||
      !read_count(offsets[1], data_size, &entry.end) || entry.begin > entry.end)
    fail_tensor(file, name,
                "has data_offsets " + excerpt(offsets) + " outside the data section of " + std::to_string(data_size) +
                    " bytes");
  if (entry.end - entry.begin != numel * sizeof(float))
    fail_tensor(file, name,
                "has data_offsets " + excerpt(offsets) + " spanning " + std::to_string(entry.end - entry.begin) +
                    " bytes; shape " + shape_str(entry.shape) + " of F32 needs " + std::to_string(numel * 4));
  return entry;
}

std::map<std::string, std::string> parse_metadata(const std::string& file, const json& metadata) {
  if (!metadata.is_object()) fail(file, "__metadata__ is not a JSON object");
  std::map<std::string, std::string> out;
  for (const auto& item : metadata.items()) {
    if (!item.value().is_string()) fail(file, "__metadata__ entry '" + item.key() + "' is not a string");
    out[item.key()] = item.value().get<std::string>();
  }
  return out;
}

// The tensors must tile the data section exactly: no overlap, no gap, nothing after the last one.
void check_layout(const std::string& file, std::vector<Entry> entries, uint64_t data_size) {
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
  uint64_t position = 0;
  std::string previous;
  for (const Entry& e : entries) {
    if (e.begin < position) fail_tensor(file, e.name, "overlaps tensor '" + previous + "' in the data section");
    if (e.begin > position)
      fail_tensor(
          file, e.name,
          "starts at byte " + std::to_string(e.begin) + " leaving a gap after byte " + std::to_string(position));
    position = e.end;
    previous = e.name;
  }
  if (position != data_size) fail(file, std::to_string(data_size - position) + " bytes after the last tensor's data");
}

}  // namespace

std::string encode_safetensors(const TensorFile& file) {
  std::ostringstream out;
  write_to(out, file);
  return std::move(out).str();
}

void write_safetensors(const std::string& path, const TensorFile& file) {
  write_file_atomic(path, [&](std::ostream& out) { write_to(out, file); });
}

TensorFile parse_safetensors(const std::string& name, const char* data, size_t size) {
  if (size < 8) fail(name, "file is shorter than the 8-byte header length");
  const uint64_t header_size = read_le64(data);
  if (header_size > size - 8)
    fail(name, "header length " + std::to_string(header_size) + " runs past the end of the file (" +
                   std::to_string(size) + " bytes)");
  const char* header_begin = data + 8;
  const json header = parse_header(name, header_begin, header_begin + header_size);
  const char* data_section = header_begin + header_size;
  const uint64_t data_size = size - 8 - header_size;

  TensorFile result;
  std::vector<Entry> entries;
  for (const auto& item : header.items()) {
    if (item.key() == kMetadataKey) {
      result.metadata = parse_metadata(name, item.value());
    } else {
      entries.push_back(parse_entry(name, item.key(), item.value(), data_size));
    }
  }
  check_layout(name, entries, data_size);
  for (const Entry& e : entries) {
    Tensor t(e.shape);
    std::memcpy(t.data(), data_section + e.begin, e.end - e.begin);
    result.tensors.emplace(e.name, std::move(t));
  }
  return result;
}

TensorFile read_safetensors(const std::string& path) {
  std::vector<char> bytes = read_file_bytes(path);  // [file size]
  return parse_safetensors(path, bytes.data(), bytes.size());
}

void check_tensor_set(const std::string& file, const std::map<std::string, Shape>& expected,
                      const std::map<std::string, Tensor>& got) {
  for (const auto& [name, shape] : expected) {
    auto found = got.find(name);
    if (found == got.end())
      throw BadInput("'" + file + "' lacks tensor '" + name + "' (the model expects shape " + shape_str(shape) + ")");
    if (found->second.shape() != shape)
      throw BadInput("'" + file + "': tensor '" + name + "' has shape " + shape_str(found->second.shape()) +
                     " but the model expects " + shape_str(shape));
  }
  for (const auto& [name, t] : got)
    if (!expected.count(name))
      throw BadInput("'" + file + "' has tensor '" + name + "' (shape " + shape_str(t.shape()) +
                     ") that the model does not have");
}

}  // namespace massmap
