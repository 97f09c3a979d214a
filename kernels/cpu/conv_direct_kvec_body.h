#pragma once
// The direct forward kernel vectorised over output channels (kernels/cpu/conv_direct_fwd.h), for many-channel layers
// (AlexNet conv2-5, VGG-16, mapnet_bn_fine conv1-4, GoogLeNet's 3x3 and 5x5) and stride-1 backward-data. Vectorising
// over positions instead (conv_direct_fwd_body.h) wastes the lanes of the L - Q columns past each row and of the last
// vector of a band on small maps (13 of 15 lanes used on AlexNet's 13x13).
// Included by conv_direct_fwd_<isa>.cpp after conv_direct_fwd_body.h, whose vector helpers, phase planes and scratch
// it uses. Internal linkage only.
//
//   y[n,k,p,q] = b[k] + sum over taps (c, r, t) of w[k, c, r, t] * x[n, g*Cg+c, p*sh-pad_h+r, q*sw-pad_w+t]
//
// A padded input goes through the same phase planes (tap (c, r, t) of output (p, q) reads its plane at p*L + q +
// offset); an unpadded one is read where it is (every tap of every output lies inside the image). A register tile is
// a few output positions x up to kKvVectors vectors of kLanes output channels: per tap one load per vector of the
// channels' weights, one broadcast input value per position, one FMA each. Any positions may share a tile (each has
// its own address), so no lane is wasted on the columns past Q; a k block of fewer vectors takes more positions.
//
// Work items are (group, chunk of k blocks, image, run of output positions), contiguous shares of them per thread; each
// thread packs the weights of its chunks and builds its runs' planes in its own buffers (nothing written by one thread
// is read by another). Channels are reduced in blocks whose weights for one k block stay in L1 while every position of
// the run goes by; the partial sums live in a per-thread scratch (chunk k blocks, run positions, kKvWidth), so an
// output's sum is the same sequence of FMAs whatever the blocks, chunks, runs, tiles or threads (bit-identical for any
// thread count). Once a run's channels are all summed, its sums go to y's planes by block transposes, adding the bias
// (or y's old value, for accumulate) and applying the ReLU.
#include "kernels/cpu/conv_direct_fwd_body.h"
#include "kernels/cpu/conv_direct_transpose.h"

namespace kernels {
namespace cpu {
namespace {

constexpr int kKvVectors = kLanes == 16 ? 4 : 3;    // AVX-512: 6 x 4 = 24 accumulators + 4 weights of 32 zmm
constexpr int kKvPositions = kLanes == 16 ? 6 : 4;  // AVX2, SSE2: 4 x 3 = 12 accumulators + 3 weights of 16
constexpr int kKvWidth = kKvVectors * kLanes;       // output channels of a k block
// Taps of a channel block: its weights for one k block (32 KB on AVX-512, 24 KB on AVX2) stay in L1 while the run's
// tiles go by. On AVX-512 (48 KB L1) 128 taps against 256 (64 KB, read from L2 by every tile): AlexNet conv3 forward
// 5.0 / 5.5 ms, conv5 2.3-2.4 / 2.6, VGG-16 conv1_2 15.3 / 17.7, conv5_2 15.4-15.9 / 16.4-17.0 (2 threads; 96, 160 and
// 192 taps within noise of 128, 192 slower on conv1_2).
constexpr int kKvBlockTaps = kLanes == 16 ? 128 : 256;
// A run's partial sums (k blocks x positions x kKvWidth) within 256 KB.
constexpr int64_t kKvBandFloats = int64_t(1) << 16;
// The packed weights of a chunk of k blocks (one item's) within 1 MB, in L2 with the planes and sums.
constexpr int64_t kKvChunkFloats = int64_t(1) << 18;
static_assert(kLanes == kTransposeLanes, "v_transpose moves one vector per row");

// One register tile: NP positions (x_at[i]: the channel block's planes at position i) x KV vectors of channels.
// offsets (taps): where each tap reads; w (taps, kKvWidth): the k block's weights; sums (NP, kKvWidth): the partial
// sums, loaded first unless `first`, stored after.
template <int NP, int KV>
void kv_tile(const float* const* x_at, const int64_t* offsets, int taps, const float* w, float* sums, bool first) {
  V acc[NP][KV];  // (NP, KV vectors)
#pragma GCC unroll 24
  for (int i = 0; i < NP; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < KV; ++v) acc[i][v] = first ? v_zero() : v_load(sums + i * kKvWidth + v * kLanes);
  for (int tap = 0; tap < taps; ++tap) {
    const int64_t off = offsets[tap];
    const float* wt = w + int64_t(tap) * kKvWidth;
    V wv[KV];
#pragma GCC unroll 4
    for (int v = 0; v < KV; ++v) wv[v] = v_load(wt + v * kLanes);
#pragma GCC unroll 24
    for (int i = 0; i < NP; ++i) {
      const float xi = x_at[i][off];
#pragma GCC unroll 4
      for (int v = 0; v < KV; ++v) acc[i][v] = v_fma(xi, wv[v], acc[i][v]);
    }
  }
#pragma GCC unroll 24
  for (int i = 0; i < NP; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < KV; ++v) v_store(sums + i * kKvWidth + v * kLanes, acc[i][v]);
}

using KvTileFn = void (*)(const float* const*, const int64_t*, int, const float*, float*, bool);

// Positions of a tile of kv vectors: as many as the accumulators allow (kKvPositions x kKvVectors of them), so that a
// k block narrower than kKvWidth (32 channels: conv1-2 of mapnet_bn_fine) keeps every accumulator busy. The tile's
// shape does not change an output's sequence of FMAs.
constexpr int kKvAccumulators = kKvPositions * kKvVectors;
constexpr int kKvMostPositions = kKvAccumulators;  // kv = 1
constexpr int kv_tile_positions(int kv) {
  return kKvAccumulators / kv;
}

template <int KV, int NP>
constexpr KvTileFn kv_tile_or_null() {
  if constexpr (NP <= kv_tile_positions(KV))
    return &kv_tile<NP, KV>;
  else
    return nullptr;
}
template <int KV, int... NP>
constexpr std::array<KvTileFn, kKvMostPositions> kv_tile_row(std::integer_sequence<int, NP...>) {
  return {kv_tile_or_null<KV, NP + 1>()...};
}
template <int... KV>
constexpr std::array<std::array<KvTileFn, kKvMostPositions>, kKvVectors> kv_tile_table(
    std::integer_sequence<int, KV...>) {
  return {kv_tile_row<KV + 1>(std::make_integer_sequence<int, kKvMostPositions>())...};
}
// kKvTiles[KV - 1][NP - 1] = kv_tile<NP, KV> for NP <= kv_tile_positions(KV), else null.
constexpr auto kKvTiles = kv_tile_table(std::make_integer_sequence<int, kKvVectors>());

// y (=, or += with accumulate) the epilogue of one output: the reference's order, so that a fused call matches conv +
// bias + relu bit for bit (NaN passes through the ReLU).
inline float kv_finish(float sum, const float* y, const float* bias, bool accumulate, bool relu) {
  float a = accumulate ? *y + sum : sum;
  if (bias) a += *bias;
  return relu && a < 0.f ? 0.f : a;
}

// Writes a run's finished sums (positions, kKvWidth) of one k block (kn channels) into y: output i of channel j to
// y[j * channel_stride + i], moved kLanes x kLanes at a time by block transposes (a float at a time, reading the sums a
// line each, this took about a tenth of a 32-channel layer's forward call).
void kv_write_run(const float* sums, int64_t positions, int kn, float* y, int64_t channel_stride, const float* bias,
                  bool accumulate, bool relu) {
  int64_t done = 0;
  alignas(64) float block[kLanes * kLanes];  // (kLanes channels, kLanes positions)
  for (; done + kLanes <= positions; done += kLanes)
    for (int j0 = 0; j0 < kn; j0 += kLanes) {
      v_transpose(sums + done * kKvWidth + j0, kKvWidth, block, kLanes);
      for (int j = 0; j < std::min(kLanes, kn - j0); ++j) {
        float* to = y + (j0 + j) * channel_stride + done;  // (kLanes)
        const float* b_j = bias ? bias + j0 + j : nullptr;
        for (int i = 0; i < kLanes; ++i) to[i] = kv_finish(block[j * kLanes + i], to + i, b_j, accumulate, relu);
      }
    }
  for (int j = 0; j < kn; ++j) {
    const float* b_j = bias ? bias + j : nullptr;
    float* to = y + j * channel_stride;  // (positions)
    for (int64_t i = done; i < positions; ++i) to[i] = kv_finish(sums[i * kKvWidth + j], to + i, b_j, accumulate, relu);
  }
}

float* kv_sums_scratch(size_t floats) {
  thread_local std::vector<float> scratch;
  return aligned_floats(scratch, floats);
}

int64_t* kv_offsets_scratch(size_t count) {
  thread_local std::vector<int64_t> scratch;
  if (scratch.size() < count) scratch.resize(count);
  return scratch.data();
}

float* kv_weights_scratch(size_t floats) {
  thread_local std::vector<float> scratch;
  return aligned_floats(scratch, floats);
}

// dst (taps, kKvWidth): the weights of k block kb of group g, dst[tap][j] for output channel kb * kKvWidth + j, 0 past
// Kg. Plain: row k of w (K, Cg, R, S) is that channel's taps, moved by kLanes x kLanes block transposes (a float at a
// time, the packing took 15% of AlexNet conv3's forward call). Turned (s is the forward shape of the backward-data of w
// (C, Kg, R, S)): tap (kk, r, t) of channel k is w[g*Cg + kk][k][R-1-r][S-1-t].
void kv_pack_weights(const ConvShape& s, const float* w, int g, int kb, bool turned, float* dst) {
  const int Kg = s.K / s.groups, Cg = s.C / s.groups, RS = s.R * s.S, taps = Cg * RS;
  const int kn = std::min(kKvWidth, Kg - kb * kKvWidth);
  const float* src = w + (int64_t(g) * Kg + int64_t(kb) * kKvWidth) * taps;  // (kn, taps)
  if (turned) {  // for each kk, a (kn, R, S) block of w, contiguous: written straight into dst, which stays in L1
    for (int kk = 0; kk < Cg; ++kk) {
      const float* from = w + ((int64_t(g) * Cg + kk) * Kg + int64_t(kb) * kKvWidth) * RS;  // (kn, R, S)
      float* to = dst + int64_t(kk) * RS * kKvWidth;                                        // (R, S, kKvWidth)
      for (int j = 0; j < kn; ++j)
        for (int rs = 0; rs < RS; ++rs) to[(RS - 1 - rs) * kKvWidth + j] = from[j * RS + rs];
      for (int rs = 0; rs < RS; ++rs) std::fill(to + rs * kKvWidth + kn, to + (rs + 1) * kKvWidth, 0.f);
    }
    return;
  }
  const int whole_taps = taps / kLanes * kLanes, whole_rows = kn / kLanes * kLanes;
  for (int t0 = 0; t0 < whole_taps; t0 += kLanes)
    for (int j0 = 0; j0 < whole_rows; j0 += kLanes)
      v_transpose(src + int64_t(j0) * taps + t0, taps, dst + int64_t(t0) * kKvWidth + j0, kKvWidth);
  for (int tap = 0; tap < taps; ++tap)
    for (int j = tap < whole_taps ? whole_rows : 0; j < kKvWidth; ++j)
      dst[int64_t(tap) * kKvWidth + j] = j < kn ? src[int64_t(j) * taps + tap] : 0.f;
}

void conv_forward_direct_kvec_body(const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                                   ConvEpilogue epilogue, bool accumulate, bool turned) {
  const int Kg = s.K / s.groups, Cg = s.C / s.groups, RS = s.R * s.S, taps = Cg * RS, sh = s.stride_h, sw = s.stride_w;
  const int phases_h = std::min(sh, s.R), phases_w = std::min(sw, s.S);
  const int64_t L = s.Q + (s.S - 1) / sw;
  const int extra_rows = (s.R - 1) / sh;
  const int64_t phase_planes = int64_t(phases_h) * phases_w;
  if (int64_t(s.N) * s.K * s.P * s.Q == 0) return;
  const int k_blocks = int(ceil_div(Kg, kKvWidth));

  // Items: (group, chunk of k blocks, image, run of output positions), in that order, dealt to the threads in equal
  // contiguous shares, so that a thread meets few chunks and packs their weights itself, into its own buffer, where
  // they stay in its L2 for all its images. (Weights packed once for all threads and every thread reading all of them
  // ran two threads at 1.57x one on AlexNet conv3: its 3.5 MB of weights came from L3 for every run.) One chunk where
  // the group's weights fit kKvChunkFloats (each thread packs them all and the runs feed the threads); else chunks
  // within it, as many as the threads want, of equal numbers of k blocks. An item builds its run's planes once for all
  // the k blocks of its chunk (a k block per item cost AVX2, 24 channels a block, 5-10%). Runs of equal length (whole
  // tiles), enough items for the threads, a run's partial sums within kKvBandFloats.
  const int64_t PQ = int64_t(s.P) * s.Q;
  const int64_t wanted = omp_get_max_threads() > 1 ? kItemsPerThread * omp_get_max_threads() : 1;
  const int64_t block_floats = int64_t(taps) * kKvWidth;
  const int64_t chunks0 = k_blocks * block_floats <= kKvChunkFloats
                              ? 1
                              : std::max(ceil_div(k_blocks, std::max<int64_t>(1, kKvChunkFloats / block_floats)),
                                         std::min<int64_t>(k_blocks, ceil_div(wanted, int64_t(s.groups) * s.N)));
  const int chunk_blocks = int(ceil_div(k_blocks, chunks0)), chunks = int(ceil_div(k_blocks, chunk_blocks));
  const int64_t outer = int64_t(s.groups) * chunks * s.N;
  const int64_t most_positions = std::max<int64_t>(kKvPositions, kKvBandFloats / (int64_t(chunk_blocks) * kKvWidth));
  const int64_t runs0 = std::max(ceil_div(wanted, outer), ceil_div(PQ, most_positions));
  const int64_t run_positions = ceil_div(ceil_div(PQ, std::min(runs0, PQ)), kKvPositions) * kKvPositions;
  const int64_t runs = ceil_div(PQ, run_positions);
  // Rows a run meets: at most this many, plus extra_rows below.
  const int64_t run_rows = std::min<int64_t>(s.P, ceil_div(run_positions - 1, s.Q) + 1);
  const int64_t plane_floats = (run_rows + extra_rows) * L;
  // Channel blocks: about kKvBlockTaps taps, a block's planes within kBandFloats (any split gives the same bits).
  const int64_t most_channels = std::max<int64_t>(1, kBandFloats / (phase_planes * plane_floats));
  const int c_blocks = int(ceil_div(Cg, std::min<int64_t>(most_channels, std::max(1, kKvBlockTaps / RS))));
  const int block_channels = int(ceil_div(Cg, c_blocks));

  // Unpadded, every tap of every output reads inside the image: the tiles read x's planes where they are, position
  // (p, q) at p*sh*W + q*sw, tap (c, r, t) c*channel_stride + r*W + t past it, and no planes are built.
  const bool in_place = s.pad_h == 0 && s.pad_w == 0;
  // Else tap (c, r, t) of a channel block reads plane (c, r % sh, t % sw) of the block at m + (r / sh) * L + t / sw.
  std::vector<int64_t> offsets(static_cast<size_t>(block_channels) * RS, 0);  // (block_channels, R, S)
  for (int c = 0; c < block_channels; ++c)
    for (int r = 0; r < s.R; ++r)
      for (int t = 0; t < s.S; ++t)
        offsets[size_t((c * s.R + r) * s.S + t)] =
            in_place
                ? c * s.x.channel_stride + int64_t(r) * s.W + t
                : ((int64_t(c) * phases_h + r % sh) * phases_w + t % sw) * plane_floats + int64_t(r / sh) * L + t / sw;

  const int64_t items = outer * runs;
  const int64_t work = items * run_positions * chunk_blocks * kKvWidth * taps;
#pragma omp parallel if (work >= (int64_t(1) << 20))
  {
    const int64_t team = omp_get_num_threads(), thread = omp_get_thread_num();
    float* wk = kv_weights_scratch(size_t(chunk_blocks * block_floats));  // (chunk k blocks, taps, kKvWidth)
    float* xb = in_place ? nullptr : direct_scratch(size_t(block_channels * phase_planes * plane_floats));  // planes
    int64_t* at = kv_offsets_scratch(size_t(run_positions));  // (positions): where each reads
    float* sums =
        kv_sums_scratch(size_t(chunk_blocks * run_positions * kKvWidth));  // (chunk k blocks, positions, kKvWidth)
    int64_t packed = -1;                                                   // the (group, chunk) in wk
    for (int64_t item = items * thread / team; item < items * (thread + 1) / team; ++item) {
      const int64_t run = item % runs, gk = item / runs / s.N;
      const int n = int(item / runs % s.N), g = int(gk / chunks), kb0 = int(gk % chunks) * chunk_blocks;
      const int kb1 = std::min(k_blocks, kb0 + chunk_blocks);
      if (gk != packed)
        for (int kb = kb0; kb < kb1; ++kb) kv_pack_weights(s, w, g, kb, turned, wk + (kb - kb0) * block_floats);
      packed = gk;
      const int64_t i_begin = run * run_positions, positions = std::min(run_positions, PQ - i_begin);
      const int p0 = int(i_begin / s.Q), rows_met = int((i_begin + positions - 1) / s.Q) + 1 - p0;
      // Where each position of the run reads its planes: (p - p0) * L + q, or in place p*sh*W + q*sw.
      for (int64_t i = 0; i < positions; ++i) {
        const int64_t p = (i_begin + i) / s.Q, q = (i_begin + i) % s.Q;
        at[i] = in_place ? p * sh * s.W + q * sw : (p - p0) * L + q;
      }
      for (int cb = 0; cb < c_blocks; ++cb) {
        const int c0 = cb * block_channels, cn = std::min(block_channels, Cg - c0);
        const float* x_block = in_place ? x + s.x.plane(n, g * Cg + c0) : xb;  // where the tiles read
        for (int c = 0; c < (in_place ? 0 : cn); ++c)
          for (int rp = 0; rp < phases_h; ++rp) {
            const float* x_c = x + s.x.plane(n, g * Cg + c0 + c);                         // (H, W)
            float* planes = xb + (int64_t(c) * phases_h + rp) * phases_w * plane_floats;  // (phases_w, rows + extra, L)
            build_column_phases(s, x_c, rp, p0, rows_met + extra_rows, L, plane_floats, phases_w, planes);
          }
        for (int kb = kb0; kb < kb1; ++kb) {
          const int kv = int(std::min<int64_t>(kKvVectors, ceil_div(Kg - int64_t(kb) * kKvWidth, kLanes)));
          const float* w_block = wk + (kb - kb0) * block_floats + int64_t(c0) * RS * kKvWidth;
          float* sums_kb = sums + (kb - kb0) * run_positions * kKvWidth;  // (positions, kKvWidth)
          const int tile_positions = kv_tile_positions(kv);
          for (int64_t i0 = 0; i0 < positions; i0 += tile_positions) {
            const int np = int(std::min<int64_t>(tile_positions, positions - i0));
            const float* x_at[kKvMostPositions];  // where each position reads: its planes' flat index, or in place
            for (int i = 0; i < np; ++i) x_at[i] = x_block + at[i0 + i];
            kKvTiles[size_t(kv - 1)][size_t(np - 1)](x_at, offsets.data(), cn * RS, w_block, sums_kb + i0 * kKvWidth,
                                                     cb == 0);
          }
        }
      }
      for (int kb = kb0; kb < kb1; ++kb) {  // the run's finished sums into y
        const int k0 = g * Kg + kb * kKvWidth, kn = std::min(kKvWidth, Kg - kb * kKvWidth);
        float* y_kb = y + s.y.plane(n, k0) + i_begin;  // the run in the k block's planes, channel_stride apart
        kv_write_run(sums + (kb - kb0) * run_positions * kKvWidth, positions, kn, y_kb, s.y.channel_stride,
                     b ? b + k0 : nullptr, accumulate, epilogue.relu);
      }
    }
  }
}

}  // namespace
}  // namespace cpu
}  // namespace kernels
