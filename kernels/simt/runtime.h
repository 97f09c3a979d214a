#pragma once
// kernels/simt: executes CUDA kernel source on the host, so every CUDA kernel is tested where there is no GPU.
//
// Each CUDA thread is a fiber with its own stack; one OS thread runs one block at a time, switching between the
// block's fibers at barriers (__syncthreads, warp intrinsics) in a chosen order (forward, reverse or seeded
// random), so a missing barrier shows up as a wrong result. Shared memory comes from a per-block arena poisoned
// with 0xFF bytes (NaN floats); device memory has guard zones checked after every launch. Divergent barriers,
// deadlocks, reads of lanes that did not take part, exceptions inside kernels and launches over the GPU's limits
// are reported as simt::Error naming the kernel, the block, the thread and the source lines.
//
// Semantics a kernel writer meets:
// - __syncthreads releases when every thread of the block that has not exited arrived, at the same call site.
// - A warp intrinsic waits for the lanes of its mask that exist and have not exited, each at an intrinsic of the
//   same name with the same mask (call sites may differ, as for __syncwarp on a GPU). Lanes of a partial last warp
//   that do not exist take no part; a shuffle that reads a lane which does not exist, has exited or is not in the
//   mask is an error (undefined on a GPU), so clamp the source lane instead (see tests/simt_test.cpp).
// - Threads switch only at barriers and warp intrinsics, so atomics are needed only between blocks, which run on
//   several OS threads at once.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "kernels/simt/cuda_types.h"
#include "kernels/simt/device_functions.h"

namespace simt {

// Everything the runtime reports.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The order in which the runnable fibers of a block run in each round (between barriers).
enum class Order { forward, reverse, random };
struct Schedule {
  Order order = Order::forward;
  uint64_t seed = 0;  // for Order::random: a different permutation per round and block, all from this seed
};
// Default: environment MASSMAP_SIMT_SCHEDULE = forward | reverse | random | random:SEED, else forward.
void set_schedule(Schedule schedule);
Schedule schedule();
std::string describe(Schedule schedule);  // "forward", "reverse", "random(12345)"

// OS threads that run blocks (the launching thread is one of them). Default: environment MASSMAP_SIMT_THREADS, else
// std::thread::hardware_concurrency().
void set_worker_threads(int n);
int worker_threads();

// Device memory: guard zones on both sides, content poisoned with 0xFF bytes (NaN floats) on allocation.
void* device_malloc(size_t bytes);
void device_free(void* p);  // nullptr is ignored; any other pointer not from device_malloc is an Error
// Throws Error naming the allocation and the side if a guard zone of a live allocation was overwritten (and repairs
// it). Runs after every launch.
void check_guards();
// Throws Error (starting with `what`) unless [p, p + bytes) lies inside one live allocation.
void check_device_range(const void* p, size_t bytes, const char* what);

// Shared memory of the running block: the array of the declaration identified by `key` (the first caller of the
// block allocates it from the block's arena, later callers get the same pointer). Used by MASSMAP_SIMT_SHARED.
void* shared_alloc(const void* key, size_t bytes, size_t align, const char* name = nullptr);
// The running block's dynamic shared memory (the launch's dynamic_shared_bytes, 16-byte aligned).
void* dynamic_shared_base();
template <typename T>
T* dynamic_shared() {
  return static_cast<T*>(dynamic_shared_base());
}

namespace detail {
// A launch, type-erased: run(closure) calls the kernel with its converted arguments.
struct KernelCall {
  const char* name;
  void (*run)(const void* closure);
  const void* closure;
};
void run_kernel(const KernelCall& call, dim3 grid, dim3 block, size_t dynamic_shared_bytes);
}  // namespace detail

// Runs kernel<<<grid, block, dynamic_shared_bytes>>>(args...) to completion, then checks the guard zones. Throws
// Error naming `name` for launches over the GPU's limits and for every error found while running.
template <typename... Params, typename... Args>
void launch(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, size_t dynamic_shared_bytes,
            Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args), "wrong number of kernel arguments");
  struct Closure {
    void (*kernel)(Params...);
    std::tuple<std::decay_t<Params>...> params;  // converted once; each thread gets its own copy
  };
  const Closure closure{kernel, std::tuple<std::decay_t<Params>...>(std::forward<Args>(args)...)};
  detail::KernelCall call;
  call.name = name;
  call.closure = &closure;
  call.run = [](const void* c) {
    const Closure& cl = *static_cast<const Closure*>(c);
    std::apply(cl.kernel, cl.params);
  };
  detail::run_kernel(call, grid, block, dynamic_shared_bytes);
}

}  // namespace simt

// A static shared-memory array of the running block: MASSMAP_SIMT_SHARED(float, tile, [32][33]); declares
// `float (&tile)[32][33]`. Only inside functions (kernels and device functions), as one declaration per statement.
#define MASSMAP_SIMT_SHARED(type, name, dims)    \
  static const char name##_simt_shared_key = 0;  \
  type(&name) dims = *static_cast<type(*) dims>( \
      ::simt::shared_alloc(&name##_simt_shared_key, sizeof(type dims), alignof(type dims), #name))
