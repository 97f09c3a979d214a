#pragma once
// Shared memory of one block on the host: dynamic shared memory first, then each static array, each followed by a
// guard zone; everything poisoned with 0xFF bytes (NaN floats) at block start, so a read of memory no thread of the
// block wrote shows up, and a write past an array's end is caught when the block ends.
#include <cstddef>
#include <string>
#include <vector>

namespace simt::detail {

class SharedArena {
 public:
  static constexpr size_t kStaticLimit = 48 * 1024;  // static __shared__ per block on every GPU we target
  static constexpr size_t kTotalLimit = 227 * 1024;  // static + dynamic with the opt-in attribute (sm_90)

  SharedArena();
  ~SharedArena();
  SharedArena(const SharedArena&) = delete;
  SharedArena& operator=(const SharedArena&) = delete;

  void begin_block(size_t dynamic_bytes);
  void* dynamic_base() const { return memory_; }
  // The block's array for `key`; throws Error over the limits.
  void* get(const void* key, size_t bytes, size_t align, const char* name);
  // An empty string, or what was written past which array's end.
  std::string check_guards() const;

 private:
  struct Array {
    const void* key;
    unsigned char* data;
    size_t bytes;
    const char* name;
  };
  unsigned char* place(size_t bytes, size_t align);

  unsigned char* memory_ = nullptr;
  size_t capacity_ = 0;
  size_t used_ = 0;
  size_t dynamic_bytes_ = 0;
  size_t static_bytes_ = 0;
  std::vector<Array> arrays_;
};

}  // namespace simt::detail
