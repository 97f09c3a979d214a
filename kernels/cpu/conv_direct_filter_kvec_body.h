#pragma once
// The direct backward filter vectorised over output channels (kernels/cpu/conv_direct_filter.h), for many-channel
// layers (VGG-16 conv1_2, AlexNet conv2) and the first layers' 96 output channels. Included by
// conv_direct_filter_<isa>.cpp after conv_direct_filter_body.h, whose vector layer, phase planes and buffers it uses.
// Internal linkage only.
//
//   dw[k, c, r, t] (+)= sum over n, p, q of dy[n, k, p, q] * x[n, g*Cg+c, p*sh-pad_h+r, q*sw-pad_w+t]
//
// The few-channel kernel (conv_direct_filter_body.h) puts positions in the lanes: each tap loads a run of x that
// crosses cache lines, and its dy tile and x runs stream from L2 for every register tile (on a core with two FMA
// pipes that bound it at ~40% of peak on AlexNet conv1). Here a register tile is kFvVectors vectors of kLanes output
// channels x NT taps, positions are the reduction: per position KV aligned loads of dy transposed to (position,
// channel), one broadcast of x per tap, KV x NT FMAs. The same shape as the channel-vectorised forward's tile
// (conv_direct_kvec_body.h) with taps in place of positions.
//
// The work goes by bands: (group, image, band of output rows), in that order. A band's phase planes (as the other
// direct kernels: tap (c, r, t) of output (p, q) reads plane (c, r % sh, t % sw) at (p - p0 + r / sh) * L + q + t / sw)
// and its dy, transposed to (k blocks, positions, kFvWidth), are built by all threads into one of two buffers; then
// every thread takes items (k block, run of register tiles) and runs their tiles over the band's positions, a chunk
// at a time so that the chunk's transposed dy stays in L1 while the item's tiles go by. A tile's sums live in `acc`
// (G, k blocks, taps, kFvWidth) between chunks and bands. The next band is built into the other buffer while the last
// items of this one finish (an item of band j+1 starts only after every thread has built band j+1, so after every item
// of band j). So each dw element is one sequence of FMAs over (n, p, q) in order whatever the items or the thread
// count: bit-identical for any number of threads.
#include "kernels/cpu/conv_direct_filter_body.h"

namespace kernels {
namespace cpu {
namespace {

#if defined(__AVX512F__)
constexpr int kFvVectors = 4, kFvAccs = 24;  // 24 accumulators + 4 dy + 1 x of 32 zmm (4 x 6 taps, 2 x 12, 1 x 24)
#else
constexpr int kFvVectors = 3, kFvAccs = 12;  // 12 accumulators + 3 dy + 1 x of 16 (3 x 4 taps, 2 x 6, 1 x 12)
#endif
constexpr int kFvWidth = kFvVectors * kLanes;  // output channels of a k block
// Positions of a chunk: its transposed dy (kFvWidth floats each, 32 KB on AVX-512) stays in L1 for the item's tiles.
constexpr int64_t kFvChunk = 8192 / kFvWidth;
// A band's planes and transposed dy take at most this many floats (512 KB; two bands in L2 with room to spare). A
// band has at least one row.
constexpr int64_t kFvBandFloats = int64_t(1) << 17;
// Items per thread and band (an item is a run of register tiles of one k block): the last items of a band finish
// while the next band is built, so more, smaller items even the threads out.
constexpr int64_t kFvItemsPerThread = 8;

// A run of positions of one output row within a band: x_off = (p - p0) * L + q0 (where the planes are read at tap
// offset 0), d_off = i * kFvWidth (i: the band position index (p - p0) * Q + q0), count positions.
struct FvSegment {
  int64_t x_off, d_off;
  int count;
};

// One register tile: KV vectors of channels x NT taps over segments [seg, seg + segments). x_tap[t]: the band's
// planes at tap t's offset; dy (band positions, kFvWidth): the k block's transposed dy; acc (NT, kFvWidth): the
// tile's sums, loaded first unless `first`, stored after.
template <int KV, int NT>
void fv_tile(const float* const* x_tap, const FvSegment* seg, int segments, const float* dy, float* acc, bool first) {
  V a[NT][KV];  // (NT, KV vectors)
#pragma GCC unroll 24
  for (int t = 0; t < NT; ++t)
#pragma GCC unroll 4
    for (int v = 0; v < KV; ++v) a[t][v] = first ? v_zero() : v_load(acc + t * kFvWidth + v * kLanes);
  for (int sg = 0; sg < segments; ++sg) {
    const float* xs[NT];
#pragma GCC unroll 24
    for (int t = 0; t < NT; ++t) xs[t] = x_tap[t] + seg[sg].x_off;
    const float* d = dy + seg[sg].d_off;
    for (int j = 0; j < seg[sg].count; ++j, d += kFvWidth) {
      V dv[KV];
#pragma GCC unroll 4
      for (int v = 0; v < KV; ++v) dv[v] = v_load(d + v * kLanes);
#pragma GCC unroll 24
      for (int t = 0; t < NT; ++t) {
        const float xv = xs[t][j];
#pragma GCC unroll 4
        for (int v = 0; v < KV; ++v) a[t][v] = v_fma(xv, dv[v], a[t][v]);
      }
    }
  }
#pragma GCC unroll 24
  for (int t = 0; t < NT; ++t)
#pragma GCC unroll 4
    for (int v = 0; v < KV; ++v) v_store(acc + t * kFvWidth + v * kLanes, a[t][v]);
}

using FvTileFn = void (*)(const float* const*, const FvSegment*, int, const float*, float*, bool);

// Taps of a full tile of KV vectors.
constexpr int fv_tile_taps(int kv) {
  return kFvAccs / kv;
}
template <int KV, int NT>
constexpr FvTileFn fv_tile_or_null() {
  if constexpr (KV * NT <= kFvAccs) {
    return &fv_tile<KV, NT>;
  } else {
    return nullptr;
  }
}
template <int KV, int... NT>
constexpr std::array<FvTileFn, kFvAccs> fv_tile_row(std::integer_sequence<int, NT...>) {
  return {fv_tile_or_null<KV, NT + 1>()...};
}
template <int... KV>
constexpr std::array<std::array<FvTileFn, kFvAccs>, kFvVectors> fv_tile_table(std::integer_sequence<int, KV...>) {
  return {fv_tile_row<KV + 1>(std::make_integer_sequence<int, kFvAccs>())...};
}
// kFvTiles[KV - 1][NT - 1] = fv_tile<KV, NT> (null where KV x NT > kFvAccs).
constexpr auto kFvTiles = fv_tile_table(std::make_integer_sequence<int, kFvVectors>());

// Band positions [i0, i1) (index (p - p0) * Q + q) as row segments; returns how many.
int fv_segments(int64_t i0, int64_t i1, int Q, int64_t L, FvSegment* out) {
  int n = 0;
  for (int64_t i = i0; i < i1;) {
    const int64_t a = i / Q, q = i % Q, count = std::min<int64_t>(Q - q, i1 - i);
    out[n++] = {a * L + q, i * kFvWidth, int(count)};
    i += count;
  }
  return n;
}

// 64-byte aligned floats of a buffer of the calling thread (the OpenMP workers share it), grown as needed.
float* fv_buffer(std::vector<float>& buffer, size_t floats) {
  if (buffer.size() < floats + 16) buffer.resize(floats + 16);
  const uintptr_t at = reinterpret_cast<uintptr_t>(buffer.data());
  return buffer.data() + (((at + 63) & ~uintptr_t(63)) - at) / sizeof(float);
}

void conv_backward_filter_direct_kvec_body(const ConvShape& s, const float* x, const float* dy, float* dw,
                                           bool accumulate) {
  const int Kg = s.K / s.groups, Cg = s.C / s.groups, RS = s.R * s.S, taps = Cg * RS, sh = s.stride_h, sw = s.stride_w;
  const int64_t dw_floats = int64_t(s.K) * taps;
  if (int64_t(s.N) * s.P * s.Q == 0) {
    if (!accumulate) std::fill_n(dw, dw_floats, 0.f);
    return;
  }
  const int phases_h = std::min(sh, s.R), phases_w = std::min(sw, s.S);  // the phases some tap reads
  const int64_t phase_planes = int64_t(phases_h) * phases_w;
  const int64_t L = s.Q + (s.S - 1) / sw;  // row pitch of the planes
  const int extra_rows = (s.R - 1) / sh;   // plane rows past a band's last output row
  // k blocks of equal vector counts (96 channels on AVX-512: 2 x 3 vectors, whose 3 x 8 tiles load less per FMA
  // than a 4 x 6 and a 2 x 12), kb_channels channels each (the last may have fewer), kFvWidth floats apart.
  const int vectors = int(ceil_div(Kg, kLanes)), k_blocks = int(ceil_div(vectors, kFvVectors));
  const int kb_channels = int(ceil_div(vectors, k_blocks)) * kLanes;

  // Band rows: the planes and transposed dy within kFvBandFloats.
  const int64_t row_floats = int64_t(Cg) * phase_planes * L + int64_t(k_blocks) * s.Q * kFvWidth;
  const int64_t fixed_floats = int64_t(Cg) * phase_planes * extra_rows * L;
  const int band_rows =
      int(std::clamp<int64_t>((kFvBandFloats - fixed_floats) / std::max<int64_t>(row_floats, 1), 1, s.P));
  const int bands = int(ceil_div(s.P, band_rows));
  const int64_t plane_floats = int64_t(band_rows + extra_rows) * L;
  const int64_t band_positions = int64_t(band_rows) * s.Q;
  const int64_t planes_floats = int64_t(Cg) * phase_planes * plane_floats;
  const int64_t dyt_floats = int64_t(k_blocks) * band_positions * kFvWidth;
  const int64_t buffer_floats = ceil_div(planes_floats + dyt_floats, 16) * 16;  // planes, then dy transposed

  // Tap (c, r, t) reads plane (c, r % sh, t % sw) at (r / sh) * L + t / sw from a position's place.
  std::vector<int64_t> offsets(static_cast<size_t>(taps), 0);  // (Cg, R, S)
  for (int c = 0; c < Cg; ++c)
    for (int r = 0; r < s.R; ++r)
      for (int t = 0; t < s.S; ++t)
        offsets[size_t((c * s.R + r) * s.S + t)] =
            ((int64_t(c) * phases_h + r % sh) * phases_w + t % sw) * plane_floats + int64_t(r / sh) * L + t / sw;

  // Register tiles per k block: taps cut into tiles of even sizes (at most fv_tile_taps(KV)), runs of tiles per item.
  const int64_t threads = omp_get_max_threads();
  std::vector<int> kb_vectors(static_cast<size_t>(k_blocks)), kb_tiles(static_cast<size_t>(k_blocks));
  int64_t all_tiles = 0;
  for (int kb = 0; kb < k_blocks; ++kb) {
    kb_vectors[size_t(kb)] = int(std::min<int64_t>(kb_channels, Kg - int64_t(kb) * kb_channels) + kLanes - 1) / kLanes;
    kb_tiles[size_t(kb)] = int(ceil_div(taps, fv_tile_taps(kb_vectors[size_t(kb)])));
    all_tiles += kb_tiles[size_t(kb)];
  }
  const int64_t tiles_per_item = std::max<int64_t>(1, all_tiles / (threads > 1 ? kFvItemsPerThread * threads : 1));
  std::vector<int> item_kb, item_tile;  // (items): the k block and first tile of each item
  for (int kb = 0; kb < k_blocks; ++kb)
    for (int tile = 0; tile < kb_tiles[size_t(kb)]; tile += int(tiles_per_item)) {
      item_kb.push_back(kb);
      item_tile.push_back(tile);
    }
  const int64_t items = int64_t(item_kb.size());

  thread_local std::vector<float> band_buffer, acc_buffer;
  float* buffers = fv_buffer(band_buffer, size_t(2 * buffer_floats));  // (2, planes then dy transposed)
  float* acc = fv_buffer(acc_buffer, size_t(int64_t(s.groups) * k_blocks * taps * kFvWidth));  // (G, kb, taps, W)
  const int64_t band_count = int64_t(s.groups) * s.N * bands;
  const int64_t build_units = int64_t(Cg) * phase_planes + int64_t(k_blocks) * band_rows;
  const int64_t work = int64_t(s.N) * s.P * s.Q * int64_t(s.K) * taps;

#pragma omp parallel if (work >= (int64_t(1) << 20))
  {
    FvSegment segments[kFvChunk + 2];  // a chunk's row segments
    for (int64_t band = 0; band < band_count; ++band) {
      const int bi = int(band % bands), n = int(band / bands % s.N), g = int(band / bands / s.N);
      const int p0 = bi * band_rows, rows = std::min(band_rows, s.P - p0);
      float* planes = buffers + band % 2 * buffer_floats;  // (Cg, phases_h, phases_w, plane_floats)
      float* dyt = planes + planes_floats;                 // (k_blocks, band_positions, kFvWidth)
      // Build the band: each plane, and each (k block, row) of dy transposed. The barrier at the end: all is built.
#pragma omp for schedule(dynamic, 1)
      for (int64_t unit = 0; unit < build_units; ++unit) {
        if (unit < Cg * phase_planes) {
          const int c = int(unit / phase_planes), rp = int(unit / phases_w % phases_h), tp = int(unit % phases_w);
          const float* x_c = x + s.x.plane(n, int64_t(g) * Cg + c);  // (H, W)
          build_phase_plane(s, x_c, rp, tp, p0, rows + extra_rows, L, plane_floats, planes + unit * plane_floats);
          continue;
        }
        const int64_t u = unit - Cg * phase_planes;
        const int kb = int(u / band_rows), a = int(u % band_rows);
        float* out = dyt + (kb * band_positions + int64_t(a) * s.Q) * kFvWidth;  // (Q, kFvWidth)
        if (a >= rows) continue;
        const int kn = int(std::min<int64_t>(kb_channels, Kg - int64_t(kb) * kb_channels));
        const float* dy_row = dy + s.y.plane(n, int64_t(g) * Kg + int64_t(kb) * kb_channels) + int64_t(p0 + a) * s.Q;
        // kLanes x kLanes blocks through registers (a float at a time cost as much as the FMAs of 121 taps); the
        // edges a float at a time, zeros past kn.
        for (int q0 = 0; q0 < s.Q; q0 += kLanes) {
          const int qn = std::min(kLanes, s.Q - q0);
          int j0 = 0;
          if (qn == kLanes)
            for (; j0 + kLanes <= kn; j0 += kLanes)
              v_transpose(dy_row + j0 * s.y.channel_stride + q0, s.y.channel_stride, out + q0 * kFvWidth + j0,
                          kFvWidth);
          for (int j = j0; j < kn; ++j) {
            const float* src = dy_row + j * s.y.channel_stride + q0;  // (qn)
            for (int i = 0; i < qn; ++i) out[(q0 + i) * kFvWidth + j] = src[i];
          }
          for (int i = 0; i < qn; ++i) std::fill(out + (q0 + i) * kFvWidth + kn, out + (q0 + i + 1) * kFvWidth, 0.f);
        }
      }
      const bool first_band = n == 0 && bi == 0;
      const int64_t positions = int64_t(rows) * s.Q;
#pragma omp for schedule(dynamic, 1) nowait
      for (int64_t item = 0; item < items; ++item) {
        const int kb = item_kb[size_t(item)], kv = kb_vectors[size_t(kb)], tiles = kb_tiles[size_t(kb)];
        const int tile_end = int(std::min<int64_t>(tiles, item_tile[size_t(item)] + tiles_per_item));
        const float* dy_kb = dyt + kb * band_positions * kFvWidth;             // (positions, width)
        float* acc_kb = acc + (int64_t(g) * k_blocks + kb) * taps * kFvWidth;  // (taps, width)
        for (int64_t i0 = 0; i0 < positions; i0 += kFvChunk) {
          const int count = fv_segments(i0, std::min(positions, i0 + kFvChunk), s.Q, L, segments);
          for (int tile = item_tile[size_t(item)]; tile < tile_end; ++tile) {
            // Tile `tile` of `tiles` even ones over the taps.
            const int t0 = int(int64_t(taps) * tile / tiles), nt = int(int64_t(taps) * (tile + 1) / tiles) - t0;
            const float* x_tap[kFvAccs];
            for (int t = 0; t < nt; ++t) x_tap[t] = planes + offsets[size_t(t0 + t)];
            kFvTiles[size_t(kv - 1)][size_t(nt - 1)](x_tap, segments, count, dy_kb, acc_kb + int64_t(t0) * kFvWidth,
                                                     first_band && i0 == 0);
          }
        }
      }
    }
  }

  // dw (+)= the sums, transposed back to (K, taps).
  const int64_t elements = int64_t(s.groups) * Kg * taps;
#pragma omp parallel for schedule(static) if (elements >= (int64_t(1) << 16))
  for (int64_t e = 0; e < elements; ++e) {
    const int64_t tap = e % taps, k = e / taps % Kg, g = e / taps / Kg;
    const float sum = acc[((g * k_blocks + k / kb_channels) * taps + tap) * kFvWidth + k % kb_channels];
    dw[e] = accumulate ? dw[e] + sum : sum;
  }
}

}  // namespace
}  // namespace cpu
}  // namespace kernels
