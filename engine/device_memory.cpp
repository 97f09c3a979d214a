#include "engine/device_memory.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "base/errors.h"
#include "kernels/gpu.h"

namespace massmap {

namespace {

// Calls the backend's function `fn` for a GPU device; cuda only where it was built.
#ifdef MASSMAP_HAVE_CUDA
#define MASSMAP_ON_GPU(device, fn, ...) \
  ((device) == Device::cuda ? kernels::cuda::fn(__VA_ARGS__) : kernels::simt::fn(__VA_ARGS__))
#else
#define MASSMAP_ON_GPU(device, fn, ...) kernels::simt::fn(__VA_ARGS__)
#endif

template <typename F>
auto device_call(Device device, const char* what, F&& f) {
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw DeviceError(std::string(device_name(device)) + ": " + what + ": " + e.what());
  }
}

void* raw_allocate(Device device, size_t bytes) {
  if (device == Device::cpu) {
    void* p = std::aligned_alloc(64, (std::max<size_t>(bytes, 1) + 63) / 64 * 64);  // never a 0-byte request
    if (!p) throw ResourceError("out of host memory allocating " + std::to_string(bytes) + " bytes");
    return p;
  }
  return device_call(device, "allocating device memory", [&] { return MASSMAP_ON_GPU(device, device_alloc, bytes); });
}

void raw_free(Device device, void* p) {
  if (device == Device::cpu) return std::free(p);
  device_call(device, "freeing device memory", [&] { MASSMAP_ON_GPU(device, device_free, p); });
}

// Free blocks by exact (rounded) size, per device. Blocks are never split: the executor asks for a handful of
// sizes (its arena and per-value buffers), so exact reuse covers it without fragmentation bookkeeping.
struct Cache {
  std::mutex mutex;
  std::multimap<size_t, void*> free_blocks;
  std::unordered_map<void*, size_t> sizes;  // every live or cached block
  size_t cached_bytes = 0;
};

Cache& cache_of(Device device) {
  // Never destroyed: cached blocks stay reachable until exit (no false leak reports) and no block is released
  // into a backend whose own state is already torn down.
  static Cache* caches = new Cache[3];
  return caches[int(device)];
}

size_t rounded(size_t bytes) {
  return (std::max<size_t>(bytes, 1) + 511) / 512 * 512;
}

}  // namespace

void* device_allocate(Device device, size_t bytes) {
  if (device == Device::cpu) return raw_allocate(device, bytes);  // malloc caches well enough
  const size_t size = rounded(bytes);
  Cache& c = cache_of(device);
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.find(size);
    if (it != c.free_blocks.end()) {
      void* p = it->second;
      c.free_blocks.erase(it);
      c.cached_bytes -= size;
      return p;
    }
  }
  void* p = raw_allocate(device, size);
  std::lock_guard<std::mutex> lock(c.mutex);
  c.sizes[p] = size;
  return p;
}

void device_release(Device device, void* p) {
  if (!p) return;
  if (device == Device::cpu) return raw_free(device, p);
  Cache& c = cache_of(device);
  std::lock_guard<std::mutex> lock(c.mutex);
  auto it = c.sizes.find(p);
  if (it == c.sizes.end()) throw Error(std::string("release of memory not allocated on ") + device_name(device));
  c.free_blocks.emplace(it->second, p);
  c.cached_bytes += it->second;
}

void device_empty_cache(Device device) {
  Cache& c = cache_of(device);
  std::lock_guard<std::mutex> lock(c.mutex);
  for (auto& [size, p] : c.free_blocks) {
    c.sizes.erase(p);
    raw_free(device, p);
  }
  c.free_blocks.clear();
  c.cached_bytes = 0;
}

size_t device_cached_bytes(Device device) {
  Cache& c = cache_of(device);
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.cached_bytes;
}

void copy_bytes(Device dst_device, void* dst, Device src_device, const void* src, size_t bytes) {
  if (bytes == 0) return;
  if (dst_device == Device::cpu && src_device == Device::cpu) {
    std::memcpy(dst, src, bytes);
  } else if (src_device == Device::cpu) {
    device_call(dst_device, "copy to device", [&] {
      MASSMAP_ON_GPU(dst_device, copy_to_device, dst, src, bytes, nullptr);
      MASSMAP_ON_GPU(dst_device, synchronize, nullptr);
    });
  } else if (dst_device == Device::cpu) {
    device_call(src_device, "copy to host", [&] {
      MASSMAP_ON_GPU(src_device, copy_to_host, dst, src, bytes, nullptr);
      MASSMAP_ON_GPU(src_device, synchronize, nullptr);
    });
  } else if (dst_device == src_device) {
    device_call(dst_device, "device copy", [&] {
      MASSMAP_ON_GPU(dst_device, copy_device_to_device, dst, src, bytes, nullptr);
      MASSMAP_ON_GPU(dst_device, synchronize, nullptr);
    });
  } else {  // between two GPU backends: through the host
    std::vector<char> staging(bytes);
    copy_bytes(Device::cpu, staging.data(), src_device, src, bytes);
    copy_bytes(dst_device, dst, Device::cpu, staging.data(), bytes);
  }
}

void fill_floats(Device device, float* dst, float value, size_t count) {
  if (device == Device::cpu) {
    for (size_t i = 0; i < count; ++i) dst[i] = value;
    return;
  }
  device_call(device, "fill", [&] {
    MASSMAP_ON_GPU(device, fill_device, dst, value, count, nullptr);
    MASSMAP_ON_GPU(device, synchronize, nullptr);
  });
}

void* create_stream(Device device) {
  if (device == Device::cpu) return nullptr;
  return device_call(device, "creating a stream", [&] { return MASSMAP_ON_GPU(device, create_stream); });
}

void destroy_stream(Device device, void* stream) {
  if (device == Device::cpu || !stream) return;
  try {
    MASSMAP_ON_GPU(device, destroy_stream, stream);
  } catch (...) {  // called from destructors
  }
}

void synchronize_stream(Device device, void* stream) {
  if (device == Device::cpu) return;
  device_call(device, "synchronising", [&] { MASSMAP_ON_GPU(device, synchronize, stream); });
}

}  // namespace massmap
