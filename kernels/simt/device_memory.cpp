// Device memory of kernels/simt: host memory with guard zones on both sides, poisoned on allocation.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "kernels/simt/fiber.h"
#include "kernels/simt/runtime.h"

#if MASSMAP_SIMT_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace simt {
namespace {

constexpr size_t kGuardBytes = 256;          // each side; also the alignment of allocations, as cudaMalloc's
constexpr unsigned char kPoisonByte = 0xff;  // a float of four 0xff bytes is a NaN

// A pattern no ordinary store repeats over a whole guard (not all zeros, not NaN bytes).
unsigned char guard_byte(size_t i) {
  return static_cast<unsigned char>(0x5a ^ (i * 37));
}

struct Allocation {
  unsigned char* mapping;  // front guard starts here
  size_t bytes;
};

struct Registry {
  std::mutex mutex;
  std::map<uintptr_t, Allocation> live;  // by the address returned to the caller
};

Registry& registry() {
  static Registry r;
  return r;
}

std::string address(const void* p) {
  char text[32];
  std::snprintf(text, sizeof text, "%p", p);
  return text;
}

void fill_guard(unsigned char* guard) {
  for (size_t i = 0; i < kGuardBytes; ++i) guard[i] = guard_byte(i);
}

// The offset of the first overwritten byte of a guard, or -1.
[[maybe_unused]] long first_overwritten(const unsigned char* guard) {
  for (size_t i = 0; i < kGuardBytes; ++i)
    if (guard[i] != guard_byte(i)) return static_cast<long>(i);
  return -1;
}

// The live allocation that contains p, or nullptr (the caller holds the registry's mutex).
const std::pair<const uintptr_t, Allocation>* find_containing(Registry& r, const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = r.live.upper_bound(a);
  if (it == r.live.begin()) return nullptr;
  --it;
  if (a > it->first + it->second.bytes) return nullptr;
  return &*it;
}

}  // namespace

void* device_malloc(size_t bytes) {
  const size_t rounded = (bytes + kGuardBytes - 1) / kGuardBytes * kGuardBytes;
  const size_t total = kGuardBytes + rounded + kGuardBytes;
  auto* mapping = static_cast<unsigned char*>(std::aligned_alloc(kGuardBytes, total));
  if (!mapping) throw Error("simt: out of memory allocating " + std::to_string(bytes) + " bytes of device memory");
  unsigned char* data = mapping + kGuardBytes;
  fill_guard(mapping);
  std::memset(data, kPoisonByte, bytes);
  fill_guard(data + bytes);
#if MASSMAP_SIMT_ASAN  // AddressSanitizer reports any access to a guard where it happens, with the source line
  ASAN_POISON_MEMORY_REGION(mapping, kGuardBytes);
  ASAN_POISON_MEMORY_REGION(data + bytes, total - kGuardBytes - bytes);
#endif
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.live[reinterpret_cast<uintptr_t>(data)] = Allocation{mapping, bytes};
  return data;
}

void device_free(void* p) {
  if (!p) return;
  Allocation a;
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.live.find(reinterpret_cast<uintptr_t>(p));
    if (it == r.live.end())
      throw Error("simt::device_free(" + address(p) + "): not an address returned by device_malloc, or freed twice");
    a = it->second;
    r.live.erase(it);
  }
#if MASSMAP_SIMT_ASAN
  ASAN_UNPOISON_MEMORY_REGION(a.mapping, kGuardBytes + a.bytes + kGuardBytes);
#endif
  std::free(a.mapping);
}

void check_guards() {
#if !MASSMAP_SIMT_ASAN  // under AddressSanitizer the guards are poisoned: a write was already reported
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (const auto& [user, a] : r.live) {
    unsigned char* front = a.mapping;
    unsigned char* back = reinterpret_cast<unsigned char*>(user) + a.bytes;
    const long before = first_overwritten(front);
    const long after = first_overwritten(back);
    if (before < 0 && after < 0) continue;
    fill_guard(front);  // repaired, so one overrun is reported once
    fill_guard(back);
    const std::string what = "device memory " + address(reinterpret_cast<void*>(user)) + " (" +
                             std::to_string(a.bytes) + " bytes): guard zone ";
    if (after >= 0)
      throw Error(what + "after the end overwritten, first at byte " + std::to_string(a.bytes + after) +
                  " (one past the end is byte " + std::to_string(a.bytes) + ")");
    throw Error(what + "before the start overwritten, first at byte -" + std::to_string(kGuardBytes - before));
  }
#endif
}

void check_device_range(const void* p, size_t bytes, const char* what) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const auto* found = find_containing(r, p);
  if (!found) throw Error(std::string(what) + ": " + address(p) + " is not simt device memory");
  const size_t offset = reinterpret_cast<uintptr_t>(p) - found->first;
  if (offset + bytes > found->second.bytes) {
    throw Error(std::string(what) + ": " + std::to_string(bytes) + " bytes at byte " + std::to_string(offset) +
                " of device memory " + address(reinterpret_cast<void*>(found->first)) + " (" +
                std::to_string(found->second.bytes) + " bytes) run past its end");
  }
}

}  // namespace simt
