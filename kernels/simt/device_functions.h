#pragma once
// CUDA device functions on the host (simt): barriers, warp intrinsics, atomics, math and bit intrinsics.
// Barriers and warp intrinsics take the call site as trailing default arguments, so a divergent barrier, a
// deadlock or a read of a lane that did not take part is reported with the kernel's file:line.
#include <math.h>  // the C++ <math.h>: float overloads of exp, log, ... in the global namespace, as under nvcc

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/simt/cuda_types.h"

namespace simt::detail {

enum class BarrierKind : uint8_t { plain, count, all, any };  // __syncthreads, _count, _and, _or
// Waits until every live thread of the block arrived at this barrier; returns the reduction of `predicate`.
int block_barrier(BarrierKind kind, int predicate, const char* file, int line);

enum class ShuffleMode : uint8_t { idx, up, down, xor_ };
// A barrier over the lanes of `mask`; returns the value of the source lane that PTX shfl.sync picks.
uint64_t warp_shuffle(const char* op, ShuffleMode mode, unsigned mask, uint64_t value, int operand, int width,
                      const char* file, int line);
// A barrier over the lanes of `mask`; returns (lanes that took part << 32) | (lanes whose predicate was true).
uint64_t warp_vote(const char* op, unsigned mask, int predicate, const char* file, int line);
void warp_sync(unsigned mask, const char* file, int line);
unsigned active_lanes();

template <typename T>
inline uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "warp shuffles move up to 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  return bits;
}
template <typename T>
inline T from_bits(uint64_t bits) {
  T v;
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}
template <typename T, typename U>
inline T bit_cast(U v) {
  static_assert(sizeof(T) == sizeof(U), "same size");
  T out;
  std::memcpy(&out, &v, sizeof(T));
  return out;
}

// Atomic read-modify-write through a compare-and-swap loop on the value's bits (float, double, min, max).
template <typename T, typename F>
inline T atomic_update(T* address, F update) {
  using Bits = std::conditional_t<sizeof(T) == 8, uint64_t, uint32_t>;
  static_assert(sizeof(T) == sizeof(Bits), "4 or 8 bytes");
  Bits* bits = reinterpret_cast<Bits*>(address);
  Bits expected = __atomic_load_n(bits, __ATOMIC_RELAXED);
  for (;;) {
    const T old = bit_cast<T>(expected);
    const Bits desired = bit_cast<Bits>(static_cast<T>(update(old)));
    if (__atomic_compare_exchange_n(bits, &expected, desired, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) return old;
  }
}

}  // namespace simt::detail

// ---- barriers ----------------------------------------------------------------------------------------------------
inline void __syncthreads(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  simt::detail::block_barrier(simt::detail::BarrierKind::plain, 0, file, line);
}
inline int __syncthreads_count(int predicate, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return simt::detail::block_barrier(simt::detail::BarrierKind::count, predicate, file, line);
}
inline int __syncthreads_and(int predicate, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return simt::detail::block_barrier(simt::detail::BarrierKind::all, predicate, file, line);
}
inline int __syncthreads_or(int predicate, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return simt::detail::block_barrier(simt::detail::BarrierKind::any, predicate, file, line);
}

// ---- warp intrinsics ---------------------------------------------------------------------------------------------
inline void __syncwarp(unsigned mask = 0xffffffffu, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  simt::detail::warp_sync(mask, file, line);
}
inline unsigned __ballot_sync(unsigned mask, int predicate, const char* file = __builtin_FILE(),
                              int line = __builtin_LINE()) {
  return static_cast<unsigned>(simt::detail::warp_vote("__ballot_sync", mask, predicate, file, line));
}
inline int __all_sync(unsigned mask, int predicate, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  const uint64_t v = simt::detail::warp_vote("__all_sync", mask, predicate, file, line);
  return static_cast<uint32_t>(v) == static_cast<uint32_t>(v >> 32);
}
inline int __any_sync(unsigned mask, int predicate, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return static_cast<uint32_t>(simt::detail::warp_vote("__any_sync", mask, predicate, file, line)) != 0;
}
inline unsigned __activemask() {
  return simt::detail::active_lanes();
}

template <typename T>
inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize, const char* file = __builtin_FILE(),
                     int line = __builtin_LINE()) {
  using simt::detail::ShuffleMode;
  return simt::detail::from_bits<T>(simt::detail::warp_shuffle(
      "__shfl_sync", ShuffleMode::idx, mask, simt::detail::to_bits(var), src_lane, width, file, line));
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize, const char* file = __builtin_FILE(),
                        int line = __builtin_LINE()) {
  using simt::detail::ShuffleMode;
  return simt::detail::from_bits<T>(simt::detail::warp_shuffle(
      "__shfl_up_sync", ShuffleMode::up, mask, simt::detail::to_bits(var), static_cast<int>(delta), width, file, line));
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                          const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  using simt::detail::ShuffleMode;
  return simt::detail::from_bits<T>(simt::detail::warp_shuffle("__shfl_down_sync", ShuffleMode::down, mask,
                                                               simt::detail::to_bits(var), static_cast<int>(delta),
                                                               width, file, line));
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize, const char* file = __builtin_FILE(),
                         int line = __builtin_LINE()) {
  using simt::detail::ShuffleMode;
  return simt::detail::from_bits<T>(simt::detail::warp_shuffle(
      "__shfl_xor_sync", ShuffleMode::xor_, mask, simt::detail::to_bits(var), lane_mask, width, file, line));
}

// ---- atomics: real host atomics, since blocks run on several OS threads (relaxed, as on a GPU) --------------------
#define MASSMAP_SIMT_ATOMIC_INT(T)                                                                \
  inline T atomicAdd(T* address, T v) {                                                           \
    return __atomic_fetch_add(address, v, __ATOMIC_RELAXED);                                      \
  }                                                                                               \
  inline T atomicSub(T* address, T v) {                                                           \
    return __atomic_fetch_sub(address, v, __ATOMIC_RELAXED);                                      \
  }                                                                                               \
  inline T atomicExch(T* address, T v) {                                                          \
    return __atomic_exchange_n(address, v, __ATOMIC_RELAXED);                                     \
  }                                                                                               \
  inline T atomicAnd(T* address, T v) {                                                           \
    return __atomic_fetch_and(address, v, __ATOMIC_RELAXED);                                      \
  }                                                                                               \
  inline T atomicOr(T* address, T v) {                                                            \
    return __atomic_fetch_or(address, v, __ATOMIC_RELAXED);                                       \
  }                                                                                               \
  inline T atomicXor(T* address, T v) {                                                           \
    return __atomic_fetch_xor(address, v, __ATOMIC_RELAXED);                                      \
  }                                                                                               \
  inline T atomicCAS(T* address, T compare, T v) {                                                \
    __atomic_compare_exchange_n(address, &compare, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED); \
    return compare;                                                                               \
  }                                                                                               \
  inline T atomicMax(T* address, T v) {                                                           \
    return simt::detail::atomic_update(address, [v](T old) { return old < v ? v : old; });        \
  }                                                                                               \
  inline T atomicMin(T* address, T v) {                                                           \
    return simt::detail::atomic_update(address, [v](T old) { return v < old ? v : old; });        \
  }
MASSMAP_SIMT_ATOMIC_INT(int)
MASSMAP_SIMT_ATOMIC_INT(unsigned int)
MASSMAP_SIMT_ATOMIC_INT(unsigned long long)
MASSMAP_SIMT_ATOMIC_INT(long long)
#undef MASSMAP_SIMT_ATOMIC_INT

inline float atomicAdd(float* address, float v) {
  return simt::detail::atomic_update(address, [v](float old) { return old + v; });
}
inline double atomicAdd(double* address, double v) {
  return simt::detail::atomic_update(address, [v](double old) { return old + v; });
}
inline float atomicExch(float* address, float v) {
  return simt::detail::bit_cast<float>(
      __atomic_exchange_n(reinterpret_cast<uint32_t*>(address), simt::detail::bit_cast<uint32_t>(v), __ATOMIC_RELAXED));
}
// atomicInc / atomicDec wrap around at `limit`, as on a GPU.
inline unsigned atomicInc(unsigned* address, unsigned limit) {
  return simt::detail::atomic_update(address, [limit](unsigned old) { return old >= limit ? 0u : old + 1; });
}
inline unsigned atomicDec(unsigned* address, unsigned limit) {
  return simt::detail::atomic_update(address,
                                     [limit](unsigned old) { return (old == 0 || old > limit) ? limit : old - 1; });
}

inline void __threadfence() {
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}
inline void __threadfence_block() {
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}
inline void __threadfence_system() {
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

// ---- math: full precision host versions (results differ from a GPU's fast-math in the last bits) -----------------
inline float __expf(float x) {
  return std::exp(x);
}
inline float __exp10f(float x) {
  return std::pow(10.0f, x);
}
inline float __logf(float x) {
  return std::log(x);
}
inline float __log2f(float x) {
  return std::log2(x);
}
inline float __log10f(float x) {
  return std::log10(x);
}
inline float __powf(float x, float y) {
  return std::pow(x, y);
}
inline float __sinf(float x) {
  return std::sin(x);
}
inline float __cosf(float x) {
  return std::cos(x);
}
inline float __tanf(float x) {
  return std::tan(x);
}
inline float __tanhf(float x) {
  return std::tanh(x);
}
inline float __fdividef(float x, float y) {
  return x / y;
}
inline float __fadd_rn(float x, float y) {
  return x + y;
}
inline float __fsub_rn(float x, float y) {
  return x - y;
}
inline float __fmul_rn(float x, float y) {
  return x * y;
}
inline float __fdiv_rn(float x, float y) {
  return x / y;
}
inline float __frcp_rn(float x) {
  return 1.0f / x;
}
inline float __fsqrt_rn(float x) {
  return std::sqrt(x);
}
inline float __frsqrt_rn(float x) {
  return 1.0f / std::sqrt(x);
}
inline float rsqrtf(float x) {
  return 1.0f / std::sqrt(x);
}
inline double rsqrt(double x) {
  return 1.0 / std::sqrt(x);
}
inline float __fmaf_rn(float x, float y, float z) {
  return std::fma(x, y, z);
}
inline double __fma_rn(double x, double y, double z) {
  return std::fma(x, y, z);
}
inline float __saturatef(float x) {
  return x >= 1.0f ? 1.0f : (x > 0.0f ? x : 0.0f);
}  // NaN -> 0, as on a GPU
inline int __float2int_rn(float x) {
  return static_cast<int>(std::nearbyint(x));
}
inline int __float2int_rz(float x) {
  return static_cast<int>(x);
}
inline int __float2int_rd(float x) {
  return static_cast<int>(std::floor(x));
}
inline int __float2int_ru(float x) {
  return static_cast<int>(std::ceil(x));
}
inline unsigned __float2uint_rn(float x) {
  return static_cast<unsigned>(std::nearbyint(x));
}
inline float __int2float_rn(int x) {
  return static_cast<float>(x);
}
inline float __uint2float_rn(unsigned x) {
  return static_cast<float>(x);
}

template <typename T>
inline T __ldg(const T* p) {
  return *p;
}

inline int __float_as_int(float x) {
  return simt::detail::bit_cast<int>(x);
}
inline unsigned __float_as_uint(float x) {
  return simt::detail::bit_cast<unsigned>(x);
}
inline float __int_as_float(int x) {
  return simt::detail::bit_cast<float>(x);
}
inline float __uint_as_float(unsigned x) {
  return simt::detail::bit_cast<float>(x);
}
inline long long __double_as_longlong(double x) {
  return simt::detail::bit_cast<long long>(x);
}
inline double __longlong_as_double(long long x) {
  return simt::detail::bit_cast<double>(x);
}

// CUDA's unqualified min / max.
inline int min(int a, int b) {
  return a < b ? a : b;
}
inline int max(int a, int b) {
  return a > b ? a : b;
}
inline unsigned min(unsigned a, unsigned b) {
  return a < b ? a : b;
}
inline unsigned max(unsigned a, unsigned b) {
  return a > b ? a : b;
}
inline unsigned min(int a, unsigned b) {
  return min(static_cast<unsigned>(a), b);
}
inline unsigned max(int a, unsigned b) {
  return max(static_cast<unsigned>(a), b);
}
inline unsigned min(unsigned a, int b) {
  return min(a, static_cast<unsigned>(b));
}
inline unsigned max(unsigned a, int b) {
  return max(a, static_cast<unsigned>(b));
}
inline long long min(long long a, long long b) {
  return a < b ? a : b;
}
inline long long max(long long a, long long b) {
  return a > b ? a : b;
}
inline unsigned long long min(unsigned long long a, unsigned long long b) {
  return a < b ? a : b;
}
inline unsigned long long max(unsigned long long a, unsigned long long b) {
  return a > b ? a : b;
}
inline long min(long a, long b) {
  return a < b ? a : b;
}
inline long max(long a, long b) {
  return a > b ? a : b;
}
inline unsigned long min(unsigned long a, unsigned long b) {
  return a < b ? a : b;
}
inline unsigned long max(unsigned long a, unsigned long b) {
  return a > b ? a : b;
}
inline float min(float a, float b) {
  return std::fmin(a, b);
}
inline float max(float a, float b) {
  return std::fmax(a, b);
}
inline double min(double a, double b) {
  return std::fmin(a, b);
}
inline double max(double a, double b) {
  return std::fmax(a, b);
}

// ---- bit intrinsics ------------------------------------------------------------------------------------------------
inline int __popc(unsigned x) {
  return __builtin_popcount(x);
}
inline int __popcll(unsigned long long x) {
  return __builtin_popcountll(x);
}
inline int __clz(int x) {
  return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x));
}
inline int __clzll(long long x) {
  return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x));
}
inline int __ffs(int x) {
  return __builtin_ffs(x);
}
inline int __ffsll(long long x) {
  return __builtin_ffsll(x);
}
inline unsigned __brev(unsigned x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
  return __builtin_bswap32(x);
}
inline unsigned __umulhi(unsigned a, unsigned b) {
  return static_cast<unsigned>((static_cast<uint64_t>(a) * b) >> 32);
}
inline int __mulhi(int a, int b) {
  return static_cast<int>((static_cast<int64_t>(a) * b) >> 32);
}
inline int __mul24(int a, int b) {  // the low 24 bits of each, sign-extended
  return (static_cast<int>(static_cast<unsigned>(a) << 8) >> 8) *
         (static_cast<int>(static_cast<unsigned>(b) << 8) >> 8);
}
inline unsigned __umul24(unsigned a, unsigned b) {
  return (a & 0xffffffu) * (b & 0xffffffu);
}
