#pragma once
// Philox 4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a counter-based
// generator. The output is a pure function of (counter, key), so any thread on any device can draw the i-th number
// of a stream directly, and a backward pass can redraw a forward pass's numbers instead of storing them.
//
// One round on counter (c0, c1, c2, c3) and key (k0, k1):
//   (hi0, lo0) = M0 * c0,  (hi1, lo1) = M1 * c2          (32 x 32 -> 64-bit products)
//   counter'   = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
// and between rounds the key is bumped by the Weyl constants (k0 += W0, k1 += W1). Ten rounds.
//
// Plain integer math only, so the same header compiles for the host and for CUDA device code (the dropout kernels).
#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define MASSMAP_HOST_DEVICE __host__ __device__
#else
#define MASSMAP_HOST_DEVICE
#endif

namespace massmap {

struct Philox4x32Result {
  uint32_t v[4];
};

namespace philox_detail {
constexpr uint32_t kMultiplier0 = 0xD2511F53u;
constexpr uint32_t kMultiplier1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u;
constexpr uint32_t kWeyl1 = 0xBB67AE85u;

MASSMAP_HOST_DEVICE inline void apply_round(uint32_t c[4], const uint32_t k[2]) {
  const uint64_t product0 = uint64_t(kMultiplier0) * c[0];
  const uint64_t product1 = uint64_t(kMultiplier1) * c[2];
  const uint32_t hi0 = uint32_t(product0 >> 32), lo0 = uint32_t(product0);
  const uint32_t hi1 = uint32_t(product1 >> 32), lo1 = uint32_t(product1);
  const uint32_t next[4] = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
  for (int i = 0; i < 4; ++i) c[i] = next[i];
}
}  // namespace philox_detail

// The raw generator: four 32-bit words from a 128-bit counter and a 64-bit key.
MASSMAP_HOST_DEVICE inline Philox4x32Result philox4x32(const uint32_t counter[4], const uint32_t key[2]) {
  uint32_t c[4] = {counter[0], counter[1], counter[2], counter[3]};
  uint32_t k[2] = {key[0], key[1]};
  philox_detail::apply_round(c, k);
  for (int r = 1; r < 10; ++r) {
    k[0] += philox_detail::kWeyl0;
    k[1] += philox_detail::kWeyl1;
    philox_detail::apply_round(c, k);
  }
  return {{c[0], c[1], c[2], c[3]}};
}

// The index-th 32-bit draw of stream `stream` under `seed`. One Philox call yields four draws: draw i is word
// i % 4 of the block at counter (i / 4, stream) with key = seed.
MASSMAP_HOST_DEVICE inline uint32_t random_bits_at(uint64_t seed, uint64_t stream, uint64_t index) {
  const uint64_t block = index >> 2;
  const uint32_t counter[4] = {uint32_t(block), uint32_t(block >> 32), uint32_t(stream), uint32_t(stream >> 32)};
  const uint32_t key[2] = {uint32_t(seed), uint32_t(seed >> 32)};
  return philox4x32(counter, key).v[index & 3];
}

// A float in [0, 1) with 24 random bits (every value is exact in float, so 1 is never reached).
MASSMAP_HOST_DEVICE inline float uniform_at(uint64_t seed, uint64_t stream, uint64_t index) {
  return float(random_bits_at(seed, stream, index) >> 8) * (1.0f / 16777216.0f);
}

// A standard normal for initialisers: Box-Muller on draws 2*index and 2*index + 1 of the stream.
// 1 - u lies in (0, 1], so the logarithm is finite.
MASSMAP_HOST_DEVICE inline float normal_at(uint64_t seed, uint64_t stream, uint64_t index) {
  const float u1 = 1.0f - uniform_at(seed, stream, 2 * index);
  const float u2 = uniform_at(seed, stream, 2 * index + 1);
  const float two_pi = 6.28318530717958647692f;
  return sqrtf(-2.0f * logf(u1)) * cosf(two_pi * u2);
}

}  // namespace massmap
