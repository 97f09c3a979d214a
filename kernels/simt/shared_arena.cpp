// The per-block shared-memory arena of kernels/simt.
#include "kernels/simt/shared_arena.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "kernels/simt/fiber.h"
#include "kernels/simt/runtime.h"

#if MASSMAP_SIMT_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace simt::detail {
namespace {

constexpr size_t kGuardBytes = 64;
constexpr unsigned char kGuardByte = 0xa5;
constexpr unsigned char kPoisonByte = 0xff;  // a float of four 0xff bytes is a NaN
constexpr size_t kMaxArrays = 256;

size_t round_up(size_t n, size_t align) {
  return (n + align - 1) / align * align;
}

void poison_for_asan(void* p, size_t bytes) {
#if MASSMAP_SIMT_ASAN
  ASAN_POISON_MEMORY_REGION(p, bytes);
#else
  (void)p, (void)bytes;
#endif
}
void unpoison_for_asan(void* p, size_t bytes) {
#if MASSMAP_SIMT_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, bytes);
#else
  (void)p, (void)bytes;
#endif
}

}  // namespace

SharedArena::SharedArena() {
  capacity_ = kTotalLimit + kMaxArrays * (kGuardBytes + 256);
  memory_ = static_cast<unsigned char*>(std::aligned_alloc(256, round_up(capacity_, 256)));
  if (!memory_) throw std::bad_alloc();
  poison_for_asan(memory_, capacity_);
  arrays_.reserve(16);
}

SharedArena::~SharedArena() {
  unpoison_for_asan(memory_, capacity_);
  std::free(memory_);
}

unsigned char* SharedArena::place(size_t bytes, size_t align) {
  unsigned char* data = memory_ + round_up(used_, align < 16 ? 16 : align);
  unsigned char* guard = data + bytes;
  used_ = static_cast<size_t>(guard + kGuardBytes - memory_);
  unpoison_for_asan(data, bytes);
  std::memset(data, kPoisonByte, bytes);
#if !MASSMAP_SIMT_ASAN  // under AddressSanitizer the guard stays poisoned: any access is reported where it happens
  std::memset(guard, kGuardByte, kGuardBytes);
#endif
  return data;
}

void SharedArena::begin_block(size_t dynamic_bytes) {
  if (used_ > 0) poison_for_asan(memory_, used_);
  used_ = 0;
  static_bytes_ = 0;
  dynamic_bytes_ = dynamic_bytes;
  arrays_.clear();
  place(dynamic_bytes, 16);
}

void* SharedArena::get(const void* key, size_t bytes, size_t align, const char* name) {
  for (const Array& a : arrays_)
    if (a.key == key) return a.data;
  if (static_bytes_ + bytes > kStaticLimit || static_bytes_ + bytes + dynamic_bytes_ > kTotalLimit) {
    throw Error("shared memory '" + std::string(name ? name : "?") + "' (" + std::to_string(bytes) +
                " bytes) exceeds the limits: static " + std::to_string(static_bytes_ + bytes) + " bytes (limit " +
                std::to_string(kStaticLimit) + "), dynamic " + std::to_string(dynamic_bytes_) + " bytes, total limit " +
                std::to_string(kTotalLimit));
  }
  if (arrays_.size() >= kMaxArrays || used_ + align + bytes + kGuardBytes > capacity_)
    throw Error("too many shared memory declarations in one block");
  static_bytes_ += bytes;
  unsigned char* data = place(bytes, align);
  arrays_.push_back(Array{key, data, bytes, name});
  return data;
}

std::string SharedArena::check_guards() const {
#if !MASSMAP_SIMT_ASAN
  auto overwritten = [](const unsigned char* guard) {
    for (size_t i = 0; i < kGuardBytes; ++i)
      if (guard[i] != kGuardByte) return static_cast<long>(i);
    return -1L;
  };
  long at = overwritten(memory_ + dynamic_bytes_);
  if (at >= 0) {
    return "dynamic shared memory (" + std::to_string(dynamic_bytes_) + " bytes) was written " + std::to_string(at) +
           " bytes past its end";
  }
  for (const Array& a : arrays_) {
    at = overwritten(a.data + a.bytes);
    if (at >= 0) {
      return "shared memory '" + std::string(a.name ? a.name : "?") + "' (" + std::to_string(a.bytes) +
             " bytes) was written " + std::to_string(at) + " bytes past its end";
    }
  }
#endif
  return {};
}

}  // namespace simt::detail
