// Checks and dispatch of the bfloat16 convolution (kernels/cpu/conv_bf16.h); compiled without AMX or AVX-512 flags, so
// that asking on a CPU without them is safe. The kernels are in conv_bf16_amx.cpp and
// conv_bf16_filter_amx.cpp.
#include "kernels/cpu/conv_bf16.h"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace kernels {
namespace cpu {

namespace {

std::atomic<ConvPrecision> active_precision{ConvPrecision::float32};

#if defined(__x86_64__) && defined(__linux__)
bool cpu_has_dot_products() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid_count(7, 1, eax, ebx, ecx, edx);
  const bool avx512_bf16 = eax >> 5 & 1;
  // __builtin_cpu_supports also checks that the operating system saves the AVX-512 state.
  return avx512_bf16 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl");
}

// The tile kernels' packing uses the dot-product engine's instructions too.
bool cpu_has_tiles() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const bool amx_bf16 = edx >> 22 & 1, amx_tile = edx >> 24 & 1;
  return amx_bf16 && amx_tile && cpu_has_dot_products();
}

// Linux hands out the 8 KB tile state only to processes that ask for it (arch_prctl ARCH_REQ_XCOMP_PERM for
// XFEATURE_XTILEDATA); without it the first tile instruction faults.
bool os_grants_tiles() {
  constexpr int kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}
#endif

std::string shape_text(const ConvShape& s) {
  return "(N " + std::to_string(s.N) + ", C " + std::to_string(s.C) + ", " + std::to_string(s.H) + "x" +
         std::to_string(s.W) + ") * (K " + std::to_string(s.K) + ", " + std::to_string(s.R) + "x" +
         std::to_string(s.S) + ", stride " + std::to_string(s.stride_h) + "x" + std::to_string(s.stride_w) + ", pad " +
         std::to_string(s.pad_h) + "x" + std::to_string(s.pad_w) + ")";
}

void check(const ConvShape& s, const char* pass) {
  check_conv_shape(s);
  if (!bf16_available())
    throw std::runtime_error(std::string("bfloat16 convolution ") + pass +
                             ": this CPU or operating system has neither AMX-BF16 tile units nor AVX512-BF16");
}

Bf16Engine preferred_engine() {
  return bf16_tiles_available() ? Bf16Engine::tiles : Bf16Engine::dot_products;
}

std::atomic<Bf16Engine>& engine_choice() {
  static std::atomic<Bf16Engine> engine{preferred_engine()};
  return engine;
}

}  // namespace

const char* conv_precision_name(ConvPrecision precision) {
  return precision == ConvPrecision::bfloat16 ? "bfloat16" : "float32";
}

ConvPrecision parse_conv_precision(const std::string& name) {
  if (name == "float32") return ConvPrecision::float32;
  if (name == "bfloat16") return ConvPrecision::bfloat16;
  throw std::invalid_argument("convolution precision '" + name + "': expected float32 or bfloat16");
}

ConvPrecision active_conv_precision() {
  return active_precision.load(std::memory_order_relaxed);
}

void set_conv_precision(ConvPrecision precision) {
  if (precision == ConvPrecision::bfloat16 && !bf16_available())
    throw std::runtime_error(
        "convolution precision bfloat16: this CPU or operating system has neither AMX-BF16 tile units nor "
        "AVX512-BF16 (float32 runs everywhere)");
  active_precision.store(precision, std::memory_order_relaxed);
}

bool conv_bf16_applies(const ConvShape& s) {
  return active_conv_precision() == ConvPrecision::bfloat16 && s.C / s.groups >= 16 && s.K / s.groups >= 16;
}

bool conv_bf16_backward_data_applies(const ConvShape& s) {
  return conv_bf16_applies(s) && conv_bf16_backward_data_supports(s);
}

bool bf16_tiles_available() {
#if defined(__x86_64__) && defined(__linux__)
  static const bool available = cpu_has_tiles() && os_grants_tiles();
  return available;
#else
  return false;
#endif
}

bool bf16_dot_products_available() {
#if defined(__x86_64__) && defined(__linux__)
  static const bool available = cpu_has_dot_products();
  return available;
#else
  return false;
#endif
}

bool bf16_engine_available(Bf16Engine engine) {
  return engine == Bf16Engine::tiles ? bf16_tiles_available() : bf16_dot_products_available();
}

bool bf16_available() {
  return bf16_tiles_available() || bf16_dot_products_available();
}

const char* bf16_engine_name(Bf16Engine engine) {
  return engine == Bf16Engine::tiles ? "tiles" : "dot_products";
}

Bf16Engine parse_bf16_engine(const std::string& name) {
  if (name == "tiles") return Bf16Engine::tiles;
  if (name == "dot_products") return Bf16Engine::dot_products;
  throw std::invalid_argument("bfloat16 engine '" + name + "': expected tiles or dot_products");
}

Bf16Engine active_bf16_engine() {
  return engine_choice().load(std::memory_order_relaxed);
}

void set_bf16_engine(Bf16Engine engine) {
  if (!bf16_engine_available(engine))
    throw std::runtime_error(
        std::string("bfloat16 engine ") + bf16_engine_name(engine) + ": this CPU lacks " +
        (engine == Bf16Engine::tiles ? "AMX-BF16 tile units (or the system does not grant them)" : "AVX512-BF16"));
  engine_choice().store(engine, std::memory_order_relaxed);
}

bool conv_bf16_backward_data_supports(const ConvShape& s) {
  return s.stride_h == 1 && s.stride_w == 1 && s.pad_h < s.R && s.pad_w < s.S;
}

float round_to_bf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if (std::isnan(value)) {
    bits = (bits | 0x00400000u) & 0xffff0000u;  // quiet, payload's top bits kept
  } else {
    bits += 0x7fffu + (bits >> 16 & 1u);  // to nearest, ties to even (overflow rounds to infinity)
    bits &= 0xffff0000u;
  }
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

void conv_forward_bf16(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                       ConvEpilogue epilogue) {
  check(s, "forward");
  bf16::conv_forward(active_bf16_engine(), s, x, w, b, y, epilogue, false, false);
}

void conv_backward_data_bf16(const ConvShape& s, const float* dy, const float* w, float* dx, bool accumulate) {
  check(s, "backward data");
  if (!conv_bf16_backward_data_supports(s))
    throw std::invalid_argument("bfloat16 convolution backward data of " + shape_text(s) +
                                ": takes stride 1 with padding under the filter size only");
  // The forward shape: dy (N, K, P, Q) in, dx (N, C, H, W) out, padded by R-1-pad so that output (h, w) reads
  // dy[h + pad - r][w + pad - t] at tap (R-1-r, S-1-t).
  ConvShape t = s;
  t.C = s.K, t.H = s.P, t.W = s.Q, t.K = s.C, t.P = s.H, t.Q = s.W;
  t.pad_h = s.R - 1 - s.pad_h, t.pad_w = s.S - 1 - s.pad_w;
  t.x = s.y, t.y = s.x;
  bf16::conv_forward(active_bf16_engine(), t, dy, w, nullptr, dx, ConvEpilogue{}, accumulate, true);
}

void conv_backward_filter_bf16(const ConvShape& s, const float* x, const float* dy, float* dw, bool accumulate) {
  check(s, "backward filter");
  bf16::conv_backward_filter(active_bf16_engine(), s, x, dy, dw, accumulate);
}

}  // namespace cpu
}  // namespace kernels
