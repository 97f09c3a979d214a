// The entry points of device_functions.h and shared memory: forwarded to the block running on this OS thread.
#include <string>

#include "kernels/simt/block.h"
#include "kernels/simt/runtime.h"

namespace simt {
namespace detail {
namespace {

[[noreturn, gnu::cold, gnu::noinline]] void outside_a_kernel(const char* what, const char* file, int line) {
  throw Error(std::string(what) + " called outside a kernel" +
              (file ? " at " + std::string(file) + ":" + std::to_string(line) : std::string()));
}

inline BlockRunner& running_block(const char* what, const char* file, int line) {
  BlockRunner* runner = BlockRunner::running();
  if (!runner) outside_a_kernel(what, file, line);
  return *runner;
}

const char* barrier_name(BarrierKind kind) {
  switch (kind) {
    case BarrierKind::plain:
      return "__syncthreads";
    case BarrierKind::count:
      return "__syncthreads_count";
    case BarrierKind::all:
      return "__syncthreads_and";
    case BarrierKind::any:
      return "__syncthreads_or";
  }
  return "__syncthreads";
}

}  // namespace

int block_barrier(BarrierKind kind, int predicate, const char* file, int line) {
  const char* what = barrier_name(kind);
  return running_block(what, file, line).barrier(kind, predicate, CallSite{what, file, line});
}

uint64_t warp_shuffle(const char* op, ShuffleMode mode, unsigned mask, uint64_t value, int operand, int width,
                      const char* file, int line) {
  return running_block(op, file, line).shuffle(mode, mask, value, operand, width, CallSite{op, file, line});
}

uint64_t warp_vote(const char* op, unsigned mask, int predicate, const char* file, int line) {
  return running_block(op, file, line).vote(mask, predicate, CallSite{op, file, line});
}

void warp_sync(unsigned mask, const char* file, int line) {
  running_block("__syncwarp", file, line).syncwarp(mask, CallSite{"__syncwarp", file, line});
}

unsigned active_lanes() {
  return running_block("__activemask", nullptr, 0).active_lanes();
}

}  // namespace detail

void* shared_alloc(const void* key, size_t bytes, size_t align, const char* name) {
  return detail::running_block("shared memory", nullptr, 0).arena().get(key, bytes, align, name);
}

void* dynamic_shared_base() {
  return detail::running_block("dynamic shared memory", nullptr, 0).arena().dynamic_base();
}

}  // namespace simt
