#pragma once
// NumPy .npy arrays, for debugging and interchange (numpy.save / numpy.load). Reads format versions 1.0, 2.0 and
// 3.0 with little-endian dtypes <f4 <f8 <i4 <i8 |u1 <u2 in C order; writes float32 tensors as version 1.0 (2.0
// when the header would not fit). Every malformed input is a BadInput naming the file and what is wrong.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace massmap {

struct NpyArray {
  std::string dtype;        // as in the header: "<f4", "<f8", "<i4", "<i8", "|u1" or "<u2"
  Shape shape;              // empty for a 0-d array (one element)
  std::vector<char> bytes;  // [numel * item size] little-endian, C order
};

// Bytes per element of a supported dtype; BadInput for any other.
size_t npy_item_size(const std::string& dtype, const std::string& file);

// Parses a whole .npy file held in memory; `name` is used in error messages.
NpyArray parse_npy(const std::string& name, const char* data, size_t size);
NpyArray read_npy(const std::string& path);

// Any supported dtype converted to a float32 tensor of the array's shape.
Tensor read_npy_float(const std::string& path);
// Class labels, flattened: integer dtypes as they are, float dtypes only when every value is a whole number.
std::vector<int64_t> read_npy_int(const std::string& path);

// The .npy encoding of a float32 CPU tensor (dtype <f4).
std::string encode_npy(const Tensor& t);
// Writes encode_npy(t) to path atomically.
void write_npy(const std::string& path, const Tensor& t);

}  // namespace massmap
