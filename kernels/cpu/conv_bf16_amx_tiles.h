#pragma once
// Internal to the bfloat16 kernels (conv_bf16_amx.cpp: forward; conv_bf16_filter_amx.cpp: backward filter), either
// engine: the tile configuration, the phase-plane geometry of kernels/cpu/conv_bf16.h and the vector helpers both use.
// Included only by *_amx.cpp files, which are all compiled with the same AMX and AVX512-BF16 flags (the dot-product
// engine executes no AMX instruction: its functions use none and never configure the tiles).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/conv.h"

// GCC 12's AVX-512 headers build masked and shuffled vectors from deliberately undefined ones and then warn about
// them once inlined here (a false positive of -Wmaybe-uninitialized inside the intrinsics).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace kernels {
namespace cpu {
namespace bf16 {

constexpr int kTileRows = 16;      // rows of every tile; also the floats of an accumulator row
constexpr int kTileDepth = 32;     // bfloat16 per A row: the channels (forward) or positions (filter) of one step
constexpr int kPositionStep = 32;  // positions per step of the forward loop: two B tiles
// Scratch per work item (packed input and the item's outputs) is kept under this, in L2, by cutting an image into
// blocks of output rows.
constexpr int64_t kItemBytes = int64_t(768) << 10;

inline int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}
inline int64_t round_up(int64_t a, int64_t b) {
  return ceil_div(a, b) * b;
}

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

// With `configure` (the tile engine), configures the 8 tiles on this thread for the scope and releases the tile state
// after; without it (the dot-product engine), does nothing.
struct TileScope {
  explicit TileScope(bool configure) : configured(configure) {
    if (!configure) return;
    TileConfig config;
    for (int i = 0; i < 8; ++i) {
      config.bytes_per_row[i] = 64;
      config.rows[i] = kTileRows;
    }
    _tile_loadconfig(&config);
  }
  ~TileScope() {
    if (configured) _tile_release();
  }
  TileScope(const TileScope&) = delete;
  TileScope& operator=(const TileScope&) = delete;

 private:
  bool configured;
};

template <typename T>
T* thread_buffer(std::vector<T>& buffer, size_t size) {
  if (buffer.size() < size) buffer.resize(size);
  return buffer.data();
}

inline __mmask16 first_lanes(int64_t count) {
  return count >= 16 ? __mmask16(0xffff) : __mmask16((1u << count) - 1);
}

// 16 lanes of pairs: lane i = bf16(odd[i]) << 16 | bf16(even[i]).
inline __m512i interleave_pairs(__m512 even, __m512 odd) {
  const __m512i words = (__m512i)_mm512_cvtne2ps_pbh(odd, even);  // even's 16 words, then odd's
  const __m512i order = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21,
                                         5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(order, words);
}

// 16 consecutive floats as 8 lanes of pairs in order (lane i = positions 2i, 2i+1), from two vectors of 16: 16 lanes.
inline __m512i consecutive_pairs(__m512 low, __m512 high) {
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
inline __m512 load_strided(const float* values, int stride, int64_t count) {
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

// The packing reads one row of each channel in turn, 16 to 512 streams a few lines long each time: too many for the
// hardware prefetchers, so each row asks for the same channel's row this many rows ahead.
constexpr int kPrefetchRows = 4;
inline void prefetch_floats(const float* values, int64_t count) {
  for (int64_t i = 0; i < count; i += 16) _mm_prefetch(reinterpret_cast<const char*>(values + i), _MM_HINT_T0);
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

}  // namespace bf16
}  // namespace cpu
}  // namespace kernels
