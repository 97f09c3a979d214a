#pragma once
// The direct forward kernel for one (or a few) input channels per group (kernels/cpu/conv_direct_fwd.h), included by
// conv_direct_fwd_<isa>.cpp so that each is compiled with that ISA's flags. Internal linkage only.
//
//   y[n,k,p,q] = b[k] + sum over taps (c, r, t) of w[k, c, r, t] * x[n, g*Cg+c, p*sh-pad_h+r, q*sw-pad_w+t]
//   (g = k / Kg, Cg = C / groups; x is zero outside the image)
//
// Phase planes. Through a zero border (xp: x padded by pad_h, pad_w), tap (c, r, t) of output (p, q) reads
// xp_c[p*sh + r][q*sw + t]. With r = rs*sh + rp and t = ts*sw + tp, that is entry (p + rs, q + ts) of plane (c, rp, tp)
// of the phase split X[c][rp][tp][a][i] = xp_c[a*sh + rp][i*sw + tp]. Every plane gets the row pitch
// L = Q + (S-1)/sw, so output (p, q) is flat position m = p*L + q and tap (c, r, t) reads its plane at m + rs*L + ts:
// one contiguous run over all output positions, across rows too. The kernel vectorises over m; the L - Q positions
// past Q in each row (2 of 57 for AlexNet conv1) are computed and never stored. (Vectorising over q within a row
// instead would waste 9 of 64 lanes on conv1's 55 columns.)
//
// Work items are (image, group, band of output rows). Each builds its band's phase planes in a per-thread buffer
// (bounded: a whole mammogram needs no copy of its size), then for each block of kBlockV vectors of positions runs
// every register tile of kBlockK output channels x kBlockV vectors over the taps in (c, r, t) order, one FMA per tap
// (a multiply, then an add, on the portable path), adds the bias, applies the ReLU and stores the tile's row pieces
// with masks. The block's x stays in L1 while the group's weights stream from L2. Each output's arithmetic is the
// same sequence whichever lane, tile, band or thread computes it, so the bands may follow the thread count and the
// results are bit-identical for any number of threads.
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

namespace kernels {
namespace cpu {
namespace {

// ---- one vector of output positions, per instruction set ----------------------------------------------------
// v_relu is the ReLU reference's `a < 0 ? 0 : a` (max with 0 as the first operand returns a for NaN and -0).
#if defined(__AVX512F__)
constexpr int kLanes = 16, kBlockK = 6, kBlockV = 4;  // 24 accumulators + 4 inputs of 32 zmm
using V = __m512;
inline V v_zero() {
  return _mm512_setzero_ps();
}
inline V v_load(const float* p) {
  return _mm512_loadu_ps(p);
}
inline void v_store(float* p, V a) {
  _mm512_storeu_ps(p, a);
}
inline V v_fma(float w, V x, V acc) {
  return _mm512_fmadd_ps(_mm512_set1_ps(w), x, acc);
}
inline V v_add(V a, float b) {
  return _mm512_add_ps(a, _mm512_set1_ps(b));
}
inline V v_relu(V a) {  // (maskz: GCC 12 warns on the plain max)
  return _mm512_maskz_max_ps(0xFFFF, _mm512_setzero_ps(), a);
}
// v_store_lanes(base, v_lanes(lo, hi), a) stores lanes [lo, hi) of a to base[lo, hi) and touches nothing else.
using Lanes = __mmask16;
inline Lanes v_lanes(int lo, int hi) {
  return Lanes(((1u << hi) - 1) & ~((1u << lo) - 1));
}
inline void v_store_lanes(float* base, Lanes lanes, V a) {
  _mm512_mask_storeu_ps(base, lanes, a);
}
// v_load_lanes(into, base, lanes): into with lanes [lo, hi) replaced by base[lo, hi) (nothing else read).
inline V v_load_lanes(V into, const float* base, Lanes lanes) {
  return _mm512_mask_loadu_ps(into, lanes, base);
}
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kLanes = 8, kBlockK = 4, kBlockV = 3;  // 12 accumulators + 3 inputs + 1 weight of 16 ymm
using V = __m256;
inline V v_zero() {
  return _mm256_setzero_ps();
}
inline V v_load(const float* p) {
  return _mm256_loadu_ps(p);
}
inline void v_store(float* p, V a) {
  _mm256_storeu_ps(p, a);
}
inline V v_fma(float w, V x, V acc) {
  return _mm256_fmadd_ps(_mm256_set1_ps(w), x, acc);
}
inline V v_add(V a, float b) {
  return _mm256_add_ps(a, _mm256_set1_ps(b));
}
inline V v_relu(V a) {
  return _mm256_max_ps(_mm256_setzero_ps(), a);
}
// A whole vector goes through a plain store: a masked store (vmaskmovps) writing y's lines was 4x slower here on a
// 224x224 map.
struct Lanes {
  __m256i mask;
  bool all;
};
inline Lanes v_lanes(int lo, int hi) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return {_mm256_and_si256(_mm256_cmpgt_epi32(lane, _mm256_set1_epi32(lo - 1)),
                           _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), lane)),
          lo == 0 && hi == kLanes};
}
inline void v_store_lanes(float* base, const Lanes& lanes, V a) {
  if (lanes.all) {
    _mm256_storeu_ps(base, a);
  } else {
    _mm256_maskstore_ps(base, lanes.mask, a);
  }
}
inline V v_load_lanes(V into, const float* base, const Lanes& lanes) {
  if (lanes.all) return _mm256_loadu_ps(base);
  return _mm256_blendv_ps(into, _mm256_maskload_ps(base, lanes.mask), _mm256_castsi256_ps(lanes.mask));
}
#elif defined(__SSE2__)
constexpr int kLanes = 4, kBlockK = 4, kBlockV = 3;  // 12 accumulators + 3 inputs + 1 weight of 16 xmm
using V = __m128;
inline V v_zero() {
  return _mm_setzero_ps();
}
inline V v_load(const float* p) {
  return _mm_loadu_ps(p);
}
inline void v_store(float* p, V a) {
  _mm_storeu_ps(p, a);
}
inline V v_fma(float w, V x, V acc) {
  return _mm_add_ps(acc, _mm_mul_ps(_mm_set1_ps(w), x));
}
inline V v_add(V a, float b) {
  return _mm_add_ps(a, _mm_set1_ps(b));
}
inline V v_relu(V a) {
  return _mm_max_ps(_mm_setzero_ps(), a);
}
struct Lanes {
  int lo, hi;
};
inline Lanes v_lanes(int lo, int hi) {
  return {lo, hi};
}
inline void v_store_lanes(float* base, Lanes lanes, V a) {
  if (lanes.lo == 0 && lanes.hi == kLanes) return _mm_storeu_ps(base, a);
  float l[kLanes];  // (kLanes)
  _mm_storeu_ps(l, a);
  for (int i = lanes.lo; i < lanes.hi; ++i) base[i] = l[i];
}
inline V v_load_lanes(V into, const float* base, Lanes lanes) {
  if (lanes.lo == 0 && lanes.hi == kLanes) return _mm_loadu_ps(base);
  float l[kLanes];  // (kLanes)
  _mm_storeu_ps(l, into);
  for (int i = lanes.lo; i < lanes.hi; ++i) l[i] = base[i];
  return _mm_loadu_ps(l);
}
#else  // plain C++: a vector is a few floats
constexpr int kLanes = 4, kBlockK = 4, kBlockV = 3;
struct V {
  float l[kLanes];
};
inline V v_zero() {
  return V{};
}
inline V v_load(const float* p) {
  V v;
  for (int i = 0; i < kLanes; ++i) v.l[i] = p[i];
  return v;
}
inline void v_store(float* p, V a) {
  for (int i = 0; i < kLanes; ++i) p[i] = a.l[i];
}
inline V v_fma(float w, V x, V acc) {
  for (int i = 0; i < kLanes; ++i) acc.l[i] += w * x.l[i];
  return acc;
}
inline V v_add(V a, float b) {
  for (int i = 0; i < kLanes; ++i) a.l[i] += b;
  return a;
}
inline V v_relu(V a) {
  for (int i = 0; i < kLanes; ++i) a.l[i] = a.l[i] < 0.f ? 0.f : a.l[i];
  return a;
}
struct Lanes {
  int lo, hi;
};
inline Lanes v_lanes(int lo, int hi) {
  return {lo, hi};
}
inline void v_store_lanes(float* base, Lanes lanes, V a) {
  for (int i = lanes.lo; i < lanes.hi; ++i) base[i] = a.l[i];
}
inline V v_load_lanes(V into, const float* base, Lanes lanes) {
  for (int i = lanes.lo; i < lanes.hi; ++i) into.l[i] = base[i];
  return into;
}
#endif

// Phase planes of a band's channel block hold at most this many floats (256 KB, in L2); more rows make more, shorter
// bands.
constexpr int64_t kBandFloats = int64_t(1) << 16;
// What one block of positions of a channel block reads (the taps' runs, about Cb x R x (kBlockV*kLanes + S - 1)
// floats) is kept under this (16 KB, half of L1), so those runs are read from L1 by every register tile of the block.
constexpr int64_t kBlockReadFloats = int64_t(1) << 12;
// A channel block has at least this many taps (an output's partial sums go to y and back once per block).
constexpr int kMinBlockTaps = 256;
// With several channel blocks, a band's y (Kg, rows, Q) is kept under this (512 KB, in L2 with the block's planes
// and weights), since every block reads and writes it.
constexpr int64_t kYBandFloats = int64_t(1) << 17;
// Items per thread where the shape has them (a thread that loses its core mid-item holds up the call by the rest
// of that item).
constexpr int64_t kItemsPerThread = 4;

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// Where a block's vectors go: lanes [lo, hi) of vector v are stored at y_k + offset + lane (lane 0's address may
// lie before the row: masked lanes are never touched), for pieces [begin[v], begin[v + 1]).
struct Piece {
  Lanes lanes;
  int64_t offset;
};
struct Pieces {
  int begin[kBlockV + 1];
  Piece piece[kBlockV * (kLanes + 1)];  // a vector meets at most kLanes + 1 rows (L >= 1)
};

// The flat positions [m0, m0 + nv * kLanes) of a band starting at output row p0 with `rows` rows, cut into row
// pieces inside columns [0, Q).
void cut_pieces(int64_t m0, int nv, int64_t L, int Q, int p0, int rows, Pieces& out) {
  int count = 0;
  for (int v = 0; v < nv; ++v) {
    out.begin[v] = count;
    const int64_t mv = m0 + int64_t(v) * kLanes;
    const int64_t last_row = std::min<int64_t>((mv + kLanes - 1) / L, rows - 1);
    for (int64_t pr = mv / L; pr <= last_row; ++pr) {
      const int64_t lo = std::max(pr * L, mv) - mv, hi = std::min(pr * L + Q, mv + kLanes) - mv;
      if (lo < hi) out.piece[count++] = {v_lanes(int(lo), int(hi)), (p0 + pr) * Q + mv - pr * L};
    }
  }
  out.begin[nv] = count;
}

// One register tile: KR output channels x NV vectors of positions starting at xm (the band's planes + m0).
// offsets (taps): where each tap reads, from xm; w (taps, kBlockK): the tile's weights, tap-major; y[k]: channel
// k's output plane; load: the sums start from y (an earlier channel block's partial sums, or accumulate), else
// from 0; bias: the KR biases or null. A partial sum stored and loaded again is the same float as one kept in a
// register, so blocking the channels leaves every output's sequence of FMAs unchanged.
template <int KR, int NV>
void tile(const float* xm, const int64_t* offsets, int taps, const float* w, float* const* y, bool load,
          const float* bias, bool relu, const Pieces& pieces) {
  V acc[KR][NV];  // (KR, NV vectors)
#pragma GCC unroll 8
  for (int k = 0; k < KR; ++k)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      acc[k][v] = v_zero();  // lanes past Q stay 0: computed, never stored
      if (load)
        for (int i = pieces.begin[v]; i < pieces.begin[v + 1]; ++i)
          acc[k][v] = v_load_lanes(acc[k][v], y[k] + pieces.piece[i].offset, pieces.piece[i].lanes);
    }
  for (int tap = 0; tap < taps; ++tap) {
    const float* xt = xm + offsets[tap];
    const float* wt = w + tap * kBlockK;
    V xv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) xv[v] = v_load(xt + v * kLanes);
#pragma GCC unroll 8
    for (int k = 0; k < KR; ++k)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[k][v] = v_fma(wt[k], xv[v], acc[k][v]);
  }
#pragma GCC unroll 8
  for (int k = 0; k < KR; ++k)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      V a = acc[k][v];
      if (bias) a = v_add(a, bias[k]);
      if (relu) a = v_relu(a);
      for (int i = pieces.begin[v]; i < pieces.begin[v + 1]; ++i)
        v_store_lanes(y[k] + pieces.piece[i].offset, pieces.piece[i].lanes, a);
    }
}

using TileFn = void (*)(const float*, const int64_t*, int, const float*, float* const*, bool, const float*, bool,
                        const Pieces&);

// kTiles[KR - 1][NV - 1] = tile<KR, NV>: the edge tiles (fewer channels, fewer vectors) run only what they need.
template <int KR, int... NV>
constexpr std::array<TileFn, kBlockV> tile_row(std::integer_sequence<int, NV...>) {
  return {&tile<KR, NV + 1>...};
}
template <int... KR>
constexpr std::array<std::array<TileFn, kBlockV>, kBlockK> tile_table(std::integer_sequence<int, KR...>) {
  return {tile_row<KR + 1>(std::make_integer_sequence<int, kBlockV>())...};
}
constexpr auto kTiles = tile_table(std::make_integer_sequence<int, kBlockK>());

// Per-thread scratch, reused across calls and grown as needed, on a 64-byte boundary (a vector load of packed
// weights or partial sums then never spans two cache lines).
float* aligned_floats(std::vector<float>& buffer, size_t floats) {
  if (buffer.size() < floats + 16) buffer.resize(floats + 16);
  const uintptr_t at = reinterpret_cast<uintptr_t>(buffer.data());
  return buffer.data() + (((at + 63) & ~uintptr_t(63)) - at) / sizeof(float);
}
float* direct_scratch(size_t floats) {
  thread_local std::vector<float> scratch;
  return aligned_floats(scratch, floats);
}
float* direct_weights(size_t floats) {  // on the calling thread; the OpenMP workers only read it
  thread_local std::vector<float> packed;
  return aligned_floats(packed, floats);
}

void conv_forward_direct_body(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                              ConvEpilogue epilogue, bool accumulate) {
  const int Kg = s.K / s.groups, Cg = s.C / s.groups, RS = s.R * s.S, taps = Cg * RS, sh = s.stride_h, sw = s.stride_w;
  const int phases_h = std::min(sh, s.R), phases_w = std::min(sw, s.S);  // the phases some tap reads
  const int64_t L = s.Q + (s.S - 1) / sw;                                // row pitch of a phase plane
  const int extra_rows = (s.R - 1) / sh;                                 // plane rows past a band's last row
  const int64_t phase_planes = int64_t(phases_h) * phases_w;             // planes per input channel
  if (int64_t(s.N) * s.K * s.P * s.Q == 0) return;

  // Channel blocks: the runs one block of positions reads stay in L1, at least kMinBlockTaps taps. Any split gives the
  // same bits (tile()), so it may follow cache sizes freely.
  const int64_t read_per_channel = phase_planes * ceil_div(s.R, sh) * (kBlockV * kLanes + (s.S - 1) / sw);
  const int block_channels0 = int(
      std::clamp<int64_t>(std::max<int64_t>(kBlockReadFloats / read_per_channel, ceil_div(kMinBlockTaps, RS)), 1, Cg));
  const int c_blocks = int(ceil_div(Cg, block_channels0));
  const int block_channels = int(ceil_div(Cg, c_blocks));  // balanced: the last block is not a sliver

  // Bands: enough items for the threads, a channel block's planes within kBandFloats, and with several channel blocks
  // y's band within kYBandFloats.
  const int64_t outer = int64_t(s.N) * s.groups;
  const int64_t wanted = omp_get_max_threads() > 1 ? kItemsPerThread * omp_get_max_threads() : 1;
  int64_t most_rows = std::max<int64_t>(1, kBandFloats / (block_channels * phase_planes * L) - extra_rows);
  if (c_blocks > 1) most_rows = std::min(most_rows, std::max<int64_t>(1, kYBandFloats / (int64_t(Kg) * s.Q)));
  const int64_t bands0 = std::max(ceil_div(wanted, outer), ceil_div(s.P, most_rows));
  const int band_rows = int(ceil_div(s.P, std::min<int64_t>(bands0, s.P)));
  const int bands = int(ceil_div(s.P, band_rows));
  // A plane: the band's rows plus extra_rows, then a margin of kLanes for the last vector's lanes past the band.
  const int64_t plane_floats = (band_rows + extra_rows) * L + kLanes;

  // Tap (c, r, t) of a channel block reads plane (c, r % sh, t % sw) of the block at m + (r / sh) * L + t / sw.
  std::vector<int64_t> offsets(static_cast<size_t>(block_channels) * RS, 0);  // (block_channels, R, S)
  for (int c = 0; c < block_channels; ++c)
    for (int r = 0; r < s.R; ++r)
      for (int t = 0; t < s.S; ++t)
        offsets[size_t((c * s.R + r) * s.S + t)] =
            ((int64_t(c) * phases_h + r % sh) * phases_w + t % sw) * plane_floats + int64_t(r / sh) * L + t / sw;

  // Weights (G, k blocks, taps, kBlockK), tap-major inside a block so a tap's weights are adjacent; 0 past Kg.
  const int k_blocks = int(ceil_div(Kg, kBlockK));
  float* wp = direct_weights(size_t(s.groups) * k_blocks * taps * kBlockK);

  const int64_t items = outer * bands;
  const int64_t work = items * int64_t(band_rows) * s.Q * Kg * taps;
  // One parallel region: every thread packs a slice of the weights, then the items.
#pragma omp parallel if (work >= (int64_t(1) << 20))
  {
#pragma omp for schedule(static)
    for (int64_t gk = 0; gk < int64_t(s.groups) * k_blocks; ++gk) {
      const int64_t g = gk / k_blocks, kb = gk % k_blocks;
      float* dst = wp + gk * taps * kBlockK;  // (taps, kBlockK)
      for (int j = 0; j < kBlockK; ++j) {
        const int64_t k = kb * kBlockK + j;
        const float* src = w + (g * Kg + k) * taps;  // (taps)
        for (int tap = 0; tap < taps; ++tap) dst[tap * kBlockK + j] = k < Kg ? src[tap] : 0.f;
      }
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int band = int(item % bands), g = int(item / bands % s.groups), n = int(item / bands / s.groups);
      const int p0 = band * band_rows, rows = std::min(band_rows, s.P - p0);
      // Positions [0, m_end) of the band: rows - 1 whole rows of pitch L, then the last row's Q columns.
      const int64_t m_end = int64_t(rows - 1) * L + s.Q;
      // A channel block's planes (block_channels, phases_h, phases_w, band_rows + extra_rows, L), each with a margin.
      float* xb = direct_scratch(size_t(block_channels * phase_planes * plane_floats));
      Pieces pieces;
      for (int cb = 0; cb < c_blocks; ++cb) {
        const int c0 = cb * block_channels, cn = std::min(block_channels, Cg - c0);
        const bool first = cb == 0, last = cb == c_blocks - 1;
        for (int c = 0; c < cn; ++c)
          for (int rp = 0; rp < phases_h; ++rp) {
            const float* x_c = x + s.x.plane(n, g * Cg + c0 + c);                         // (H, W)
            float* planes = xb + (int64_t(c) * phases_h + rp) * phases_w * plane_floats;  // (phases_w, rows + extra, L)
            build_column_phases(s, x_c, rp, p0, rows + extra_rows, L, plane_floats, phases_w, planes);
          }
        for (int64_t m0 = 0; m0 < m_end; m0 += kBlockV * kLanes) {
          const int nv = int(std::min<int64_t>(kBlockV, ceil_div(m_end - m0, kLanes)));
          cut_pieces(m0, nv, L, s.Q, p0, rows, pieces);
          for (int kb = 0; kb < k_blocks; ++kb) {
            const int kr = std::min(kBlockK, Kg - kb * kBlockK), k0 = g * Kg + kb * kBlockK;
            float* y_k[kBlockK];  // output planes (P, Q) of the tile's channels
            for (int j = 0; j < kr; ++j) y_k[j] = y + s.y.plane(n, k0 + j);
            kTiles[size_t(kr - 1)][size_t(nv - 1)](
                xb + m0, offsets.data(), cn * RS,
                wp + ((int64_t(g) * k_blocks + kb) * taps + int64_t(c0) * RS) * kBlockK, y_k, accumulate || !first,
                last && b ? b + k0 : nullptr, last && epilogue.relu, pieces);
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace cpu
}  // namespace kernels
