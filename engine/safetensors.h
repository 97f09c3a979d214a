#pragma once
// Checkpoints in the safetensors format: an 8-byte little-endian header length N, N bytes of JSON header
// {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ..., "__metadata__": {...}} padded
// with spaces to a multiple of 8, then the tensors' raw little-endian data back to back (offsets count from the
// start of the data). Only F32 is read or written. Output is deterministic: tensors are laid out and listed in
// name order, so the same content always gives the same bytes.
#include <cstddef>
#include <map>
#include <string>

#include "engine/tensor.h"

namespace massmap {

struct TensorFile {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;  // "__metadata__": builder, options, preprocessing, classes
};

// The file's bytes; tensors must be defined CPU tensors and names non-empty and not "__metadata__".
std::string encode_safetensors(const TensorFile& file);
void write_safetensors(const std::string& path, const TensorFile& file);  // atomic

// Parses a whole file held in memory; `name` is used in error messages. Every malformed input is a BadInput
// naming the file and, where there is one, the tensor.
TensorFile parse_safetensors(const std::string& name, const char* data, size_t size);
TensorFile read_safetensors(const std::string& path);

// Compares loaded tensors with the names and shapes a model expects. Throws BadInput naming `file` and the first
// missing tensor, mis-shaped tensor (both shapes) or unexpected tensor, in name order.
void check_tensor_set(const std::string& file, const std::map<std::string, Shape>& expected,
                      const std::map<std::string, Tensor>& got);

}  // namespace massmap
