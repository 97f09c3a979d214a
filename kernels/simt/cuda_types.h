#pragma once
// The CUDA vocabulary of the host (simt) build: qualifiers, vector types (dim3, float4, ...) and the built-in
// variables threadIdx / blockIdx / blockDim / gridDim. Included through kernels/simt/runtime.h.
//
// With the CUDA toolkit present only its <vector_types.h> is used (exact layout and alignment of the GPU build);
// cuda_runtime.h is never included on the host side, it would clash with this shim.

// Defined before vector_types.h, whose crt/host_defines.h keeps a definition that already exists.
#define __host__
#define __device__
#define __global__

#if MASSMAP_HAVE_VECTOR_TYPES
#include <vector_types.h>
#else
#define __align__(n) __attribute__((aligned(n)))

struct char4 {
  signed char x, y, z, w;
};
struct uchar4 {
  unsigned char x, y, z, w;
};
struct __align__(8) int2 {
  int x, y;
};
struct int3 {
  int x, y, z;
};
struct __align__(16) int4 {
  int x, y, z, w;
};
struct __align__(8) uint2 {
  unsigned int x, y;
};
struct uint3 {
  unsigned int x, y, z;
};
struct __align__(16) uint4 {
  unsigned int x, y, z, w;
};
struct __align__(8) float2 {
  float x, y;
};
struct float3 {
  float x, y, z;
};
struct __align__(16) float4 {
  float x, y, z, w;
};
struct __align__(16) double2 {
  double x, y;
};
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};
#endif

// host_defines.h (pulled in by vector_types.h) gives these GPU meanings; on the host they are plain C++.
#undef __forceinline__
#define __forceinline__ inline
#undef __constant__
#define __constant__
#undef __restrict__
#define __restrict__ __restrict
#define __launch_bounds__(...)
// Shared memory needs a per-block arena on the host: declare it with MASSMAP_SHARED (kernels/cuda/portable.h).
#undef __shared__
#define __shared__ use_MASSMAP_SHARED_or_MASSMAP_DYNAMIC_SHARED_instead_of___shared__

static_assert(sizeof(float4) == 16 && alignof(float4) == 16, "float4 must match the GPU layout");
static_assert(sizeof(dim3) == 12, "dim3 must match the GPU layout");

inline int2 make_int2(int x, int y) {
  return int2{x, y};
}
inline int4 make_int4(int x, int y, int z, int w) {
  return int4{x, y, z, w};
}
inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) {
  return uint3{x, y, z};
}
inline float2 make_float2(float x, float y) {
  return float2{x, y};
}
inline float3 make_float3(float x, float y, float z) {
  return float3{x, y, z};
}
inline float4 make_float4(float x, float y, float z, float w) {
  return float4{x, y, z, w};
}

// The built-in variables. Each OS thread runs one block at a time, one CUDA thread (a fiber) at a time: the
// scheduler sets these before it switches a fiber in.
inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;
constexpr int warpSize = 32;
