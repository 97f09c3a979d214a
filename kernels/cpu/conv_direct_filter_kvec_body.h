#pragma once
// The direct backward filter vectorised over output channels (kernels/cpu/conv_direct_filter.h), for many-channel
// layers (VGG-16, AlexNet conv2-5) and AlexNet conv1 (96 output channels, 121 or 363 taps). Included by
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
// The register tiles ((group, k block, run of taps)) are dealt to the threads in runs of about equal FMA counts, and
// each thread works alone: for each band (image, band of output rows) of a group it builds the phase planes of the
// input channels its tiles read (as the other direct kernels: tap (c, r, t) of output (p, q) reads plane
// (c, r % sh, t % sw) at (p - p0 + r / sh) * L + q + t / sw) and the transposed dy (k blocks, positions, kFvWidth) of
// its k blocks, in its own buffer, then runs its tiles over the band a chunk of positions at a time, so that the
// chunk's transposed dy stays in L1 while the tiles go by. (Bands built by all threads into shared buffers made each
// core read the other's half from its L2: two threads ran 1.3x one on AlexNet conv1.) A tile's sums live in `acc`
// (G, k blocks, taps, kFvWidth) between chunks and bands. So each dw element is one sequence of FMAs over (n, p, q) in
// order whatever the thread count: bit-identical for any number of threads. Where threads share a k block, each
// transposes its dy (AlexNet conv1 has two k blocks for two threads; VGG-16 conv1_2 one, and its 576 taps pay for it).
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
// Positions of a chunk: its transposed dy (kFvWidth floats each, 32 KB on AVX-512) stays in L1 for the tiles.
constexpr int64_t kFvChunk = 8192 / kFvWidth;
// Bands of at most this many positions are one chunk.
constexpr int64_t kFvSmallBand = 512;
// A band's planes and transposed dy take at most this many floats (512 KB, in L2). A band has at least one row.
constexpr int64_t kFvBandFloats = int64_t(1) << 17;
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

// The phase planes (rp, 0 .. phases_w - 1) of one channel x_c (H, W), as build_phase_plane makes them, plane_floats
// apart from planes: with stride 4 in the columns on AVX-512, each x row is split into the four column phases 16
// columns at a time in registers.
void fv_build_planes(const ConvShape& s, const float* x_c, int rp, int first_row, int rows, int64_t L,
                     int64_t plane_floats, int phases_w, float* planes) {
  if (!kDeinterleave4 || s.stride_w != 4 || phases_w != 4)
    return build_column_phases(s, x_c, rp, first_row, rows, L, plane_floats, phases_w, planes);
  float* out[4];                                      // the row of each column phase
  auto column = [&](const float* x_row, int64_t i) {  // entry i of every phase: x_row[i * 4 + tp - pad_w], 0 outside
    for (int tp = 0; tp < 4; ++tp) {
      const int64_t w = i * 4 + tp - s.pad_w;
      out[tp][i] = w >= 0 && w < s.W ? x_row[w] : 0.f;
    }
  };
  const int64_t i_first = ceil_div(s.pad_w, 4);  // the first entry whose 4 phases read inside the row (w >= 0)
  for (int a = 0; a < rows; ++a) {
    for (int tp = 0; tp < 4; ++tp) out[tp] = planes + tp * plane_floats + a * L;
    const int h = (first_row + a) * s.stride_h + rp - s.pad_h;
    if (h < 0 || h >= s.H) {
      for (int tp = 0; tp < 4; ++tp) std::fill_n(out[tp], L, 0.f);
      continue;
    }
    const float* x_row = x_c + int64_t(h) * s.W;  // (W)
    int64_t i = 0;
    for (; i < std::min(i_first, L); ++i) column(x_row, i);
    for (; i + 16 <= L && (i + 16) * 4 - s.pad_w <= s.W; i += 16)
      v_deinterleave4(x_row + i * 4 - s.pad_w, out[0] + i, out[1] + i, out[2] + i, out[3] + i);
    for (; i < L; ++i) column(x_row, i);
  }
  for (int tp = 0; tp < 4; ++tp)
    std::fill(planes + tp * plane_floats + rows * L, planes + (tp + 1) * plane_floats, 0.f);
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

  // Register tiles: per (group, k block), the taps cut into tiles of even sizes (at most fv_tile_taps(KV)). Each
  // thread takes a run of them in (group, k block, tile) order, of about equal FMA counts.
  std::vector<int> kb_vectors(static_cast<size_t>(k_blocks)), kb_tiles(static_cast<size_t>(k_blocks));
  std::vector<int64_t> kb_first(static_cast<size_t>(k_blocks) + 1, 0);  // (k_blocks + 1): tile index of each k block
  for (int kb = 0; kb < k_blocks; ++kb) {
    kb_vectors[size_t(kb)] = int(std::min<int64_t>(kb_channels, Kg - int64_t(kb) * kb_channels) + kLanes - 1) / kLanes;
    kb_tiles[size_t(kb)] = int(ceil_div(taps, fv_tile_taps(kb_vectors[size_t(kb)])));
    kb_first[size_t(kb) + 1] = kb_first[size_t(kb)] + kb_tiles[size_t(kb)];
  }
  const int64_t group_tiles = kb_first[size_t(k_blocks)], all_tiles = group_tiles * s.groups;
  auto tile_kb = [&](int64_t tile) {  // the k block of tile `tile` within a group
    return int(std::upper_bound(kb_first.begin(), kb_first.end(), tile) - kb_first.begin()) - 1;
  };
  auto tile_taps = [&](int kb, int64_t tile, int64_t* t0, int* nt) {  // tile `tile` of k block kb's even ones
    const int tiles = kb_tiles[size_t(kb)];
    *t0 = int64_t(taps) * tile / tiles;
    *nt = int(int64_t(taps) * (tile + 1) / tiles - *t0);
  };

  thread_local std::vector<float> acc_buffer;
  float* acc = fv_buffer(acc_buffer, size_t(int64_t(s.groups) * k_blocks * taps * kFvWidth));  // (G, kb, taps, W)
  const int jblocks = kb_channels / kLanes;  // vector blocks of channels of a k block
  const int64_t work = int64_t(s.N) * s.P * s.Q * int64_t(s.K) * taps;

#pragma omp parallel if (work >= (int64_t(1) << 20))
  {
    // This thread's tiles [tile_begin, tile_end) of all_tiles: the FMAs per position (vectors x taps) split evenly.
    const int threads = omp_get_num_threads(), me = omp_get_thread_num();
    int64_t tile_begin = all_tiles, tile_end = all_tiles;
    {
      int64_t total = 0;
      for (int64_t i = 0; i < all_tiles; ++i) total += kb_vectors[size_t(tile_kb(i % group_tiles))];
      int64_t sum = 0;
      for (int64_t i = 0; i < all_tiles; ++i) {
        const int64_t weight = kb_vectors[size_t(tile_kb(i % group_tiles))];
        const int64_t owner = std::min<int64_t>(threads - 1, (2 * sum + weight) * threads / (2 * total));
        if (owner == me && tile_begin == all_tiles) tile_begin = i;
        if (owner == me) tile_end = i + 1;
        sum += weight;
      }
    }
    thread_local std::vector<float> band_buffer;
    float* planes = fv_buffer(band_buffer, size_t(buffer_floats));  // (Cg, phases_h, phases_w, plane_floats)
    float* dyt = planes + planes_floats;                            // (k_blocks, band_positions, kFvWidth)
    // A small band is one chunk: its transposed dy of one k block is in L1 or L2 anyway, and each tile's sums (which
    // come from L3 on many-channel layers) are then loaded once per band, not once per kFvChunk positions.
    const int64_t chunk = band_positions <= kFvSmallBand ? band_positions : kFvChunk;
    thread_local std::vector<FvSegment> segment_buffer;
    if (segment_buffer.size() < size_t(chunk + 2)) segment_buffer.resize(size_t(chunk + 2));
    FvSegment* segments = segment_buffer.data();  // a chunk's row segments
    for (int g = 0; g < s.groups && tile_begin < tile_end; ++g) {
      const int64_t lo = std::max(tile_begin, int64_t(g) * group_tiles) - int64_t(g) * group_tiles;
      const int64_t hi = std::min(tile_end, int64_t(g + 1) * group_tiles) - int64_t(g) * group_tiles;
      if (lo >= hi) continue;
      // The k blocks and input channels this thread's tiles of group g read.
      const int kb_lo = tile_kb(lo), kb_hi = tile_kb(hi - 1);
      int c_lo = Cg, c_hi = 0;
      for (int64_t i = lo; i < hi; ++i) {
        int64_t t0;
        int nt;
        tile_taps(tile_kb(i), i - kb_first[size_t(tile_kb(i))], &t0, &nt);
        c_lo = std::min(c_lo, int(t0 / RS));
        c_hi = std::max(c_hi, int((t0 + nt - 1) / RS) + 1);
      }
      for (int n = 0; n < s.N; ++n)
        for (int p0 = 0; p0 < s.P; p0 += band_rows) {
          const int rows = std::min(band_rows, s.P - p0);
          const int64_t positions = int64_t(rows) * s.Q;
          for (int c = c_lo; c < c_hi; ++c)
            for (int rp = 0; rp < phases_h; ++rp) {
              const float* x_c = x + s.x.plane(n, int64_t(g) * Cg + c);                            // (H, W)
              float* planes_rp = planes + (int64_t(c) * phases_h + rp) * phases_w * plane_floats;  // (phases_w, ...)
              fv_build_planes(s, x_c, rp, p0, rows + extra_rows, L, plane_floats, phases_w, planes_rp);
            }
          for (int kb = kb_lo; kb <= kb_hi; ++kb) {
            const int kn = int(std::min<int64_t>(kb_channels, Kg - int64_t(kb) * kb_channels));
            for (int jb = 0; jb < jblocks; ++jb) {
              const int j0 = jb * kLanes, jn = std::clamp(kn - j0, 0, kLanes);  // this block's channels with dy
              float* out = dyt + kb * band_positions * kFvWidth + j0;           // [i * kFvWidth + j]
              const float* src =  // the band's rows of the block's first channel (none past Kg)
                  jn > 0 ? dy + s.y.plane(n, int64_t(g) * Kg + int64_t(kb) * kb_channels + j0) + int64_t(p0) * s.Q
                         : nullptr;
              int64_t i = 0;
              // kLanes x kLanes blocks through registers (a float at a time cost as much as 121 taps' FMAs).
              if (jn == kLanes)
                for (; i + kLanes <= positions; i += kLanes)
                  v_transpose(src + i, s.y.channel_stride, out + i * kFvWidth, kFvWidth);
              // The rest a float at a time; zeros past kn in the lanes the tiles load (their sums are never read,
              // but a leftover NaN or denormal there would slow the FMAs).
              for (; i < positions; ++i) {
                for (int j = 0; j < jn; ++j) out[i * kFvWidth + j] = src[j * s.y.channel_stride + i];
                for (int j = jn; j < kLanes; ++j) out[i * kFvWidth + j] = 0.f;
              }
            }
          }
          // Each k block's tiles, a chunk of positions at a time (its transposed dy in L1 while the tiles go by).
          const bool first_band = n == 0 && p0 == 0;
          for (int kb = kb_lo; kb <= kb_hi; ++kb) {
            const int64_t first = std::max(lo, kb_first[size_t(kb)]), last = std::min(hi, kb_first[size_t(kb) + 1]);
            const int kv = kb_vectors[size_t(kb)];
            const float* dy_kb = dyt + kb * band_positions * kFvWidth;             // (positions, width)
            float* acc_kb = acc + (int64_t(g) * k_blocks + kb) * taps * kFvWidth;  // (taps, width)
            for (int64_t i0 = 0; i0 < positions; i0 += chunk) {
              const int count = fv_segments(i0, std::min(positions, i0 + chunk), s.Q, L, segments);
              for (int64_t i = first; i < last; ++i) {
                int64_t t0;
                int nt;
                tile_taps(kb, i - kb_first[size_t(kb)], &t0, &nt);
                const float* x_tap[kFvAccs];
                for (int t = 0; t < nt; ++t) x_tap[t] = planes + offsets[size_t(t0 + t)];
                kFvTiles[size_t(kv - 1)][size_t(nt - 1)](x_tap, segments, count, dy_kb, acc_kb + t0 * kFvWidth,
                                                         first_band && i0 == 0);
              }
            }
          }
        }
    }
  }

  // dw (+)= the sums, transposed back to (K, taps) in kLanes x kLanes blocks, a unit of kLanes channels at a time. (An
  // element at a time, with divisions for its indices, took as long as the FMAs on AlexNet conv3's 885k elements.)
  const int64_t units = int64_t(s.groups) * k_blocks * jblocks;
#pragma omp parallel for schedule(static) if (dw_floats >= (int64_t(1) << 16))
  for (int64_t u = 0; u < units; ++u) {
    const int g = int(u / (int64_t(k_blocks) * jblocks)), kb = int(u / jblocks % k_blocks),
              j0 = int(u % jblocks) * kLanes;
    const int jn = std::clamp(int(std::min<int64_t>(kb_channels, Kg - int64_t(kb) * kb_channels)) - j0, 0, kLanes);
    if (jn == 0) continue;
    const float* sums = acc + (int64_t(g) * k_blocks + kb) * taps * kFvWidth + j0;  // [tap * kFvWidth + j]
    float* d = dw + (int64_t(g) * Kg + int64_t(kb) * kb_channels + j0) * taps;      // [j * taps + tap]
    int64_t t = 0;
    if (jn == kLanes)
      for (; t + kLanes <= taps; t += kLanes) {
        alignas(64) float block[kLanes * kLanes];  // (kLanes channels, kLanes taps)
        v_transpose(sums + t * kFvWidth, kFvWidth, block, kLanes);
        for (int j = 0; j < kLanes; ++j)
          for (int i = 0; i < kLanes; ++i) {
            float* out = d + j * taps + t + i;
            *out = accumulate ? *out + block[j * kLanes + i] : block[j * kLanes + i];
          }
      }
    for (; t < taps; ++t)
      for (int j = 0; j < jn; ++j) {
        float* out = d + j * taps + t;
        *out = accumulate ? *out + sums[t * kFvWidth + j] : sums[t * kFvWidth + j];
      }
  }
}

}  // namespace
}  // namespace cpu
}  // namespace kernels
