#pragma once
// The direct backward-filter kernel for few input channels per group (kernels/cpu/conv_direct_filter.h), included
// by conv_direct_filter_<isa>.cpp so that each is compiled with that ISA's flags. Internal linkage only.
//
//   dw[k, c, r, t] (+)= sum over n, p, q of dy[n, k, p, q] * x[n, g*Cg+c, p*sh-pad_h+r, q*sw-pad_w+t]
//   (g = k / Kg, Cg = C / groups; x is zero outside the image)
//
// Phase planes as in the direct forward (conv_direct_fwd_body.h): the zero-padded input of each channel split by row
// and column phase of the strides, every plane with the row pitch L = Q + (S-1)/sw, so that tap (c, r, t) reads
// one contiguous run of its plane at m + (r/sh)*L + t/sw over all flat positions m = p*L + q. dy is copied to the
// same pitch with zeros in the L - Q columns past Q (and past the last position, up to whole vectors), so
// dw[k, tap] is the dot product of dy row k with the tap's run and the extra lanes add exact zeros. (A non-finite x
// read only under those lanes would turn into NaN there, where the reference skips it.)
//
// Work items are (group, tile of kBlockK output channels, block of taps). An item runs register tiles of kBlockK
// channels x kBlockT taps: per vector of positions kBlockK loads of dy, one load of x per tap, kBlockK FMAs per tap
// (a multiply, then an add, on the portable path). Its accumulators live in a buffer (taps, kBlockK, kLanes) between
// images (and chunks of kChunk positions), and lane j sums the positions j mod kLanes of image 0, then image 1, ...
// in order. At the end each dw element is its lanes added in lane order. So every element's summation order depends
// on the shape only, never on the items, the image blocks, the thread count or the schedule: results are
// bit-identical for any number of threads.
//
// The phase planes are built for a block of images at a time (bounded memory), in parallel; then each item copies its
// dy rows of one image to pitch L in its own scratch (in L2) and runs its tiles over them. (A separate pass padding
// all of dy first cost 0.3-0.5 ms of conv1's ~3.5 CPU ms, and 2 threads scaled badly on it.)
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "kernels/conv.h"
#include "kernels/cpu/conv_direct_planes.h"
#include "kernels/cpu/conv_direct_transpose.h"

namespace kernels {
namespace cpu {
namespace {

// ---- one vector of positions, per instruction set -----------------------------------------------------------
#if defined(__AVX512F__)
constexpr int kLanes = 16, kBlockK = 4, kBlockT = 6;  // 24 accumulators + 4 dy + 1 x of 32 zmm
using V = __m512;
inline V v_load(const float* p) {
  return _mm512_loadu_ps(p);
}
inline void v_store(float* p, V a) {
  _mm512_storeu_ps(p, a);
}
inline V v_fma(V a, V b, V acc) {
  return _mm512_fmadd_ps(a, b, acc);
}
inline V v_zero() {
  return _mm512_setzero_ps();
}
inline V v_fma(float a, V b, V acc) {  // a broadcast
  return _mm512_fmadd_ps(_mm512_set1_ps(a), b, acc);
}
// d_tp[j] = src[4 j + tp] for j < 16, tp < 4: one x row split by the column phases of stride 4 (AlexNet conv1's
// planes; a float at a time this was a tenth of the channel-vectorised filter's call).
constexpr bool kDeinterleave4 = true;
inline void v_deinterleave4(const float* src, float* d0, float* d1, float* d2, float* d3) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const V v0 = _mm512_loadu_ps(src), v1 = _mm512_loadu_ps(src + 16), v2 = _mm512_loadu_ps(src + 32),
          v3 = _mm512_loadu_ps(src + 48);
  const V e01 = _mm512_permutex2var_ps(v0, even, v1), o01 = _mm512_permutex2var_ps(v0, odd, v1);  // phases 0,2 / 1,3
  const V e23 = _mm512_permutex2var_ps(v2, even, v3), o23 = _mm512_permutex2var_ps(v2, odd, v3);
  _mm512_storeu_ps(d0, _mm512_permutex2var_ps(e01, even, e23));
  _mm512_storeu_ps(d2, _mm512_permutex2var_ps(e01, odd, e23));
  _mm512_storeu_ps(d1, _mm512_permutex2var_ps(o01, even, o23));
  _mm512_storeu_ps(d3, _mm512_permutex2var_ps(o01, odd, o23));
}
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kLanes = 8, kBlockK = 3, kBlockT = 4;  // 12 accumulators + 3 dy + 1 x of 16 ymm
using V = __m256;
inline V v_load(const float* p) {
  return _mm256_loadu_ps(p);
}
inline void v_store(float* p, V a) {
  _mm256_storeu_ps(p, a);
}
inline V v_fma(V a, V b, V acc) {
  return _mm256_fmadd_ps(a, b, acc);
}
inline V v_zero() {
  return _mm256_setzero_ps();
}
inline V v_fma(float a, V b, V acc) {
  return _mm256_fmadd_ps(_mm256_set1_ps(a), b, acc);
}
constexpr bool kDeinterleave4 = false;  // (AVX-512 only)
inline void v_deinterleave4(const float*, float*, float*, float*, float*) {}
#elif defined(__SSE2__)
constexpr int kLanes = 4, kBlockK = 3, kBlockT = 4;  // 12 accumulators + 3 dy + 1 x of 16 xmm
using V = __m128;
inline V v_load(const float* p) {
  return _mm_loadu_ps(p);
}
inline void v_store(float* p, V a) {
  _mm_storeu_ps(p, a);
}
inline V v_fma(V a, V b, V acc) {
  return _mm_add_ps(acc, _mm_mul_ps(a, b));
}
inline V v_zero() {
  return _mm_setzero_ps();
}
inline V v_fma(float a, V b, V acc) {
  return _mm_add_ps(acc, _mm_mul_ps(_mm_set1_ps(a), b));
}
constexpr bool kDeinterleave4 = false;  // (AVX-512 only)
inline void v_deinterleave4(const float*, float*, float*, float*, float*) {}
#else  // plain C++: a vector is a few floats
constexpr int kLanes = 4, kBlockK = 3, kBlockT = 4;
struct V {
  float l[kLanes];
};
inline V v_load(const float* p) {
  V v;
  for (int i = 0; i < kLanes; ++i) v.l[i] = p[i];
  return v;
}
inline void v_store(float* p, V a) {
  for (int i = 0; i < kLanes; ++i) p[i] = a.l[i];
}
inline V v_fma(V a, V b, V acc) {
  for (int i = 0; i < kLanes; ++i) acc.l[i] += a.l[i] * b.l[i];
  return acc;
}
inline V v_zero() {
  return V{};
}
inline V v_fma(float a, V b, V acc) {
  for (int i = 0; i < kLanes; ++i) acc.l[i] += a * b.l[i];
  return acc;
}
constexpr bool kDeinterleave4 = false;  // (AVX-512 only)
inline void v_deinterleave4(const float*, float*, float*, float*, float*) {}
#endif
static_assert(kLanes == kTransposeLanes, "v_transpose moves one vector per row");

// Positions per chunk. One chunk per image measured fastest: conv1 (3 channels, batch 4, 2 threads) 5.8 ms against
// 6.3 with chunks of 1024 positions (dy rows in L1) and 7.3 with 256; the prefetchers follow long runs.
constexpr int64_t kChunk = int64_t(1) << 20;
// The planes and padded dy of one block of images take at most this many floats (16 MB; one image may take more).
constexpr int64_t kImageBlockFloats = int64_t(1) << 22;
// Items per thread where the shape has them. Each tap block of a channel tile reads the tile's dy once more, so the
// taps are cut only as far as needed: mapnet_bn_fine conv0 (1 -> 16 channels, 3x3 on 93x93, batch 64; 4 channel tiles,
// bench/cpu_conv_bench, 2 threads) took 3.50 ms with 4 items per thread (2 tap blocks) and 2.35-2.47 with 2 or 1 (one
// tap block) on AVX-512, 3.92 / 2.79 on AVX2, 5.97 / 5.03 portable.
constexpr int64_t kItemsPerThread = 2;

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// One register tile: kBlockK channels x NT taps over `vectors` vectors of positions. dy (kBlockK, pitch): the tile's
// padded dy rows from the chunk's first position; x_tap[t]: where tap t reads, from the same position; acc (NT,
// kBlockK, kLanes): the tile's lane sums, loaded and stored back.
template <int NT>
void filter_tile(const float* dy, int64_t pitch, const float* const* x_tap, int64_t vectors, float* acc) {
  V a[kBlockK][NT];  // (kBlockK, NT vectors)
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t)
#pragma GCC unroll 8
    for (int k = 0; k < kBlockK; ++k) a[k][t] = v_load(acc + (t * kBlockK + k) * kLanes);
  const float* xt[NT];
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t) xt[t] = x_tap[t];
  for (int64_t i = 0; i < vectors * kLanes; i += kLanes) {
    V d[kBlockK];
#pragma GCC unroll 8
    for (int k = 0; k < kBlockK; ++k) d[k] = v_load(dy + k * pitch + i);
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      const V xv = v_load(xt[t] + i);
#pragma GCC unroll 8
      for (int k = 0; k < kBlockK; ++k) a[k][t] = v_fma(d[k], xv, a[k][t]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t)
#pragma GCC unroll 8
    for (int k = 0; k < kBlockK; ++k) v_store(acc + (t * kBlockK + k) * kLanes, a[k][t]);
}

using FilterTileFn = void (*)(const float*, int64_t, const float* const*, int64_t, float*);

// kFilterTiles[NT - 1] = filter_tile<NT>: the last tile of a tap block runs only the taps it has.
template <int... NT>
constexpr std::array<FilterTileFn, kBlockT> filter_tile_table(std::integer_sequence<int, NT...>) {
  return {&filter_tile<NT + 1>...};
}
constexpr auto kFilterTiles = filter_tile_table(std::make_integer_sequence<int, kBlockT>());

// Per-thread scratch, reused across calls and grown as needed.
float* filter_scratch(size_t floats) {
  thread_local std::vector<float> scratch;
  if (scratch.size() < floats) scratch.resize(floats);
  return scratch.data();
}

// out (positions) = rows (P, Q) at pitch L, zeros in the columns past Q and after the last row. Plain loops: a
// memcpy call per 55-float row of conv1 cost more than the copy.
void copy_to_pitch(const float* rows, int P, int Q, int64_t L, int64_t positions, float* out) {
  for (int p = 0; p < P; ++p) {
    const float* in = rows + int64_t(p) * Q;  // (Q)
    float* o = out + p * L;                   // (L), the last row's cut at positions
    for (int q = 0; q < Q; ++q) o[q] = in[q];
    for (int64_t q = Q; q < L && p * L + q < positions; ++q) o[q] = 0.f;
  }
  for (int64_t m = std::min(positions, int64_t(P) * L); m < positions; ++m) out[m] = 0.f;
}

// Buffers of the calling thread, reused across calls and grown as needed; the OpenMP workers share them.
float* filter_buffer(std::vector<float>& buffer, size_t floats) {
  if (buffer.size() < floats) buffer.resize(floats);
  return buffer.data();
}

void conv_backward_filter_direct_body(const ConvShape& s, const float* x, const float* dy, float* dw, bool accumulate) {
  const int Kg = s.K / s.groups, Cg = s.C / s.groups, taps = Cg * s.R * s.S, sh = s.stride_h, sw = s.stride_w;
  const int64_t dw_floats = int64_t(s.K) * taps;
  if (int64_t(s.N) * s.P * s.Q == 0) {
    if (!accumulate) std::fill_n(dw, dw_floats, 0.f);
    return;
  }
  const int phases_h = std::min(sh, s.R), phases_w = std::min(sw, s.S);  // the phases some tap reads
  const int64_t L = s.Q + (s.S - 1) / sw;                                // row pitch of planes and padded dy
  const int extra_rows = (s.R - 1) / sh;                                 // plane rows past the last output row
  const int64_t planes = int64_t(Cg) * phases_h * phases_w;              // per (image, group)
  // Positions summed: the P rows of pitch L up to the last row's Q columns, in whole vectors.
  const int64_t positions = ceil_div(int64_t(s.P - 1) * L + s.Q, kLanes) * kLanes;
  const int plane_rows = s.P + extra_rows;
  // A plane holds its rows, then zeros as far as the farthest tap reads from the last position.
  const int64_t plane_floats = std::max(plane_rows * L, positions + extra_rows * L + (s.S - 1) / sw);
  const int k_tiles = int(ceil_div(Kg, kBlockK));

  // Tap (c, r, t) reads plane (c, r % sh, t % sw) at m + (r / sh) * L + t / sw.
  std::vector<int64_t> offsets(static_cast<size_t>(taps), 0);  // (Cg, R, S)
  for (int c = 0; c < Cg; ++c)
    for (int r = 0; r < s.R; ++r)
      for (int t = 0; t < s.S; ++t)
        offsets[size_t((c * s.R + r) * s.S + t)] =
            ((int64_t(c) * phases_h + r % sh) * phases_w + t % sw) * plane_floats + int64_t(r / sh) * L + t / sw;

  // Items: (group, channel tile, tap block); tap blocks of whole register tiles, enough items for the threads.
  const int64_t wanted = omp_get_max_threads() > 1 ? kItemsPerThread * omp_get_max_threads() : 1;
  const int64_t tap_tiles = ceil_div(taps, kBlockT);
  const int64_t tap_blocks = std::min(tap_tiles, ceil_div(wanted, int64_t(s.groups) * k_tiles));
  const int64_t block_taps = ceil_div(tap_tiles, tap_blocks) * kBlockT;
  const int64_t items = int64_t(s.groups) * k_tiles * ceil_div(taps, block_taps);
  const int64_t blocks = ceil_div(taps, block_taps);

  // Per (image, group): the phase planes (planes, plane_floats).
  const int64_t per_image = planes * plane_floats;
  const int64_t per_block = per_image * s.groups;
  const int block_images = int(std::clamp<int64_t>(kImageBlockFloats / per_block, 1, s.N));
  thread_local std::vector<float> prepared_buffer, acc_buffer;
  float* prepared = filter_buffer(prepared_buffer, size_t(block_images * per_block));  // (images, G, per_image)
  // Lane sums (G, k_tiles, taps, kBlockK, kLanes).
  float* acc = filter_buffer(acc_buffer, size_t(int64_t(s.groups) * k_tiles * taps * kBlockK * kLanes));
  const int64_t work = int64_t(s.N) * s.K * taps * positions;

#pragma omp parallel if (work >= (int64_t(1) << 20))
  for (int n0 = 0; n0 < s.N; n0 += block_images) {
    const int images = std::min(block_images, s.N - n0);
    // The block's phase planes, one (image, group, plane) a unit.
#pragma omp for schedule(dynamic, 1)
    for (int64_t unit = 0; unit < images * s.groups * planes; ++unit) {
      const int64_t i = unit / (s.groups * planes);
      const int g = int(unit / planes % s.groups), j = int(unit % planes), n = int(n0 + i);
      float* base = prepared + (i * s.groups + g) * per_image;
      {
        const int c = int(j / (phases_h * phases_w)), rp = int(j / phases_w % phases_h), tp = int(j % phases_w);
        const float* x_c = x + s.x.plane(n, int64_t(g) * Cg + c);  // (H, W)
        float* plane = base + j * plane_floats;                    // (plane_rows, L), then zeros
        build_phase_plane(s, x_c, rp, tp, 0, plane_rows, L, plane_floats, plane);
      }
    }
    // The items over this block's images (the implicit barrier above: every plane is built).
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t block = item % blocks, kt = item / blocks % k_tiles;
      const int g = int(item / blocks / k_tiles);
      const int64_t tap_begin = block * block_taps, tap_end = std::min<int64_t>(taps, tap_begin + block_taps);
      float* acc_item = acc + (int64_t(g) * k_tiles + kt) * taps * kBlockK * kLanes;  // (taps, kBlockK, kLanes)
      if (n0 == 0) std::fill(acc_item + tap_begin * kBlockK * kLanes, acc_item + tap_end * kBlockK * kLanes, 0.f);
      float* dy_tile = filter_scratch(size_t(kBlockK * positions));  // (kBlockK, positions): rows of pitch L
      for (int i = 0; i < images; ++i) {
        const float* base = prepared + (int64_t(i) * s.groups + g) * per_image;
        // The tile's dy rows of this image at pitch L, zeros past Q, past the last position and past Kg.
        for (int j = 0; j < kBlockK; ++j) {
          const int64_t k = kt * kBlockK + j;
          float* out = dy_tile + j * positions;  // (positions)
          if (k >= Kg) {
            std::fill_n(out, positions, 0.f);
            continue;
          }
          const float* dy_k = dy + s.y.plane(n0 + i, g * Kg + k);  // (P, Q)
          copy_to_pitch(dy_k, s.P, s.Q, L, positions, out);
        }
        for (int64_t m0 = 0; m0 < positions; m0 += kChunk) {
          const int64_t vectors = std::min(kChunk, positions - m0) / kLanes;
          // The block's taps in tiles of even sizes (121 taps: 16 of 6 and 5 of 5, not 20 of 6 and one of 1).
          const int64_t tiles = ceil_div(tap_end - tap_begin, kBlockT);
          for (int64_t tile = 0, t0 = tap_begin; tile < tiles; ++tile) {
            const int nt = int((tap_end - tap_begin) / tiles + (tile < (tap_end - tap_begin) % tiles ? 1 : 0));
            const float* x_tap[kBlockT];
            for (int t = 0; t < nt; ++t) x_tap[t] = base + m0 + offsets[size_t(t0 + t)];
            kFilterTiles[size_t(nt - 1)](dy_tile + m0, positions, x_tap, vectors, acc_item + t0 * kBlockK * kLanes);
            t0 += nt;
          }
        }
      }
    }
  }

  // dw (+)= each element's lanes, added in lane order.
  const int64_t elements = int64_t(s.groups) * Kg * taps;
#pragma omp parallel for schedule(static) if (elements >= (int64_t(1) << 16))
  for (int64_t e = 0; e < elements; ++e) {
    const int64_t tap = e % taps, k = e / taps % Kg, g = e / taps / Kg;
    const float* lanes = acc + ((g * k_tiles + k / kBlockK) * taps + tap) * kBlockK * kLanes + k % kBlockK * kLanes;
    float sum = lanes[0];
    for (int l = 1; l < kLanes; ++l) sum += lanes[l];
    float* out = dw + (g * Kg + k) * taps + tap;
    *out = accumulate ? *out + sum : sum;
  }
}

}  // namespace
}  // namespace cpu
}  // namespace kernels
