#pragma once
// Internal to the CPU GEMM: a growable 64-byte-aligned float buffer for packed operands, kept between calls (OpenMP
// reuses its threads, so a thread_local one is allocated once per thread and size).
#include <cstddef>
#include <cstdlib>
#include <new>

namespace kernels {
namespace cpu {

class PackBuffer {
 public:
  PackBuffer() = default;
  PackBuffer(const PackBuffer&) = delete;
  PackBuffer& operator=(const PackBuffer&) = delete;
  ~PackBuffer() { std::free(data_); }
  float* get(size_t floats) {
    if (floats > size_) {
      std::free(data_);
      data_ = static_cast<float*>(std::aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64));
      if (!data_) throw std::bad_alloc();
      size_ = floats;
    }
    return data_;
  }

 private:
  float* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace cpu
}  // namespace kernels
