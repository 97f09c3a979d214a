#pragma once
// One kernel function per op and pass, templated on the device: the glue (shape structs from the node and its
// tensors) is written once, and only the final call differs. On the cpu it calls kernels::<cpu_ns>::fn (ref or
// the fast cpu path); on simt and cuda the launcher of the same name with the executor's stream appended.
#include <utility>

#include "engine/op.h"
#include "kernels/gpu.h"

#define MASSMAP_DISPATCH(D, cpu_ns, fn, call, ...)         \
  do {                                                     \
    if constexpr ((D) == ::massmap::Device::cpu) {         \
      ::kernels::cpu_ns::fn(__VA_ARGS__);                  \
    } else if constexpr ((D) == ::massmap::Device::simt) { \
      ::kernels::simt::fn(__VA_ARGS__, (call).stream);     \
    } else {                                               \
      ::kernels::cuda::fn(__VA_ARGS__, (call).stream);     \
    }                                                      \
  } while (0)

// A callable for an overloaded launcher (overload resolution happens at the call).
#define MASSMAP_OVERLOAD(fn) [&](auto&&... args) { return fn(std::forward<decltype(args)>(args)...); }

// Registers fn<cpu>, fn<simt> and, where the CUDA build exists, fn<cuda> as the kernels of `op`.
#ifdef MASSMAP_HAVE_CUDA
#define MASSMAP_REGISTER_ALL(op, fn)                                                      \
  do {                                                                                    \
    ::massmap::register_kernel(op, ::massmap::Device::cpu, fn<::massmap::Device::cpu>);   \
    ::massmap::register_kernel(op, ::massmap::Device::simt, fn<::massmap::Device::simt>); \
    ::massmap::register_kernel(op, ::massmap::Device::cuda, fn<::massmap::Device::cuda>); \
  } while (0)
#else
#define MASSMAP_REGISTER_ALL(op, fn)                                                      \
  do {                                                                                    \
    ::massmap::register_kernel(op, ::massmap::Device::cpu, fn<::massmap::Device::cpu>);   \
    ::massmap::register_kernel(op, ::massmap::Device::simt, fn<::massmap::Device::simt>); \
  } while (0)
#endif
