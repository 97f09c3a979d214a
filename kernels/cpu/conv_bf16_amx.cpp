// The bfloat16 tile kernels of kernels/cpu/conv_bf16.h (layouts there), compiled with AMX and AVX512-BF16.
//
// Tiles: every tile is 16 rows of 64 bytes. Accumulators 0-3 (16 x 16 floats) form a 2 x 2 block of outputs; 4-5 hold
// the A operands (16 rows x 32 bfloat16) of its two rows of blocks and 6-7 the B operands (16 pairs x 16 columns x 2
// bfloat16) of its two columns, so each tap costs four loads for four multiply-adds of 16 x 16 x 32.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/conv_bf16.h"

// GCC 12's AVX-512 headers build masked and shuffled vectors from deliberately undefined ones and then warn about
// them once inlined here (a false positive of -Wmaybe-uninitialized inside the intrinsics).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace kernels {
namespace cpu {
namespace amx {

namespace {

constexpr int kTileRows = 16;      // rows of every tile; also the floats of an accumulator row
constexpr int kTileDepth = 32;     // bfloat16 per A row: the channels (forward) or positions (filter) of one step
constexpr int kPositionStep = 32;  // positions per step of the forward loop: two B tiles
// Scratch per work item (packed input and the item's outputs) is kept under this, in L2, by cutting an image into
// blocks of output rows.
constexpr int64_t kItemBytes = int64_t(768) << 10;
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
constexpr int64_t kFilterPassBytes = int64_t(1) << 20;

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}
int64_t round_up(int64_t a, int64_t b) {
  return ceil_div(a, b) * b;
}

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

// Configures the 8 tiles on this thread for the scope and releases the tile state after.
struct TileScope {
  TileScope() {
    TileConfig config;
    for (int i = 0; i < 8; ++i) {
      config.bytes_per_row[i] = 64;
      config.rows[i] = kTileRows;
    }
    _tile_loadconfig(&config);
  }
  ~TileScope() { _tile_release(); }
  TileScope(const TileScope&) = delete;
  TileScope& operator=(const TileScope&) = delete;
};

template <typename T>
T* thread_buffer(std::vector<T>& buffer, size_t size) {
  if (buffer.size() < size) buffer.resize(size);
  return buffer.data();
}

__mmask16 first_lanes(int64_t count) {
  return count >= 16 ? __mmask16(0xffff) : __mmask16((1u << count) - 1);
}

// 16 lanes of pairs: lane i = bf16(odd[i]) << 16 | bf16(even[i]).
__m512i interleave_pairs(__m512 even, __m512 odd) {
  const __m512i words = (__m512i)_mm512_cvtne2ps_pbh(odd, even);  // even's 16 words, then odd's
  const __m512i order = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21,
                                         5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(order, words);
}

// 16 consecutive floats as 8 lanes of pairs in order (lane i = positions 2i, 2i+1), from two vectors of 16: 16 lanes.
__m512i consecutive_pairs(__m512 low, __m512 high) {
  return (__m512i)_mm512_cvtne2ps_pbh(high, low);
}

// Transposes a 16 x 16 block of 32-bit lanes in registers (inlined: out of line, GCC 12 takes the unpack intrinsics'
// undefined pass-through operand for an uninitialised variable and warns).
[[gnu::always_inline]] inline void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // Now quarter l of r[4b + c] holds column 4l + c of rows 4b .. 4b+3; gather each column's four quarters.
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd);
    r[i + 4] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0x88);
    r[i + 12] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0xdd);
  }
}

// The geometry shared by both kernels. An image is cut into blocks of output rows; for each block the padded input is
// laid out as stride_h x stride_w phase planes at pitch L = ceil((W + 2 pad_w) / stride_w): plane (a, b) holds padded
// row i * stride_h + a, column j * stride_w + b at lane i' L + j (i' counted from the block's first output row), so
// output (p, q) is lane p' L + q and tap (r, t) reads plane (r % stride_h, t % stride_w) at that lane plus
// (r / stride_h) L + t / stride_w: every tap reads one contiguous run of lanes for all the block's outputs.
struct Geometry {
  int Cg, Kg, RS;
  int phases;      // stride_h * stride_w
  int64_t L;       // lanes per row of a phase plane
  int block_rows;  // output rows per block (the last may have fewer)
  int row_blocks;
  int64_t positions;  // lanes computed per block: block_rows * L, rounded up to kPositionStep
  // Lanes per plane and channel (or pair): positions + the furthest tap, rounded up to an odd number of 64-byte lines
  // of element_bytes each, so that a tile's 16 rows fall into 16 different sets of the L1 cache (at a multiple of 4 KB
  // they would all fall into one, whose 12 ways cannot hold them).
  int64_t input_lanes;

  // input_bytes: per lane of one phase plane, all channels; output_bytes: per lane of the block's outputs.
  Geometry(const ConvShape& s, int64_t input_bytes, int64_t output_bytes, int64_t element_bytes) {
    Cg = s.C / s.groups;
    Kg = s.K / s.groups;
    RS = s.R * s.S;
    phases = s.stride_h * s.stride_w;
    L = ceil_div(int64_t(s.W) + 2 * s.pad_w, s.stride_w);
    const int64_t row_bytes = std::max<int64_t>(1, (input_bytes * phases + output_bytes) * L);
    block_rows = int(std::clamp<int64_t>(kItemBytes / row_bytes - (s.R - 1) / s.stride_h, 1, s.P));
    row_blocks = int(ceil_div(s.P, block_rows));
    block_rows = int(ceil_div(s.P, row_blocks));  // even blocks
    positions = round_up(int64_t(block_rows) * L, kPositionStep);
    int64_t lines =
        ceil_div((positions + int64_t((s.R - 1) / s.stride_h) * L + (s.S - 1) / s.stride_w) * element_bytes, 64);
    if (lines % 2 == 0) ++lines;
    input_lanes = lines * 64 / element_bytes;
  }
  // Output rows [p0, p1) of block rb.
  int first_row(int rb) const { return rb * block_rows; }
  // The plane and the lane offset tap (r, t) reads.
  int tap_plane(const ConvShape& s, int r, int t) const { return r % s.stride_h * s.stride_w + t % s.stride_w; }
  int64_t tap_offset(const ConvShape& s, int r, int t) const { return r / s.stride_h * L + t / s.stride_w; }
};

// The lanes of a row of phase plane column b that lie inside the image: [first, end), lane first at image column w0.
struct PhaseColumns {
  int64_t first, end, w0;
  PhaseColumns(const ConvShape& s, const Geometry& geo, int b) {
    const int64_t sw = s.stride_w, before = int64_t(s.pad_w) - b;  // lane j is image column j*sw - before
    first = before > 0 ? ceil_div(before, sw) : 0;
    end = s.W - 1 + before >= 0 ? std::min(geo.L, (s.W - 1 + before) / sw + 1) : first;
    end = std::max(end, first);
    w0 = first * sw - before;
  }
};

// values[i * stride] for i < count (at most 16), zeros past count.
__m512 load_strided(const float* values, int stride, int64_t count) {
  if (stride == 1) return _mm512_maskz_loadu_ps(first_lanes(count), values);
  if (stride == 2) {  // two loads and one permutation instead of a gather
    const int64_t span = 2 * count - 1;
    const __m512 low = _mm512_maskz_loadu_ps(first_lanes(span), values);
    const __m512 high = _mm512_maskz_loadu_ps(first_lanes(std::max<int64_t>(span - 16, 0)), values + 16);
    const __m512i evens = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    return _mm512_permutex2var_ps(low, evens, high);
  }
  const __m512i index = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                           _mm512_set1_epi32(stride));
  return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), first_lanes(count), index, values, 4);
}

// Calls fill(plane, phase_b, start, row_lanes, h) for every row of every phase plane of the block starting at output
// row p0: lanes [start, start + row_lanes) of the plane hold input row h (h outside [0, H): zeros).
// The input rows come in order, each channel's plane read front to back (rows by phase, every second row at stride
// 2, left the prefetchers gaps to skip: conv1's packing was bound by those reads), and the column phases of one row
// follow each other, so that the row is read from memory once and from L1 after.
template <typename Fill>
void for_each_plane_row(const ConvShape& s, const Geometry& geo, int p0, Fill fill) {
  for (int64_t start = 0; start < geo.input_lanes; start += geo.L)
    for (int a = 0; a < s.stride_h; ++a) {
      const int h = (p0 + int(start / geo.L)) * s.stride_h + a - s.pad_h;
      for (int b = 0; b < s.stride_w; ++b)
        fill(a * s.stride_w + b, b, start, std::min(geo.L, geo.input_lanes - start), h);
    }
}

// Forward: the block's input as channel pairs (VNNI for B): xb (phases, chunks * 16 pairs, input_lanes) of 32-bit
// lanes. x_row(c, h) gives the W floats of input row h of channel c (of this image and group).
template <typename InputRow>
void pack_pairs(const ConvShape& s, const Geometry& geo, int chunks, int p0, InputRow x_row, uint32_t* xb) {
  const int pairs = chunks * kTileDepth / 2;
  for_each_plane_row(s, geo, p0, [&](int plane, int b, int64_t start, int64_t row_lanes, int h) {
    const PhaseColumns cols(s, geo, b);
    const int64_t first = std::min(cols.first, row_lanes), end = std::min(cols.end, row_lanes);
    for (int pr = 0; pr < pairs; ++pr) {
      const int c0 = 2 * pr, c1 = 2 * pr + 1;
      uint32_t* row = xb + (int64_t(plane) * pairs + pr) * geo.input_lanes + start;  // (row_lanes)
      if (c0 >= geo.Cg || h < 0 || h >= s.H) {
        std::memset(row, 0, size_t(row_lanes) * 4);
        continue;
      }
      std::memset(row, 0, size_t(first) * 4);
      const float* even = x_row(c0, h) + cols.w0;
      const float* odd = c1 < geo.Cg ? x_row(c1, h) + cols.w0 : nullptr;
      for (int64_t j = first; j < end; j += 16) {
        const int64_t count = std::min<int64_t>(16, end - j), at = (j - first) * s.stride_w;
        const __m512 e = load_strided(even + at, s.stride_w, count);
        const __m512 o = odd ? load_strided(odd + at, s.stride_w, count) : _mm512_setzero_ps();
        _mm512_mask_storeu_epi32(row + j, first_lanes(count), interleave_pairs(e, o));
      }
      std::memset(row + end, 0, size_t(row_lanes - end) * 4);
    }
  });
}

// Rounds n floats to bfloat16 bits.
void to_bf16_bits(const float* values, int64_t n, uint16_t* bits) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = first_lanes(n - i);
    _mm256_mask_storeu_epi16(bits + i, m, (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, values + i)));
  }
}

// One (chunk, tap) slice of the weights as A tiles: (kblocks, 16 outputs, 32 inputs) bfloat16 at wa, from w's bits
// (index(k, c) gives output k's weight for input c at this tap).
template <typename Index>
void pack_weight_slice(const Geometry& geo, int kc, int kblocks, const uint16_t* w_bits, Index index, uint16_t* wa) {
  for (int kb = 0; kb < kblocks; ++kb) {
    uint16_t* tile = wa + int64_t(kb) * kTileRows * kTileDepth;  // (16, 32)
    for (int row = 0; row < kTileRows; ++row)
      for (int col = 0; col < kTileDepth; ++col) {
        const int k = kb * kTileRows + row, c = kc * kTileDepth + col;
        tile[row * kTileDepth + col] = k < geo.Kg && c < geo.Cg ? w_bits[index(k, c)] : 0;
      }
  }
}

// y (Q) = epilogue(sum + bias (+ y)) for one output row.
template <bool Accumulate, bool Relu>
void finish_row(const float* sum, float bias, int Q, float* y) {
  const __m512 b = _mm512_set1_ps(bias);
  for (int q = 0; q < Q; q += 16) {
    const __mmask16 m = first_lanes(Q - q);
    __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, sum + q), b);
    if (Accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, y + q));
    if (Relu) v = _mm512_max_ps(v, _mm512_setzero_ps());
    _mm512_mask_storeu_ps(y + q, m, v);
  }
}

using FinishRow = void (*)(const float*, float, int, float*);
FinishRow finish_row_for(bool accumulate, bool relu) {
  if (accumulate) return relu ? finish_row<true, true> : finish_row<true, false>;
  return relu ? finish_row<false, true> : finish_row<false, false>;
}

// Accumulates one block of 32 positions x 16 (or 32 with Two) outputs over every chunk and tap into tiles 0-3, then
// stores it to y_block (kblocks * 16, positions) at (kb * 16, j0).
template <bool Two>
void forward_step(const ConvShape& s, const Geometry& geo, int chunks, int kblocks, const uint16_t* wa,
                  const uint32_t* xb, int kb, int64_t j0, float* y_block) {
  _tile_zero(0);
  _tile_zero(1);
  if (Two) {
    _tile_zero(2);
    _tile_zero(3);
  }
  const int64_t b_stride = geo.input_lanes * 4, plane_lanes = int64_t(chunks) * kTileRows * geo.input_lanes;
  for (int kc = 0; kc < chunks; ++kc)
    for (int r = 0; r < s.R; ++r)
      for (int t = 0; t < s.S; ++t) {
        const int tap = r * s.S + t;
        const uint16_t* a = wa + ((int64_t(kc) * geo.RS + tap) * kblocks + kb) * kTileRows * kTileDepth;
        const uint32_t* b = xb + geo.tap_plane(s, r, t) * plane_lanes + int64_t(kc) * kTileRows * geo.input_lanes + j0 +
                            geo.tap_offset(s, r, t);
        _tile_loadd(4, a, 64);
        _tile_loadd(6, b, b_stride);
        _tile_loadd(7, b + 16, b_stride);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        if (Two) {
          _tile_loadd(5, a + kTileRows * kTileDepth, 64);
          _tile_dpbf16ps(2, 5, 6);
          _tile_dpbf16ps(3, 5, 7);
        }
      }
  const int64_t c_stride = geo.positions * 4;
  float* out = y_block + int64_t(kb) * kTileRows * geo.positions + j0;
  _tile_stored(0, out, c_stride);
  _tile_stored(1, out + 16, c_stride);
  if (Two) {
    _tile_stored(2, out + kTileRows * geo.positions, c_stride);
    _tile_stored(3, out + kTileRows * geo.positions + 16, c_stride);
  }
}

}  // namespace

void conv_forward(const ConvShape& s, const float* x, const float* w, const float* b, float* y, ConvEpilogue epilogue,
                  bool accumulate, bool turned) {
  const int chunks_in = int(ceil_div(s.C / s.groups, kTileDepth));
  const int kblocks = int(ceil_div(s.K / s.groups, kTileRows));
  // Per position of a block row: the packed input's lanes and the outputs' floats.
  const Geometry geo(s, int64_t(chunks_in) * kTileDepth / 2 * 4, int64_t(kblocks) * kTileRows * 4, 4);
  const int64_t slice = int64_t(kblocks) * kTileRows * kTileDepth;  // one (chunk, tap) of a group's A tiles
  const int64_t group_weights = int64_t(chunks_in) * geo.RS * slice;
  std::vector<uint16_t> w_bits(size_t(s.K) * geo.Cg * geo.RS);  // w's layout, rounded
  std::vector<uint16_t> wa(size_t(group_weights) * s.groups);   // (groups, chunks, RS, kblocks, 16, 32)
  const int64_t items = int64_t(s.N) * s.groups * geo.row_blocks;
  const FinishRow finish = finish_row_for(accumulate, epilogue.relu);
#pragma omp parallel if (items > 1)
  {
#pragma omp single
    to_bf16_bits(w, int64_t(w_bits.size()), w_bits.data());
#pragma omp for schedule(static)
    for (int64_t at = 0; at < int64_t(s.groups) * chunks_in * geo.RS; ++at) {
      const int tap = int(at % geo.RS), kc = int(at / geo.RS % chunks_in), g = int(at / geo.RS / chunks_in);
      uint16_t* out = wa.data() + g * group_weights + (int64_t(kc) * geo.RS + tap) * slice;
      if (turned) {
        // w is (C, Kg, R, S) of the convolution whose backward data this is: its output channel g*Kg + c (our
        // input channel c), input channel k (our output k), turned 180 degrees.
        pack_weight_slice(
            geo, kc, kblocks, w_bits.data(),
            [&](int k, int c) { return ((int64_t(g) * geo.Cg + c) * geo.Kg + k) * geo.RS + (geo.RS - 1 - tap); }, out);
      } else {
        pack_weight_slice(
            geo, kc, kblocks, w_bits.data(),
            [&](int k, int c) { return ((int64_t(g) * geo.Kg + k) * geo.Cg + c) * geo.RS + tap; }, out);
      }
    }
    const TileScope tiles;
    thread_local std::vector<uint32_t> xb_buffer;
    thread_local std::vector<float> y_buffer;
    // (phases, chunks * 16 pairs, input_lanes)
    uint32_t* xb = thread_buffer(xb_buffer, size_t(geo.phases) * chunks_in * kTileRows * geo.input_lanes);
    float* y_block = thread_buffer(y_buffer, size_t(kblocks) * kTileRows * geo.positions);  // (kblocks*16, pos)
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int rb = int(item % geo.row_blocks), g = int(item / geo.row_blocks % s.groups),
                n = int(item / geo.row_blocks / s.groups);
      const int p0 = geo.first_row(rb), p1 = std::min(s.P, p0 + geo.block_rows);
      pack_pairs(
          s, geo, chunks_in, p0,
          [&](int c, int h) { return x + s.x.plane(n, int64_t(g) * geo.Cg + c) + int64_t(h) * s.W; }, xb);
      const uint16_t* wa_g = wa.data() + g * group_weights;
      const int64_t computed = int64_t(p1 - p0) * geo.L;
      for (int64_t j0 = 0; j0 < computed; j0 += kPositionStep)
        for (int kb = 0; kb < kblocks; kb += 2) {
          if (kb + 1 < kblocks)
            forward_step<true>(s, geo, chunks_in, kblocks, wa_g, xb, kb, j0, y_block);
          else
            forward_step<false>(s, geo, chunks_in, kblocks, wa_g, xb, kb, j0, y_block);
        }
      // y = epilogue(sum + b (+ y)), the columns past Q dropped.
      for (int k = 0; k < geo.Kg; ++k) {
        const float bias = b ? b[int64_t(g) * geo.Kg + k] : 0.f;
        for (int p = p0; p < p1; ++p)
          finish(y_block + int64_t(k) * geo.positions + int64_t(p - p0) * geo.L, bias, s.Q,
                 y + s.y.plane(n, int64_t(g) * geo.Kg + k) + int64_t(p) * s.Q);
      }
    }
  }
}

namespace {

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
void filter_step(const Geometry& geo, int kblocks, const uint16_t* xa, const uint32_t* dyt, int images,
                 int64_t xa_image, int64_t dyt_image, int64_t shift, int64_t computed, int cb, int kb, float* partial) {
  const int64_t ldc = int64_t(kblocks) * kTileRows;  // floats per row of partial
  float* c = partial + int64_t(cb) * kTileRows * ldc + kb * kTileRows;
  load_accumulators<TwoC, TwoK>(c, ldc);
  filter_products<TwoC, TwoK>(geo, kblocks, xa, dyt, images, xa_image, dyt_image, shift, computed, cb, kb);
  store_accumulators<TwoC, TwoK>(c, ldc);
}

// One work item's sums for the block of tiles at (cb, kb) and one tap, from zero, stored to sums (32, 32).
template <bool TwoC, bool TwoK>
void filter_item_sums(const Geometry& geo, int kblocks, const uint16_t* xa, const uint32_t* dyt, int images,
                      int64_t xa_image, int64_t dyt_image, int64_t shift, int64_t computed, int cb, int kb,
                      float* sums) {
  _tile_zero(0);
  if (TwoK) _tile_zero(1);
  if (TwoC) _tile_zero(2);
  if (TwoC && TwoK) _tile_zero(3);
  filter_products<TwoC, TwoK>(geo, kblocks, xa, dyt, images, xa_image, dyt_image, shift, computed, cb, kb);
  store_accumulators<TwoC, TwoK>(sums, 2 * kTileRows);
}

// The shape of the backward filter's work: items of images_per_item images (the last may have fewer) and row
// blocks, summed each from zero and then added in item order.
struct FilterWork {
  int cblocks, kblocks, images_per_item, image_blocks;
  int64_t items_per_group() const { return int64_t(image_blocks) * geo->row_blocks; }
  const Geometry* geo;
};

// The backward filter for layers whose sums (taps x C x K per item) do not stay in L2 (VGG-16 conv5_2: 9.4 MB): the
// whole batch is packed first, then each block of accumulators stays in the tiles over all of an item's images and is
// added to its running sum over the items, instead of every image's products loading and storing every partial sum.
// The same products are added in the same order as conv_backward_filter's other path: the same bits.
void backward_filter_accumulators_outer(const ConvShape& s, const FilterWork& w, const float* x, const float* dy,
                                        float* dw, bool accumulate) {
  const Geometry& geo = *w.geo;
  const int64_t xa_block = int64_t(geo.phases) * w.cblocks * kTileRows * geo.input_lanes;  // bf16 per image block
  const int64_t dyt_block = geo.positions / 2 * dyt_pitch(w.kblocks);                      // pairs per image block
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
        pack_rows(
            s, geo, w.cblocks, p0,
            [&](int c, int h) { return x + s.x.plane(n, int64_t(g) * geo.Cg + c) + int64_t(h) * s.W; },
            xa + at * xa_block);
        pack_position_pairs(
            s, geo, w.kblocks, p0, p1,
            [&](int k, int p) { return dy + s.y.plane(n, int64_t(g) * geo.Kg + k) + int64_t(p) * s.Q; }, dy_rows,
            dyt + at * dyt_block);
      }
      const TileScope tiles;
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
            const int64_t xa_image = geo.row_blocks * xa_block, dyt_image = geo.row_blocks * dyt_block;
            float* out = i == 0 ? sum : item;
            const uint16_t* a = xa + first * xa_block;
            const uint32_t* b = dyt + first * dyt_block;
            if (two_c && two_k)
              filter_item_sums<true, true>(geo, w.kblocks, a, b, images, xa_image, dyt_image, shift, computed, cb, kb,
                                           out);
            else if (two_c)
              filter_item_sums<true, false>(geo, w.kblocks, a, b, images, xa_image, dyt_image, shift, computed, cb, kb,
                                            out);
            else if (two_k)
              filter_item_sums<false, true>(geo, w.kblocks, a, b, images, xa_image, dyt_image, shift, computed, cb, kb,
                                            out);
            else
              filter_item_sums<false, false>(geo, w.kblocks, a, b, images, xa_image, dyt_image, shift, computed, cb, kb,
                                             out);
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

void conv_backward_filter(const ConvShape& s, const float* x, const float* dy, float* dw, bool accumulate,
                          FilterOrder order) {
  const int cblocks = int(ceil_div(s.C / s.groups, kTileRows));
  const int kblocks = int(ceil_div(s.K / s.groups, kTileRows));
  // Per position of a block row: the input's bfloat16, dy's pairs and dy's float rows.
  const Geometry geo(s, int64_t(cblocks) * kTileRows * 2, int64_t(kblocks) * kTileRows * 2 + kTileRows * 4, 2);
  const int images_per_item = int(std::clamp<int64_t>(ceil_div(kFilterItemPositions, int64_t(geo.block_rows) * geo.L),
                                                      1, std::max<int64_t>(1, s.N / kFilterItems)));
  const int image_blocks = int(ceil_div(s.N, images_per_item));
  const int64_t items = int64_t(s.groups) * image_blocks * geo.row_blocks;
  const int64_t partial_bytes = int64_t(geo.RS) * cblocks * kTileRows * kblocks * kTileRows * 4;  // per item
  const int64_t packed_bytes =
      int64_t(s.N) * geo.row_blocks *
      (int64_t(geo.phases) * cblocks * kTileRows * geo.input_lanes * 2 + geo.positions / 2 * dyt_pitch(kblocks) * 4);
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
  if (accumulators_outer)
    return backward_filter_accumulators_outer(s, {cblocks, kblocks, images_per_item, image_blocks, &geo}, x, dy, dw,
                                              accumulate);
  // Images packed side by side and summed with the accumulators held in the tiles (filter_step): as many as fit
  // kFilterPassBytes. Each tile still adds the images in order, so how many go in a pass does not change the bits.
  const int64_t xa_image = int64_t(geo.phases) * cblocks * kTileRows * geo.input_lanes;  // bfloat16 per image
  const int64_t dyt_image = geo.positions / 2 * dyt_pitch(kblocks);                      // 32-bit pairs per image
  const int64_t computed_per_image = round_up(int64_t(geo.block_rows) * geo.L, kTileDepth);
  const int per_pass = int(std::clamp<int64_t>(
      std::min(ceil_div(kFilterPassPositions, computed_per_image), kFilterPassBytes / (xa_image * 2 + dyt_image * 4)),
      1, images_per_item));
  // Each item's sums: (RS, cblocks * 16, kblocks * 16), dW^T per tap.
  const int64_t partial_floats = int64_t(geo.RS) * cblocks * kTileRows * kblocks * kTileRows;
  std::vector<float> partials(size_t(items * partial_floats), 0.f);
#pragma omp parallel if (items > 1)
  {
    const TileScope tiles;
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
        for (int i = 0; i < images; ++i) {
          const int n = n0 + i;
          pack_rows(
              s, geo, cblocks, p0,
              [&](int c, int h) { return x + s.x.plane(n, int64_t(g) * geo.Cg + c) + int64_t(h) * s.W; },
              xa + i * xa_image);
          pack_position_pairs(
              s, geo, kblocks, p0, p1,
              [&](int k, int p) { return dy + s.y.plane(n, int64_t(g) * geo.Kg + k) + int64_t(p) * s.Q; }, dy_rows,
              dyt + i * dyt_image);
        }
        for (int r = 0; r < s.R; ++r)
          for (int t = 0; t < s.S; ++t) {
            float* tap_sums = partial + int64_t(r * s.S + t) * cblocks * kTileRows * kblocks * kTileRows;
            // The tap's plane and lanes, as an offset from plane 0.
            const int64_t shift =
                geo.tap_plane(s, r, t) * int64_t(cblocks) * kTileRows * geo.input_lanes + geo.tap_offset(s, r, t);
            for (int cb = 0; cb < cblocks; cb += 2)
              for (int kb = 0; kb < kblocks; kb += 2) {
                const bool two_c = cb + 1 < cblocks, two_k = kb + 1 < kblocks;
                if (two_c && two_k)
                  filter_step<true, true>(geo, kblocks, xa, dyt, images, xa_image, dyt_image, shift, computed, cb, kb,
                                          tap_sums);
                else if (two_c)
                  filter_step<true, false>(geo, kblocks, xa, dyt, images, xa_image, dyt_image, shift, computed, cb, kb,
                                           tap_sums);
                else if (two_k)
                  filter_step<false, true>(geo, kblocks, xa, dyt, images, xa_image, dyt_image, shift, computed, cb, kb,
                                           tap_sums);
                else
                  filter_step<false, false>(geo, kblocks, xa, dyt, images, xa_image, dyt_image, shift, computed, cb, kb,
                                            tap_sums);
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

}  // namespace amx
}  // namespace cpu
}  // namespace kernels
