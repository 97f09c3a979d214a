// The bfloat16 kernels of kernels/cpu/conv_bf16.h (layouts there), compiled with AMX and AVX512-BF16: the forward
// pass (and so backward data) on either engine; the backward filter is in conv_bf16_filter_amx.cpp.
//
// Tiles: every tile is 16 rows of 64 bytes. Accumulators 0-3 (16 x 16 floats) form a 2 x 2 block of outputs; 4-5 hold
// the A operands (16 rows x 32 bfloat16) of its two rows of blocks and 6-7 the B operands (16 pairs x 16 columns x 2
// bfloat16) of its two columns, so each tap costs four loads for four multiply-adds of 16 x 16 x 32.
// Dot products: 8 outputs x 48 positions in 24 registers at a time, each weight pair broadcast against three vectors of
// 16 positions' channel pairs: three loads and eight broadcasts feed 24 VDPBF16PS.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/conv_bf16.h"
#include "kernels/cpu/conv_bf16_amx_tiles.h"

namespace kernels {
namespace cpu {
namespace bf16 {

namespace {

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
      if (b == 0 && h + kPrefetchRows < s.H) {
        prefetch_floats(x_row(c0, h + kPrefetchRows), s.W);
        if (odd) prefetch_floats(x_row(c1, h + kPrefetchRows), s.W);
      }
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

// Positions per block of the dot-product engine's forward.
constexpr int kDotPositions = 48;

// The dot-product engine's forward_step for 8 outputs, rows row0 .. row0 + 7 of block kb, and kVectors * 16 positions
// from j0.
template <int kVectors>
void dot_forward_rows(const ConvShape& s, const Geometry& geo, int chunks, int kblocks, const uint16_t* wa,
                      const uint32_t* xb, int kb, int row0, int64_t j0, float* y_block) {
  constexpr int kRows = 8;
  __m512 acc[kRows][kVectors];  // (8 outputs, kVectors * 16 positions)
  for (auto& row : acc)
    for (__m512& v : row) v = _mm512_setzero_ps();
  const int64_t plane_lanes = int64_t(chunks) * kTileRows * geo.input_lanes;
  for (int kc = 0; kc < chunks; ++kc) {
    // The chunk's pairs that hold channels: unlike a tile's fixed depth, the zeros past Cg are skipped (a layer of 16
    // channels in would spend half its time on them).
    const int pairs = int(std::min<int64_t>(kTileDepth / 2, ceil_div(geo.Cg - int64_t(kc) * kTileDepth, 2)));
    for (int r = 0; r < s.R; ++r)
      for (int t = 0; t < s.S; ++t) {
        const int tap = r * s.S + t;
        // (8 outputs, 16 pairs) of the A tile: one 32-bit weight pair per output and channel pair.
        const uint16_t* a =
            wa + ((int64_t(kc) * geo.RS + tap) * kblocks + kb) * kTileRows * kTileDepth + row0 * kTileDepth;
        const uint32_t* b = xb + geo.tap_plane(s, r, t) * plane_lanes + int64_t(kc) * kTileRows * geo.input_lanes + j0 +
                            geo.tap_offset(s, r, t);
        for (int pair = 0; pair < pairs; ++pair) {
          const uint32_t* lanes = b + int64_t(pair) * geo.input_lanes;
          __m512bh x[kVectors];
          for (int v = 0; v < kVectors; ++v) x[v] = (__m512bh)_mm512_loadu_si512(lanes + 16 * v);
          for (int m = 0; m < kRows; ++m) {
            const __m512bh weights = (__m512bh)_mm512_broadcastd_epi32(_mm_loadu_si32(a + m * kTileDepth + 2 * pair));
            for (int v = 0; v < kVectors; ++v) acc[m][v] = _mm512_dpbf16_ps(acc[m][v], x[v], weights);
          }
        }
      }
  }
  float* out = y_block + (int64_t(kb) * kTileRows + row0) * geo.positions + j0;
  for (int m = 0; m < kRows; ++m)
    for (int v = 0; v < kVectors; ++v) _mm512_storeu_ps(out + int64_t(m) * geo.positions + 16 * v, acc[m][v]);
}

// One work item's sums, positions [0, computed) of every block of outputs, into y_block (kblocks * 16, positions).
void tile_forward_item(const ConvShape& s, const Geometry& geo, int chunks, int kblocks, const uint16_t* wa,
                       const uint32_t* xb, int64_t computed, float* y_block) {
  for (int64_t j0 = 0; j0 < computed; j0 += kPositionStep)
    for (int kb = 0; kb < kblocks; kb += 2) {
      if (kb + 1 < kblocks)
        forward_step<true>(s, geo, chunks, kblocks, wa, xb, kb, j0, y_block);
      else
        forward_step<false>(s, geo, chunks, kblocks, wa, xb, kb, j0, y_block);
    }
}
void dot_forward_item(const ConvShape& s, const Geometry& geo, int chunks, int kblocks, const uint16_t* wa,
                      const uint32_t* xb, int64_t computed, float* y_block) {
  for (int64_t j0 = 0; j0 < computed; j0 += kDotPositions) {
    const int64_t left = computed - j0;
    for (int kb = 0; kb < kblocks; ++kb)
      for (int row0 = 0; row0 < kTileRows && kb * kTileRows + row0 < geo.Kg; row0 += 8) {
        if (left > 32)  // positions is a multiple of 16 past j0: 48 lanes are there
          dot_forward_rows<3>(s, geo, chunks, kblocks, wa, xb, kb, row0, j0, y_block);
        else if (left > 16)
          dot_forward_rows<2>(s, geo, chunks, kblocks, wa, xb, kb, row0, j0, y_block);
        else
          dot_forward_rows<1>(s, geo, chunks, kblocks, wa, xb, kb, row0, j0, y_block);
      }
  }
}

}  // namespace

void conv_forward(Bf16Engine engine, const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                  ConvEpilogue epilogue, bool accumulate, bool turned) {
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
    const TileScope tiles(engine == Bf16Engine::tiles);
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
      if (engine == Bf16Engine::dot_products)
        dot_forward_item(s, geo, chunks_in, kblocks, wa_g, xb, computed, y_block);
      else
        tile_forward_item(s, geo, chunks_in, kblocks, wa_g, xb, computed, y_block);
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

}  // namespace bf16
}  // namespace cpu
}  // namespace kernels
