#pragma once
// Memory on the engine's devices: allocation through a caching allocator (GPU allocations are slow and training
// asks for the same sizes every step), and copies and fills between host and device. `cpu` memory is plain host
// memory; `simt` memory comes from the simt runtime (guard zones checked after every launch, NaN-poisoned);
// `cuda` memory from cudaMalloc.
#include <cstddef>

#include "engine/device.h"

namespace massmap {

void* device_allocate(Device device, size_t bytes);  // from the cache when a block of this size is free
void device_release(Device device, void* p);         // back to the cache
void device_empty_cache(Device device);              // frees the cached blocks
size_t device_cached_bytes(Device device);

// Synchronous copies (the default stream); host pointers are plain memory.
void copy_bytes(Device dst_device, void* dst, Device src_device, const void* src, size_t bytes);
void fill_floats(Device device, float* dst, float value, size_t count);

// Streams of GPU devices (one per executor); null on the cpu.
void* create_stream(Device device);
void destroy_stream(Device device, void* stream);
void synchronize_stream(Device device, void* stream);

}  // namespace massmap
