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
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kLanes = 8, kBlockK = 4, kBlockV = 3;  // 12 accumulators + 3 inputs + 1 weight of 16 ymm
using V = __m256;
inline V v_zero() {
  return _mm256_setzero_ps();
}
inline V v_load(const float* p) {
  return _mm256_loadu_ps(p);
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
#elif defined(__SSE2__)
constexpr int kLanes = 4, kBlockK = 4, kBlockV = 3;  // 12 accumulators + 3 inputs + 1 weight of 16 xmm
using V = __m128;
inline V v_zero() {
  return _mm_setzero_ps();
}
inline V v_load(const float* p) {
  return _mm_loadu_ps(p);
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
#endif

// Phase planes of a band hold at most this many floats (256 KB, in L2); more rows make more, shorter bands.
constexpr int64_t kBandFloats = int64_t(1) << 16;
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
// k's output plane; bias: the KR biases or null.
template <int KR, int NV>
void tile(const float* xm, const int64_t* offsets, int taps, const float* w, float* const* y, const float* bias,
          bool relu, const Pieces& pieces) {
  V acc[KR][NV];  // (KR, NV vectors)
#pragma GCC unroll 8
  for (int k = 0; k < KR; ++k)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[k][v] = v_zero();
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

using TileFn = void (*)(const float*, const int64_t*, int, const float*, float* const*, const float*, bool,
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

// Per-thread scratch, reused across calls and grown as needed.
float* direct_scratch(size_t floats) {
  thread_local std::vector<float> scratch;
  if (scratch.size() < floats) scratch.resize(floats);
  return scratch.data();
}
float* direct_weights(size_t floats) {  // on the calling thread; the OpenMP workers only read it
  thread_local std::vector<float> packed;
  if (packed.size() < floats) packed.resize(floats);
  return packed.data();
}

void conv_forward_direct_body(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                              ConvEpilogue epilogue) {
  const int Kg = s.K / s.groups, Cg = s.C / s.groups, taps = Cg * s.R * s.S, sh = s.stride_h, sw = s.stride_w;
  const int phases_h = std::min(sh, s.R), phases_w = std::min(sw, s.S);  // the phases some tap reads
  const int64_t L = s.Q + (s.S - 1) / sw;                                // row pitch of a phase plane
  const int extra_rows = (s.R - 1) / sh;                                 // plane rows past a band's last row
  const int64_t planes = int64_t(Cg) * phases_h * phases_w;
  if (int64_t(s.N) * s.K * s.P * s.Q == 0) return;

  // Bands: enough items for the threads, planes within kBandFloats.
  const int64_t outer = int64_t(s.N) * s.groups;
  const int64_t wanted = omp_get_max_threads() > 1 ? kItemsPerThread * omp_get_max_threads() : 1;
  const int64_t most_rows = std::max<int64_t>(1, kBandFloats / (planes * L) - extra_rows);
  const int64_t bands0 = std::max(ceil_div(wanted, outer), ceil_div(s.P, most_rows));
  const int band_rows = int(ceil_div(s.P, std::min<int64_t>(bands0, s.P)));
  const int bands = int(ceil_div(s.P, band_rows));
  // A plane: the band's rows plus extra_rows, then a margin of kLanes for the last vector's lanes past the band.
  const int64_t plane_floats = (band_rows + extra_rows) * L + kLanes;

  // Tap (c, r, t) reads plane (c, r % sh, t % sw) at m + (r / sh) * L + t / sw.
  std::vector<int64_t> offsets(static_cast<size_t>(taps), 0);  // (Cg, R, S)
  for (int c = 0; c < Cg; ++c)
    for (int r = 0; r < s.R; ++r)
      for (int t = 0; t < s.S; ++t)
        offsets[size_t((c * s.R + r) * s.S + t)] =
            ((int64_t(c) * phases_h + r % sh) * phases_w + t % sw) * plane_floats + int64_t(r / sh) * L + t / sw;

  // Weights (G, k blocks, taps, kBlockK), tap-major inside a block so a tap's weights are adjacent; 0 past Kg.
  const int k_blocks = int(ceil_div(Kg, kBlockK));
  float* wp = direct_weights(size_t(s.groups) * k_blocks * taps * kBlockK);
  for (int g = 0; g < s.groups; ++g)
    for (int kb = 0; kb < k_blocks; ++kb)
      for (int tap = 0; tap < taps; ++tap)
        for (int j = 0; j < kBlockK; ++j) {
          const int k = kb * kBlockK + j;
          wp[((int64_t(g) * k_blocks + kb) * taps + tap) * kBlockK + j] =
              k < Kg ? w[(int64_t(g) * Kg + k) * taps + tap] : 0.f;
        }

  const int64_t items = outer * bands;
  const int64_t work = items * int64_t(band_rows) * s.Q * Kg * taps;
#pragma omp parallel for schedule(dynamic, 1) if (work >= (int64_t(1) << 20))
  for (int64_t item = 0; item < items; ++item) {
    const int band = int(item % bands), g = int(item / bands % s.groups), n = int(item / bands / s.groups);
    const int p0 = band * band_rows, rows = std::min(band_rows, s.P - p0);
    // The band's planes (Cg, phases_h, phases_w, band_rows + extra_rows, L), each with a kLanes margin.
    float* xb = direct_scratch(size_t(planes * plane_floats));
    for (int c = 0; c < Cg; ++c)
      for (int rp = 0; rp < phases_h; ++rp)
        for (int tp = 0; tp < phases_w; ++tp) {
          const float* x_c = x + s.x.plane(n, g * Cg + c);                                    // (H, W)
          float* plane = xb + ((int64_t(c) * phases_h + rp) * phases_w + tp) * plane_floats;  // (rows + extra_rows, L)
          build_phase_plane(s, x_c, rp, tp, p0, rows + extra_rows, L, plane_floats, plane);
        }
    // Positions [0, m_end) of the band: rows - 1 whole rows of pitch L, then the last row's Q columns.
    const int64_t m_end = int64_t(rows - 1) * L + s.Q;
    Pieces pieces;
    for (int64_t m0 = 0; m0 < m_end; m0 += kBlockV * kLanes) {
      const int nv = int(std::min<int64_t>(kBlockV, ceil_div(m_end - m0, kLanes)));
      cut_pieces(m0, nv, L, s.Q, p0, rows, pieces);
      for (int kb = 0; kb < k_blocks; ++kb) {
        const int kr = std::min(kBlockK, Kg - kb * kBlockK), k0 = g * Kg + kb * kBlockK;
        float* y_k[kBlockK];  // output planes (P, Q) of the tile's channels
        for (int j = 0; j < kr; ++j) y_k[j] = y + s.y.plane(n, k0 + j);
        kTiles[size_t(kr - 1)][size_t(nv - 1)](xb + m0, offsets.data(), taps,
                                               wp + (int64_t(g) * k_blocks + kb) * taps * kBlockK, y_k,
                                               b ? b + k0 : nullptr, epilogue.relu, pieces);
      }
    }
  }
}

}  // namespace
}  // namespace cpu
}  // namespace kernels
