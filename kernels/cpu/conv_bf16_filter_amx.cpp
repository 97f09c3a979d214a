// The bfloat16 kernels' backward filter (kernels/cpu/conv_bf16.h: dW^T per tap = X shifted by the tap x dY^T over the
// positions), compiled with AMX and AVX512-BF16, on either engine: each block of 16 or 32 channels x 16 or 32 outputs
// is 1 to 4 accumulator tiles, or registers (12 channels x 32 outputs, or 16 x 16, at a time: each input pair
// broadcast against one or two vectors of 16 outputs' dy pairs).
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/cpu/conv_bf16.h"
#include "kernels/cpu/conv_bf16_amx_tiles.h"

namespace kernels {
namespace cpu {
namespace bf16 {

namespace {

// Images per work item of the backward filter: enough for about this many positions (each item's partial sums are
// stored and added at the end), but no fewer than kFilterItems items where the batch allows. The items' sums are
// added in item order, so the shape, not the thread count, fixes the summation order.
constexpr int64_t kFilterItemPositions = 8192;
constexpr int kFilterItems = 8;
// The backward filter sums the products of several images while its accumulators stay in the tiles, where an image
// has few positions: enough images for about this many positions, within this many bytes of packed input and dy
// (half of L2). Images of many positions take one at a time: a tile's load and store are then a small share, and a
// pass of several such images only spills the packed operands from L2 (conv2 of mapnet_bn_fine, 1,952 positions an
// image: 4.3 -> 5.7 ms a call with four).
constexpr int64_t kFilterPassPositions = 512;
constexpr int64_t kFilterPassBytes = int64_t(1) << 20;
// Where the whole batch's packed input and dy fit kFilterPackedBytes, the backward filter holds each block of
// accumulators over all images (backward_filter_accumulators_outer) when an item's sums (taps x C x K) would spill L2
// (over kFilterPartialBytes), or would take a good part of it (over kFilterSharedPartialBytes) while the operands one
// block of accumulators reads over the batch stay within kFilterUnitBytes. Measured, 2 threads: VGG-16 conv5_2 (9.4
// MB of sums an item) 43 -> 4.6 ms, AlexNet conv3 and conv4 1.7x quicker, mapnet_bn_fine conv6 (590 KB, 512 KB read
// per block) 3.4 -> 1.8 ms; GoogLeNet 3a's 3x3 (442 KB of sums, 880 KB read per block) 2.8 -> 4.3 ms, so it stays.
constexpr int64_t kFilterPackedBytes = int64_t(8) << 20;
constexpr int64_t kFilterPartialBytes = int64_t(1) << 20;
constexpr int64_t kFilterSharedPartialBytes = int64_t(256) << 10;
constexpr int64_t kFilterUnitBytes = int64_t(512) << 10;

// Backward filter: the block's input as plain rows, xa (phases, cblocks * 16 channels, input_lanes) bfloat16.
template <typename InputRow>
void pack_rows(const ConvShape& s, const Geometry& geo, int cblocks, int p0, InputRow x_row, uint16_t* xa) {
  const int channels = cblocks * kTileRows;
  for_each_plane_row(s, geo, p0, [&](int plane, int b, int64_t start, int64_t row_lanes, int h) {
    const PhaseColumns cols(s, geo, b);
    const int64_t first = std::min(cols.first, row_lanes), end = std::min(cols.end, row_lanes);
    for (int c = 0; c < channels; ++c) {
      uint16_t* row = xa + (int64_t(plane) * channels + c) * geo.input_lanes + start;  // (row_lanes)
      if (c >= geo.Cg || h < 0 || h >= s.H) {
        std::memset(row, 0, size_t(row_lanes) * 2);
        continue;
      }
      std::memset(row, 0, size_t(first) * 2);
      const float* values = x_row(c, h) + cols.w0;
      if (b == 0 && h + kPrefetchRows < s.H) prefetch_floats(x_row(c, h + kPrefetchRows), s.W);
      for (int64_t j = first; j < end; j += 16) {
        const int64_t count = std::min<int64_t>(16, end - j);
        const __m512 v = load_strided(values + (j - first) * s.stride_w, s.stride_w, count);
        _mm256_mask_storeu_epi16(row + j, first_lanes(count), (__m256i)_mm512_cvtneps_pbh(v));
      }
      std::memset(row + end, 0, size_t(row_lanes - end) * 2);
    }
  });
}

// Lanes per row of the backward filter's dyt: kblocks * 16, plus 16 where that is an even number of 64-byte lines, so
// that the 16 rows of a B tile fall into different sets of the L1 cache (VGG-16 conv5_2's 32 blocks, 2 KB a row, put
// them all into two).
int64_t dyt_pitch(int kblocks) {
  return int64_t(kblocks % 2 == 0 ? kblocks + 1 : kblocks) * kTileRows;
}

// Backward filter, per block: dyt (positions / 2, dyt_pitch(kblocks)) of 32-bit lanes, lane k of row j2 pairing dy at
// positions 2 j2 and 2 j2 + 1 (flat at pitch L: zero past Q and past the block's rows). dy_rows is scratch
// (16, positions) floats.
template <typename OutputRow>
void pack_position_pairs(const ConvShape& s, const Geometry& geo, int kblocks, int p0, int p1, OutputRow dy_row,
                         float* dy_rows, uint32_t* dyt) {
  const int64_t lanes = dyt_pitch(kblocks);
  for (int kb = 0; kb < kblocks; ++kb) {
    for (int i = 0; i < kTileRows; ++i) {
      const int k = kb * kTileRows + i;
      float* dst = dy_rows + int64_t(i) * geo.positions;  // (positions)
      if (k >= geo.Kg) {
        std::memset(dst, 0, size_t(geo.positions) * 4);
        continue;
      }
      for (int p = p0; p < p1; ++p) {
        float* row = dst + int64_t(p - p0) * geo.L;
        std::memcpy(row, dy_row(k, p), size_t(s.Q) * 4);
        std::memset(row + s.Q, 0, size_t(geo.L - s.Q) * 4);
      }
      const int64_t used = int64_t(p1 - p0) * geo.L;
      std::memset(dst + used, 0, size_t(geo.positions - used) * 4);
    }
    for (int64_t j = 0; j < geo.positions; j += 32) {
      __m512i r[16];
      for (int i = 0; i < kTileRows; ++i) {
        const float* src = dy_rows + int64_t(i) * geo.positions + j;
        r[i] = consecutive_pairs(_mm512_loadu_ps(src), _mm512_loadu_ps(src + 16));
      }
      transpose16(r);
      for (int i = 0; i < 16; ++i) _mm512_storeu_si512(dyt + (j / 2 + i) * lanes + kb * kTileRows, r[i]);
    }
  }
}

// Accumulates the products of `images` packed image blocks (xa and dyt advancing by xa_image and dyt_image per image)
// for one tap into tiles 0-3, the 2 x 2 (or smaller) block of accumulators at (cb, kb).
template <bool TwoC, bool TwoK>
void filter_products(const Geometry& geo, int kblocks, const uint16_t* xa, const uint32_t* dyt, int images,
                     int64_t xa_image, int64_t dyt_image, int64_t shift, int64_t computed, int cb, int kb) {
  const int64_t ldc = dyt_pitch(kblocks);  // 32-bit lanes per row of dyt
  const int64_t a_stride = geo.input_lanes * 2, b_stride = ldc * 4;
  for (int i = 0; i < images; ++i) {
    const uint16_t* a = xa + i * xa_image + int64_t(cb) * kTileRows * geo.input_lanes + shift;
    const uint32_t* b = dyt + i * dyt_image + kb * kTileRows;
    for (int64_t j = 0; j < computed; j += kTileDepth) {
      const uint32_t* bt = b + (j / 2) * ldc;
      _tile_loadd(4, a + j, a_stride);
      _tile_loadd(6, bt, b_stride);
      _tile_dpbf16ps(0, 4, 6);
      if (TwoK) {
        _tile_loadd(7, bt + kTileRows, b_stride);
        _tile_dpbf16ps(1, 4, 7);
      }
      if (TwoC) {
        _tile_loadd(5, a + kTileRows * geo.input_lanes + j, a_stride);
        _tile_dpbf16ps(2, 5, 6);
        if (TwoK) _tile_dpbf16ps(3, 5, 7);
      }
    }
  }
}

// The dot-product engine's accumulators for kChannels input channels from c0 (of the block at cb) x kVectors * 16
// outputs from kb, rows ldc floats apart at c: loaded (or zero), the products of `images` image blocks added, stored.
template <int kChannels, int kVectors>
void dot_filter_rows(const Geometry& geo, int kblocks, const uint16_t* xa, const uint32_t* dyt, int images,
                     int64_t xa_image, int64_t dyt_image, int64_t shift, int64_t computed, int cb, int c0, int kb,
                     float* c, int64_t ldc, bool from_zero) {
  const int64_t ldb = dyt_pitch(kblocks);  // 32-bit lanes per row of dyt
  __m512 acc[kChannels][kVectors];         // (kChannels, kVectors * 16 outputs)
  for (int m = 0; m < kChannels; ++m)
    for (int v = 0; v < kVectors; ++v)
      acc[m][v] = from_zero ? _mm512_setzero_ps() : _mm512_loadu_ps(c + (c0 + m) * ldc + 16 * v);
  for (int i = 0; i < images; ++i) {
    // kChannels rows of input (bfloat16, input_lanes apart) and the dy pairs of the outputs.
    const uint16_t* a = xa + i * xa_image + (int64_t(cb) * kTileRows + c0) * geo.input_lanes + shift;
    const uint32_t* b = dyt + i * dyt_image + kb * kTileRows;
    for (int64_t j = 0; j < computed; j += 2) {
      const uint32_t* row = b + (j / 2) * ldb;
      __m512bh dy[kVectors];
      for (int v = 0; v < kVectors; ++v) dy[v] = (__m512bh)_mm512_loadu_si512(row + 16 * v);
      for (int m = 0; m < kChannels; ++m) {
        const __m512bh x = (__m512bh)_mm512_broadcastd_epi32(_mm_loadu_si32(a + m * geo.input_lanes + j));
        for (int v = 0; v < kVectors; ++v) acc[m][v] = _mm512_dpbf16_ps(acc[m][v], x, dy[v]);
      }
    }
  }
  for (int m = 0; m < kChannels; ++m)
    for (int v = 0; v < kVectors; ++v) _mm512_storeu_ps(c + (c0 + m) * ldc + 16 * v, acc[m][v]);
}

// The dot-product engine's filter_step (from_zero false: c holds the sums so far) and filter_item_sums (from_zero
// true): the block of accumulators at (cb, kb) in registers, 12 channels x 32 outputs (24 registers) or 16 x 16 at a
// time, each channel's input pair broadcast against the outputs' dy pairs.
template <bool TwoC, bool TwoK>
void dot_filter_block(const Geometry& geo, int kblocks, const uint16_t* xa, const uint32_t* dyt, int images,
                      int64_t xa_image, int64_t dyt_image, int64_t shift, int64_t computed, int cb, int kb, float* c,
                      int64_t ldc, bool from_zero) {
  const int rows = (TwoC ? 2 : 1) * kTileRows;
  const auto run = [&](auto channels, auto vectors, int c0) {
    dot_filter_rows<decltype(channels)::value, decltype(vectors)::value>(
        geo, kblocks, xa, dyt, images, xa_image, dyt_image, shift, computed, cb, c0, kb, c, ldc, from_zero);
  };
  using One = std::integral_constant<int, 1>;
  using Two = std::integral_constant<int, 2>;
  if (!TwoK) {
    for (int c0 = 0; c0 < rows; c0 += kTileRows) run(std::integral_constant<int, 16>{}, One{}, c0);
    return;
  }
  int c0 = 0;
  for (; c0 + 12 <= rows; c0 += 12) run(std::integral_constant<int, 12>{}, Two{}, c0);
  if (rows - c0 == 8) run(std::integral_constant<int, 8>{}, Two{}, c0);  // 32 rows: 12 + 12 + 8
  if (rows - c0 == 4) run(std::integral_constant<int, 4>{}, Two{}, c0);  // 16 rows: 12 + 4
}

// Tiles 0-3 from or to c, rows ldc floats apart.
template <bool TwoC, bool TwoK>
void load_accumulators(const float* c, int64_t ldc) {
  _tile_loadd(0, c, ldc * 4);
  if (TwoK) _tile_loadd(1, c + kTileRows, ldc * 4);
  if (TwoC) _tile_loadd(2, c + kTileRows * ldc, ldc * 4);
  if (TwoC && TwoK) _tile_loadd(3, c + kTileRows * ldc + kTileRows, ldc * 4);
}
template <bool TwoC, bool TwoK>
void store_accumulators(float* c, int64_t ldc) {
  _tile_stored(0, c, ldc * 4);
  if (TwoK) _tile_stored(1, c + kTileRows, ldc * 4);
  if (TwoC) _tile_stored(2, c + kTileRows * ldc, ldc * 4);
  if (TwoC && TwoK) _tile_stored(3, c + kTileRows * ldc + kTileRows, ldc * 4);
}

// Adds the products of `images` packed image blocks for one tap into the partial tiles at partial (cblocks*16,
// kblocks*16) for the block of tiles at (cb, kb). The accumulators stay in the tile registers across the images: on
// small maps a load and a store of them per image cost more than the image's few products.
template <bool TwoC, bool TwoK>
void filter_step(Bf16Engine engine, const Geometry& geo, int kblocks, const uint16_t* xa, const uint32_t* dyt,
                 int images, int64_t xa_image, int64_t dyt_image, int64_t shift, int64_t computed, int cb, int kb,
                 float* partial) {
  const int64_t ldc = int64_t(kblocks) * kTileRows;  // floats per row of partial
  float* c = partial + int64_t(cb) * kTileRows * ldc + kb * kTileRows;
  if (engine == Bf16Engine::dot_products)
    return dot_filter_block<TwoC, TwoK>(geo, kblocks, xa, dyt, images, xa_image, dyt_image, shift, computed, cb, kb, c,
                                        ldc, false);
  load_accumulators<TwoC, TwoK>(c, ldc);
  filter_products<TwoC, TwoK>(geo, kblocks, xa, dyt, images, xa_image, dyt_image, shift, computed, cb, kb);
  store_accumulators<TwoC, TwoK>(c, ldc);
}

// One work item's sums for the block of tiles at (cb, kb) and one tap, from zero, stored to sums (32, 32).
template <bool TwoC, bool TwoK>
void filter_item_sums(Bf16Engine engine, const Geometry& geo, int kblocks, const uint16_t* xa, const uint32_t* dyt,
                      int images, int64_t xa_image, int64_t dyt_image, int64_t shift, int64_t computed, int cb, int kb,
                      float* sums) {
  if (engine == Bf16Engine::dot_products)
    return dot_filter_block<TwoC, TwoK>(geo, kblocks, xa, dyt, images, xa_image, dyt_image, shift, computed, cb, kb,
                                        sums, 2 * kTileRows, true);
  _tile_zero(0);
  if (TwoK) _tile_zero(1);
  if (TwoC) _tile_zero(2);
  if (TwoC && TwoK) _tile_zero(3);
  filter_products<TwoC, TwoK>(geo, kblocks, xa, dyt, images, xa_image, dyt_image, shift, computed, cb, kb);
  store_accumulators<TwoC, TwoK>(sums, 2 * kTileRows);
}

// Calls body(two_c, two_k) with std::true_type or std::false_type for each: a block of 2 x 2 tiles, or 2 x 1, 1 x 2
// or 1 x 1 at the edges.
template <typename Body>
void with_tile_block(bool two_c, bool two_k, Body body) {
  if (two_c && two_k)
    body(std::true_type{}, std::true_type{});
  else if (two_c)
    body(std::true_type{}, std::false_type{});
  else if (two_k)
    body(std::false_type{}, std::true_type{});
  else
    body(std::false_type{}, std::false_type{});
}

// The shape of the backward filter's work: items of images_per_item images (the last may have fewer) and row
// blocks, summed each from zero and then added in item order.
struct FilterWork {
  const Geometry* geo;
  int cblocks, kblocks, images_per_item, image_blocks;
  int64_t xa_block, dyt_block;  // packed input (bfloat16) and dy (32-bit pairs) per image and row block
  int64_t items_per_group() const { return int64_t(image_blocks) * geo->row_blocks; }
};

// Packs image n's input and dy of group g, output rows [p0, p1), into xa and dyt; dy_rows is scratch (16, positions).
void pack_image_block(const ConvShape& s, const FilterWork& w, int g, int n, int p0, int p1, const float* x,
                      const float* dy, float* dy_rows, uint16_t* xa, uint32_t* dyt) {
  const Geometry& geo = *w.geo;
  pack_rows(
      s, geo, w.cblocks, p0, [&](int c, int h) { return x + s.x.plane(n, int64_t(g) * geo.Cg + c) + int64_t(h) * s.W; },
      xa);
  pack_position_pairs(
      s, geo, w.kblocks, p0, p1,
      [&](int k, int p) { return dy + s.y.plane(n, int64_t(g) * geo.Kg + k) + int64_t(p) * s.Q; }, dy_rows, dyt);
}

// The backward filter for layers whose sums (taps x C x K per item) do not stay in L2 (VGG-16 conv5_2: 9.4 MB): the
// whole batch is packed first, then each block of accumulators stays in the tiles over all of an item's images and is
// added to its running sum over the items, instead of every image's products loading and storing every partial sum.
// The same products are added in the same order as conv_backward_filter's other path: the same bits.
void backward_filter_accumulators_outer(Bf16Engine engine, const ConvShape& s, const FilterWork& w, const float* x,
                                        const float* dy, float* dw, bool accumulate) {
  const Geometry& geo = *w.geo;
  const int64_t xa_block = w.xa_block, dyt_block = w.dyt_block;
  const int64_t xa_image = geo.row_blocks * xa_block, dyt_image = geo.row_blocks * dyt_block;  // image to image
  const int64_t blocks = int64_t(s.N) * geo.row_blocks;
  thread_local std::vector<uint16_t> xa_buffer;
  thread_local std::vector<uint32_t> dyt_buffer;
  uint16_t* xa = thread_buffer(xa_buffer, size_t(blocks * xa_block));     // (N, row_blocks, phases, C16, lanes)
  uint32_t* dyt = thread_buffer(dyt_buffer, size_t(blocks * dyt_block));  // (N, row_blocks, positions / 2, dyt_pitch)
  const int cpairs = int(ceil_div(w.cblocks, 2)), kpairs = int(ceil_div(w.kblocks, 2));
  const int64_t units = int64_t(cpairs) * kpairs;  // blocks of 2 x 2 tiles, each with all its taps
  for (int g = 0; g < s.groups; ++g) {
#pragma omp parallel
    {
      thread_local std::vector<float> rows_buffer;
      float* dy_rows = thread_buffer(rows_buffer, size_t(kTileRows) * geo.positions);  // (16, positions)
#pragma omp for schedule(static)
      for (int64_t at = 0; at < blocks; ++at) {
        const int n = int(at / geo.row_blocks), rb = int(at % geo.row_blocks);
        const int p0 = geo.first_row(rb), p1 = std::min(s.P, p0 + geo.block_rows);
        pack_image_block(s, w, g, n, p0, p1, x, dy, dy_rows, xa + at * xa_block, dyt + at * dyt_block);
      }
      const TileScope tiles(engine == Bf16Engine::tiles);
      constexpr int kBlock = 2 * kTileRows;     // rows and columns of a unit's block of tiles
      alignas(64) float item[kBlock * kBlock];  // (32, 32): one item's sums for one tap
      thread_local std::vector<float> sums_buffer;
      float* sums = thread_buffer(sums_buffer, size_t(geo.RS) * kBlock * kBlock);  // (RS, 32, 32): the items' so far
#pragma omp for schedule(static)
      for (int64_t unit = 0; unit < units; ++unit) {
        const int kb = int(unit % kpairs) * 2, cb = int(unit / kpairs) * 2;
        const bool two_c = cb + 1 < w.cblocks, two_k = kb + 1 < w.kblocks;
        const int rows = two_c ? kBlock : kTileRows, cols = two_k ? kBlock : kTileRows;
        for (int tap = 0; tap < geo.RS; ++tap) {
          const int r = tap / s.S, t = tap % s.S;
          const int64_t shift =
              geo.tap_plane(s, r, t) * int64_t(w.cblocks) * kTileRows * geo.input_lanes + geo.tap_offset(s, r, t);
          float* sum = sums + int64_t(tap) * kBlock * kBlock;  // (32, 32)
          for (int64_t i = 0; i < w.items_per_group(); ++i) {
            const int rb = int(i % geo.row_blocks), nb = int(i / geo.row_blocks);
            const int p0 = geo.first_row(rb), p1 = std::min(s.P, p0 + geo.block_rows);
            const int64_t computed = round_up(int64_t(p1 - p0) * geo.L, kTileDepth);
            const int n0 = nb * w.images_per_item, images = std::min(s.N, n0 + w.images_per_item) - n0;
            const int64_t first = int64_t(n0) * geo.row_blocks + rb;  // the item's first image block
            float* out = i == 0 ? sum : item;
            with_tile_block(two_c, two_k, [&](auto c, auto k) {
              filter_item_sums<decltype(c)::value, decltype(k)::value>(engine, geo, w.kblocks, xa + first * xa_block,
                                                                       dyt + first * dyt_block, images, xa_image,
                                                                       dyt_image, shift, computed, cb, kb, out);
            });
            if (i > 0)
              for (int row = 0; row < rows; ++row)
                for (int col = 0; col < cols; ++col) sum[row * kBlock + col] += item[row * kBlock + col];
          }
        }
        // dW[g*Kg + k][c][tap] (+)= the sums: every tap of the block's weights written together, in runs along c
        // and tap (by tap first, each store a line of its own: dW is 9.4 MB for VGG-16 conv5_2).
        for (int col = 0; col < cols && kb * kTileRows + col < geo.Kg; ++col) {
          const int k = kb * kTileRows + col;
          for (int row = 0; row < rows && cb * kTileRows + row < geo.Cg; ++row) {
            const int c = cb * kTileRows + row;
            float* out = dw + ((int64_t(g) * geo.Kg + k) * geo.Cg + c) * geo.RS;  // (RS)
            for (int tap = 0; tap < geo.RS; ++tap) {
              const float value = sums[(int64_t(tap) * kBlock + row) * kBlock + col];
              out[tap] = accumulate ? out[tap] + value : value;
            }
          }
        }
      }
    }
  }
}

}  // namespace

void conv_backward_filter(Bf16Engine engine, const ConvShape& s, const float* x, const float* dy, float* dw,
                          bool accumulate, FilterOrder order) {
  const int cblocks = int(ceil_div(s.C / s.groups, kTileRows));
  const int kblocks = int(ceil_div(s.K / s.groups, kTileRows));
  // Per position of a block row: the input's bfloat16, dy's pairs and dy's float rows.
  const Geometry geo(s, int64_t(cblocks) * kTileRows * 2, int64_t(kblocks) * kTileRows * 2 + kTileRows * 4, 2);
  const int images_per_item = int(std::clamp<int64_t>(ceil_div(kFilterItemPositions, int64_t(geo.block_rows) * geo.L),
                                                      1, std::max<int64_t>(1, s.N / kFilterItems)));
  const int image_blocks = int(ceil_div(s.N, images_per_item));
  const int64_t items = int64_t(s.groups) * image_blocks * geo.row_blocks;
  const int64_t partial_bytes = int64_t(geo.RS) * cblocks * kTileRows * kblocks * kTileRows * 4;  // per item
  const FilterWork work{&geo,
                        cblocks,
                        kblocks,
                        images_per_item,
                        image_blocks,
                        int64_t(geo.phases) * cblocks * kTileRows * geo.input_lanes,
                        geo.positions / 2 * dyt_pitch(kblocks)};
  const int64_t xa_image = work.xa_block, dyt_image = work.dyt_block;  // one image's row block, as the path below packs
  const int64_t packed_bytes = int64_t(s.N) * geo.row_blocks * (xa_image * 2 + dyt_image * 4);
  // What one block of 2 x 2 accumulator tiles reads over the batch: 32 channels of input, 32 of dy.
  const int64_t unit_bytes =
      int64_t(s.N) * geo.row_blocks *
      (int64_t(geo.phases) * 2 * kTileRows * geo.input_lanes * 2 + geo.positions / 2 * 2 * kTileRows * 4);
  const bool accumulators_outer =
      order == FilterOrder::by_shape
          ? packed_bytes <= kFilterPackedBytes &&
                (partial_bytes > kFilterPartialBytes ||
                 (partial_bytes > kFilterSharedPartialBytes && unit_bytes <= kFilterUnitBytes))
          : order == FilterOrder::accumulators_outer;
  if (accumulators_outer) return backward_filter_accumulators_outer(engine, s, work, x, dy, dw, accumulate);
  // Images packed side by side and summed with the accumulators held in the tiles (filter_step): as many as fit
  // kFilterPassBytes. Each tile still adds the images in order, so how many go in a pass does not change the bits.
  const int64_t computed_per_image = round_up(int64_t(geo.block_rows) * geo.L, kTileDepth);
  const int per_pass = int(std::clamp<int64_t>(
      std::min(ceil_div(kFilterPassPositions, computed_per_image), kFilterPassBytes / (xa_image * 2 + dyt_image * 4)),
      1, images_per_item));
  // Each item's sums: (RS, cblocks * 16, kblocks * 16), dW^T per tap.
  const int64_t partial_floats = int64_t(geo.RS) * cblocks * kTileRows * kblocks * kTileRows;
  std::vector<float> partials(size_t(items * partial_floats), 0.f);
#pragma omp parallel if (items > 1)
  {
    const TileScope tiles(engine == Bf16Engine::tiles);
    thread_local std::vector<uint16_t> xa_buffer;
    thread_local std::vector<uint32_t> dyt_buffer;
    thread_local std::vector<float> rows_buffer;
    uint16_t* xa = thread_buffer(xa_buffer, size_t(per_pass * xa_image));     // (per_pass, phases, C16, input_lanes)
    uint32_t* dyt = thread_buffer(dyt_buffer, size_t(per_pass * dyt_image));  // (per_pass, positions / 2, dyt_pitch)
    float* dy_rows = thread_buffer(rows_buffer, size_t(kTileRows) * geo.positions);  // (16, positions)
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int rb = int(item % geo.row_blocks), nb = int(item / geo.row_blocks % image_blocks),
                g = int(item / geo.row_blocks / image_blocks);
      const int p0 = geo.first_row(rb), p1 = std::min(s.P, p0 + geo.block_rows);
      const int64_t computed = round_up(int64_t(p1 - p0) * geo.L, kTileDepth);
      float* partial = partials.data() + item * partial_floats;
      const int last = std::min(s.N, (nb + 1) * images_per_item);
      for (int n0 = nb * images_per_item; n0 < last; n0 += per_pass) {
        const int images = std::min(per_pass, last - n0);
        for (int i = 0; i < images; ++i)
          pack_image_block(s, work, g, n0 + i, p0, p1, x, dy, dy_rows, xa + i * xa_image, dyt + i * dyt_image);
        for (int r = 0; r < s.R; ++r)
          for (int t = 0; t < s.S; ++t) {
            float* tap_sums = partial + int64_t(r * s.S + t) * cblocks * kTileRows * kblocks * kTileRows;
            // The tap's plane and lanes, as an offset from plane 0.
            const int64_t shift =
                geo.tap_plane(s, r, t) * int64_t(cblocks) * kTileRows * geo.input_lanes + geo.tap_offset(s, r, t);
            for (int cb = 0; cb < cblocks; cb += 2)
              for (int kb = 0; kb < kblocks; kb += 2) {
                with_tile_block(cb + 1 < cblocks, kb + 1 < kblocks, [&](auto c, auto k) {
                  filter_step<decltype(c)::value, decltype(k)::value>(engine, geo, kblocks, xa, dyt, images, xa_image,
                                                                      dyt_image, shift, computed, cb, kb, tap_sums);
                });
              }
          }
      }
    }
  }
  // Each group's items' sums added in item order into its first item's, a range of floats per thread; then
  // dW[g*Kg + k][c][tap] (+)= that sum.
  const int64_t ldc = int64_t(kblocks) * kTileRows, tap_floats = int64_t(cblocks) * kTileRows * ldc;
  const int64_t items_per_group = int64_t(image_blocks) * geo.row_blocks;
  constexpr int64_t kRange = 4096;
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (int64_t at = 0; at < s.groups * ceil_div(partial_floats, kRange); ++at) {
      const int64_t g = at / ceil_div(partial_floats, kRange), begin = at % ceil_div(partial_floats, kRange) * kRange;
      const int64_t end = std::min(partial_floats, begin + kRange);
      float* sum = partials.data() + g * items_per_group * partial_floats;  // the group's first item
      for (int64_t i = 1; i < items_per_group; ++i) {
        const float* add = sum + i * partial_floats;
        for (int64_t e = begin; e < end; ++e) sum[e] += add[e];
      }
    }
#pragma omp for schedule(static)
    for (int64_t gk = 0; gk < int64_t(s.groups) * geo.Kg; ++gk) {
      const int64_t g = gk / geo.Kg, k = gk % geo.Kg;
      const float* sum = partials.data() + g * items_per_group * partial_floats;
      for (int c = 0; c < geo.Cg; ++c)
        for (int tap = 0; tap < geo.RS; ++tap) {
          float& out = dw[(gk * geo.Cg + c) * geo.RS + tap];
          const float value = sum[tap * tap_floats + c * ldc + k];
          out = accumulate ? out + value : value;
        }
    }
  }
}

}  // namespace bf16
}  // namespace cpu
}  // namespace kernels
