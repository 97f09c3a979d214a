// Fast CPU convolution: im2col / col2im + our GEMM (kernels/cpu/gemm.h, one thread per work item), OpenMP over
// independent work items. Forward and backward filter with few input channels per group (first layers, depthwise) run
// direct kernels instead (kernels/cpu/conv_direct_fwd.h, kernels/cpu/conv_direct_filter.h), as do many-channel
// layers where the measured rules say so (forward, backward data and backward filter), and strided backward data by
// phases of dx (kernels/cpu/conv_phase_bwd_data.h). With the bfloat16 precision active, the shapes it applies to run
// on the tile units instead (kernels/cpu/conv_bf16.h).
//
// Per image n and group g (Cg = C/G, Kg = K/G, CRS = Cg*R*S), col (CRS, PQ) holds the input values under each filter
// tap (row (c, r, s)) for each output position (column p*Q + q):
//   forward          Y_g (Kg, PQ)  = W_g (Kg, CRS) * col (CRS, PQ) + b_g
//   backward data    col (CRS, PQ) = W_g^T * dY_g (Kg, PQ), then col2im adds col into dx
//   backward filter  dW_g (Kg, CRS) = sum over images of dY_g (Kg, PQ) * col^T (PQ, CRS)
// Where col is never stored: forward packs col's GEMM panels straight from x while the GEMM runs (gemm_packed with
// an ImagePanels source), and the weights of forward and backward data are packed once per call for all images
// (gemm_pack_a) instead of once per image. Backward data makes col a chunk of rows at a time, small enough to stay
// in L2 until col2im has added it into dx. Backward filter builds col for a block of rows and positions at a time,
// at most kColumnBlockFloats (4 MB; more only where 128 positions of a row block exceed it). Scratch memory stays
// bounded per thread for whole-image inference. A 1x1 stride-1 unpadded convolution needs no col at all: x's (Cg, HW)
// planes already are it; with few outputs per group (AVX-512) its forward GEMM reads them in place, unpacked, and its
// backward filter runs the streaming GEMM (kernels/cpu/gemm_stream.h), both with the same bits as the packed GEMM.
//
// How each pass is cut into work items, each writing its own part of the output:
//   forward          (image, group, block of output positions): a block of Y's columns;
//   backward data    (image, group, block of input channels): those channels of dx, whose col rows are the block's
//                    rows of W_g^T * dY_g (col2im of one channel reads only that channel's rows);
//   backward filter  (group, block of col rows, block of images): those columns of dW_g, summed over the block's
//                    images and positions in order inside the item (the reduction dimension of each GEMM is a
//                    whole image or a large block of positions); where dW is small the images are cut into blocks
//                    instead of the rows, each into its own partial dW, added in block order at the end.
// Every summation order depends on the shape only (forward's blocks also follow the thread count, but each output
// element is summed inside one GEMM call whatever the blocks), and each item writes a disjoint part of the output,
// so results are bit-identical for any number of threads, any schedule, and from run to run.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/conv.h"
#include "kernels/cpu/conv_bf16.h"
#include "kernels/cpu/conv_direct_filter.h"
#include "kernels/cpu/conv_direct_fwd.h"
#include "kernels/cpu/conv_phase_bwd_data.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_stream.h"
#include "kernels/cpu/parallel_threshold.h"

namespace kernels {
namespace cpu {

namespace {

// Most floats in one col block of backward filter (rows x output positions): 4 MB. Each block is one GEMM call that
// packs its share of dY again, so blocks are as large as memory allows: a 3x3 layer's whole 13x13 or 14x14 map is
// one block (1 MB blocks made AlexNet conv3-5 and VGG conv5 11-14% slower per CPU second).
constexpr int64_t kColumnBlockFloats = int64_t(1) << 20;
// Fewest output positions in a col block, so the GEMM stays efficient when a col column is long.
constexpr int64_t kMinBlockColumns = 128;
// Items the backward passes aim for (when the shape allows), so that several threads have work at batch 1.
constexpr int64_t kTargetItems = 4;
// Forward's items per thread (its blocks may follow the thread count).
constexpr int64_t kItemsPerThread = 4;
// Fewest col rows in a row block of backward filter or a channel block of backward data.
constexpr int64_t kMinBlockRows = 32;
// Backward data makes col a chunk at a time: at most this many floats (384 KB, in L2 with the packed dY block), at
// least kChunkRows rows where the block has them (each chunk packs the dY block again).
constexpr int64_t kChunkFloats = int64_t(96) << 10;
constexpr int64_t kChunkRows = 96;
// Weights of fewer floats than this (256 KB) are packed an operand per thread: slicing them gains nothing measurable.
constexpr int64_t kSharedPackFloats = int64_t(1) << 16;
// Backward filter cuts images rather than col rows when dW has at most this many floats (1 MB: AlexNet conv1).
constexpr int64_t kSmallFilterFloats = int64_t(1) << 18;
// A 1x1 forward pass of at most this many outputs per group reads x in place rather than packing it: packing costs a
// read and a write of x for only Kg multiply-adds per element. bench/cpu_conv_bench, AVX-512, 2 threads, inception 3a
// at batch 8, experiments stopped, in place / packed: 5x5_reduce (16 outputs) 0.84x / 0.60x oneDNN, pool_proj (32)
// 0.81x / 0.65x, but the 1x1 (64) 0.72x / 0.77x and 3x3_reduce (96) 0.67x / 0.76x.
constexpr int kInPlaceMaxRows = 32;
// A 1x1 backward filter of at most this many outputs per group runs the streaming GEMM (dW (Kg, C) = dY * x^T: dY^T
// packed, x's rows read in place) instead of packing x^T's panels, a transpose: the same bits (kernels/cpu/
// gemm_stream.h). Inception 3a, as above, stream / packed: 16 outputs 0.79x / 0.60x oneDNN, 32 0.76x / 0.58x, 64
// 0.81x / 0.67x, 96 0.76x / 0.72x.
constexpr int kStreamFilterMaxRows = 96;

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}
// Floor and ceiling of a / b for b > 0 and any sign of a.
int64_t floor_div_signed(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}
int64_t ceil_div_signed(int64_t a, int64_t b) {
  return -floor_div_signed(-a, b);
}

struct Geometry {
  int Cg, Kg;
  int RS;             // taps per channel: R * S
  int64_t crs;        // rows of col: Cg * R * S
  int64_t positions;  // columns of col: P * Q
  bool direct;        // 1x1, stride 1, no padding: x itself is the column matrix
};

Geometry geometry(const ConvShape& s) {
  Geometry geo;
  geo.Cg = s.C / s.groups;
  geo.Kg = s.K / s.groups;
  geo.RS = s.R * s.S;
  geo.crs = int64_t(geo.Cg) * geo.RS;
  geo.positions = int64_t(s.P) * s.Q;
  geo.direct = s.R == 1 && s.S == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 && s.pad_w == 0;
  return geo;
}

// Output positions per block for a col of `rows` rows: as many as the budget allows (at least kMinBlockColumns),
// then evened out over the blocks so that no block is a short remainder.
int64_t block_columns(const Geometry& geo, int64_t rows) {
  const int64_t most =
      std::min(geo.positions, std::max(kMinBlockColumns, kColumnBlockFloats / std::max<int64_t>(rows, 1)));
  return ceil_div(geo.positions, ceil_div(geo.positions, most));
}

// Per-thread scratch, reused across calls and grown as needed.
float* thread_scratch(size_t floats) {
  thread_local std::vector<float> scratch;
  if (scratch.size() < floats) scratch.resize(floats);
  return scratch.data();
}

// Calls visit(p, q0, out, run) for the output positions [first, first + count), split at output-row boundaries:
// the run of positions q0 .. q0+run-1 of output row p, which is entry `out` onwards of the block.
template <typename Visit>
void for_each_row_run(const ConvShape& s, int64_t first, int64_t count, Visit visit) {
  int64_t p = first / s.Q, q = first % s.Q, done = 0;
  while (done < count) {
    const int64_t run = std::min<int64_t>(s.Q - q, count - done);
    visit(int(p), int(q), done, run);
    done += run;
    q = 0;
    ++p;
  }
}

// For filter column t, the output columns q in [0, Q) that read inside the image (0 <= q*stride - pad + t < W) are
// [lo, hi); the others read the zero padding.
struct ValidColumns {
  int64_t lo, hi;
  ValidColumns(const ConvShape& s, int t) {
    const int64_t offset = int64_t(s.pad_w) - t;  // v = q*stride - offset
    lo = std::clamp<int64_t>(ceil_div_signed(offset, s.stride_w), 0, s.Q);
    hi = std::clamp<int64_t>(floor_div_signed(s.W - 1 + offset, s.stride_w) + 1, lo, s.Q);
  }
};

// Stride 1 with "same" padding (P = H, Q = W: 3x3 pad 1, 5x5 pad 2): col row (c, r, t) at position j = p*W + q is
// x_c[j + (r - pad_h) * W + (t - pad_w)], one shifted run of the plane: copied in one piece (zeros where it leaves
// the plane: the rows above and below), then the <= pad_w columns per output row that wrapped around from the
// neighbouring image row are zeroed. (The general path copies each output row's run separately: 13-float runs on
// a 13x13 map.)
bool same_stride1(const ConvShape& s) {
  return s.stride_h == 1 && s.stride_w == 1 && s.P == s.H && s.Q == s.W;
}

// Zeroes the entries of a col row (filter column t, positions [start, start + cols)) whose output column q reads
// outside the image row: q < pad_w - t, or q >= W + pad_w - t (a shifted run wraps them round from the next row).
void zero_wrapped_columns(const ConvShape& s, int t, int64_t start, int64_t cols, float* out) {
  const int left = std::max(s.pad_w - t, 0), right = std::max(t - s.pad_w, 0);
  if (left == 0 && right == 0) return;
  for (int64_t j0 = start - start % s.W; j0 < start + cols; j0 += s.W) {  // each output row in the range
    for (int64_t q = 0; q < left; ++q)
      if (j0 + q >= start && j0 + q < start + cols) out[j0 + q - start] = 0.f;
    for (int64_t q = s.W - right; q < s.W; ++q)
      if (j0 + q >= start && j0 + q < start + cols) out[j0 + q - start] = 0.f;
  }
}

void col_row_same_stride1(const ConvShape& s, const float* x_g, int64_t row, int64_t start, int64_t cols, float* out) {
  const int t = int(row % s.S), r = int(row / s.S % s.R);
  const float* x_c = x_g + row / (int64_t(s.R) * s.S) * s.x.channel_stride;  // (H, W)
  const int64_t plane = int64_t(s.H) * s.W, shift = int64_t(r - s.pad_h) * s.W + (t - s.pad_w);
  // Inside the plane for j in [lo, hi).
  const int64_t lo = std::clamp<int64_t>(-shift - start, 0, cols),
                hi = std::clamp<int64_t>(plane - shift - start, lo, cols);
  std::fill(out, out + lo, 0.f);
  // In pieces of at most 2 KB: glibc copies longer runs with rep movsb, which ran 7% slower here on a VGG conv1_2
  // backward filter (source and destination one float out of step).
  for (int64_t j = lo; j < hi; j += 512)
    std::memcpy(out + j, x_c + start + j + shift, size_t(std::min<int64_t>(512, hi - j)) * sizeof(float));
  std::fill(out + hi, out + cols, 0.f);
  zero_wrapped_columns(s, t, start, cols, out);
}

// Stride_w > 1 (conv1: 11x11 stride 4): x_g's planes split by input column phase, so that each col row's run is
// contiguous: phases (Cg, stride_w, H, Wp) with Wp = ceil(W / stride_w) holds x[c, h, i * stride_w + ph] at
// ((c * stride_w + ph) * H + h) * Wp + i (0 past the row's end). Built once per image, it turns im2col's strided
// reads (one float each, the forward pass's largest cost there) into copies.
int64_t phase_width(const ConvShape& s) {
  return ceil_div(s.W, s.stride_w);
}

float* split_phases(const ConvShape& s, int Cg, const float* x_g) {
  const int sw = s.stride_w;
  const int64_t wp = phase_width(s);
  thread_local std::vector<float> phases;
  const size_t size = size_t(Cg) * sw * s.H * wp;
  if (phases.size() < size) phases.resize(size);
  for (int c = 0; c < Cg; ++c)
    for (int h = 0; h < s.H; ++h) {
      const float* x_row = x_g + c * s.x.channel_stride + int64_t(h) * s.W;  // (W)
      for (int ph = 0; ph < sw; ++ph) {
        float* out = phases.data() + ((int64_t(c) * sw + ph) * s.H + h) * wp;  // (Wp)
        for (int64_t i = 0; i < wp; ++i) out[i] = i * sw + ph < s.W ? x_row[i * sw + ph] : 0.f;
      }
    }
  return phases.data();
}

// col (row_end - row_begin, count): rows [row_begin, row_end) of the column matrix, output positions
// [first, first + count). x_g points at plane 0 of this image's group (channels g*Cg ...), planes channel_stride
// apart.
void im2col(const ConvShape& s, const float* x_g, int64_t row_begin, int64_t row_end, int64_t first, int64_t count,
            float* col, const float* phases = nullptr) {
  if (same_stride1(s)) {
    for (int64_t row = row_begin; row < row_end; ++row)
      col_row_same_stride1(s, x_g, row, first, count, col + (row - row_begin) * count);
    return;
  }
  for (int64_t row = row_begin; row < row_end; ++row) {
    const int t = int(row % s.S), r = int(row / s.S % s.R);
    const float* x_c = x_g + row / (int64_t(s.R) * s.S) * s.x.channel_stride;  // (H, W)
    float* col_row = col + (row - row_begin) * count;                          // (count)
    const ValidColumns valid(s, t);
    const int64_t offset = int64_t(s.pad_w) - t;  // output column q reads input column q*stride_w - offset
    // With phases: input column q*stride_w - offset is entry q + shift of phase ph.
    const int64_t shift = floor_div_signed(-offset, s.stride_w), ph = -offset - shift * s.stride_w;
    const int64_t c = row / (int64_t(s.R) * s.S), wp = phases ? phase_width(s) : 0;
    for_each_row_run(s, first, count, [&](int p, int q0, int64_t out, int64_t run) {
      float* dst = col_row + out;  // dst[q - q0] is output column q
      const int h = p * s.stride_h - s.pad_h + r;
      if (h < 0 || h >= s.H) {
        std::fill_n(dst, run, 0.f);
        return;
      }
      const int64_t lo = std::clamp<int64_t>(valid.lo, q0, q0 + run), hi = std::clamp<int64_t>(valid.hi, lo, q0 + run);
      const float* x_row = x_c + int64_t(h) * s.W;  // (W)
      std::fill(dst, dst + (lo - q0), 0.f);
      if (s.stride_w == 1) {
        std::memcpy(dst + (lo - q0), x_row + (lo - offset), size_t(hi - lo) * sizeof(float));
      } else if (phases) {
        const float* phase_row = phases + ((c * s.stride_w + ph) * s.H + h) * wp;  // (Wp)
        std::memcpy(dst + (lo - q0), phase_row + lo + shift, size_t(hi - lo) * sizeof(float));
      } else {
        for (int64_t q = lo; q < hi; ++q) dst[q - q0] = x_row[q * s.stride_w - offset];
      }
      std::fill(dst + (hi - q0), dst + run, 0.f);
    });
  }
}

// The adjoint of im2col: adds each entry of col (rows [row_begin, row_end), positions [first, first + count)) into
// the dx pixel it was read from. Clobbers the entries of col that read the padding (same-padding stride 1 only).
void col2im_add(const ConvShape& s, float* col, int64_t row_begin, int64_t row_end, int64_t first, int64_t count,
                float* dx_g) {
  if (same_stride1(s)) {  // one shifted run per col row, as im2col's (the wrapped columns zeroed in col first)
    for (int64_t row = row_begin; row < row_end; ++row) {
      const int t = int(row % s.S), r = int(row / s.S % s.R);
      float* dx_c = dx_g + row / (int64_t(s.R) * s.S) * s.x.channel_stride;  // (H, W)
      float* col_row = col + (row - row_begin) * count;                      // (count)
      const int64_t plane = int64_t(s.H) * s.W, shift = int64_t(r - s.pad_h) * s.W + (t - s.pad_w);
      zero_wrapped_columns(s, t, first, count, col_row);
      const int64_t lo = std::clamp<int64_t>(-shift - first, 0, count);
      const int64_t hi = std::clamp<int64_t>(plane - shift - first, lo, count);
      float* d = dx_c + first + shift;  // d[j] is the pixel position j reads
      for (int64_t j = lo; j < hi; ++j) d[j] += col_row[j];
    }
    return;
  }
  for (int64_t row = row_begin; row < row_end; ++row) {
    const int t = int(row % s.S), r = int(row / s.S % s.R);
    float* dx_c = dx_g + row / (int64_t(s.R) * s.S) * s.x.channel_stride;  // (H, W)
    const float* col_row = col + (row - row_begin) * count;                // (count)
    const ValidColumns valid(s, t);
    const int64_t offset = int64_t(s.pad_w) - t;  // output column q was read from input column q*stride_w - offset
    for_each_row_run(s, first, count, [&](int p, int q0, int64_t out, int64_t run) {
      const int h = p * s.stride_h - s.pad_h + r;
      if (h < 0 || h >= s.H) return;
      const int64_t lo = std::clamp<int64_t>(valid.lo, q0, q0 + run), hi = std::clamp<int64_t>(valid.hi, lo, q0 + run);
      const float* src = col_row + out;         // src[q - q0] is output column q
      float* dx_row = dx_c + int64_t(h) * s.W;  // (W)
      if (s.stride_w == 1) {
        float* d = dx_row + (lo - offset);
        const float* c = src + (lo - q0);
        for (int64_t i = 0; i < hi - lo; ++i) d[i] += c[i];
      } else {
        for (int64_t q = lo; q < hi; ++q) dx_row[q * s.stride_w - offset] += src[q - q0];
      }
    });
  }
}

// Blocks a backward pass cuts `units` (channels or col rows) into, so that `outer` x blocks items reach
// kTargetItems where each block keeps at least kMinBlockRows col rows (`rows_per_unit` rows per unit).
int64_t unit_blocks(int64_t outer, int64_t units, int64_t rows_per_unit) {
  const int64_t wanted = ceil_div(kTargetItems, outer);
  const int64_t most = std::max<int64_t>(1, units * rows_per_unit / kMinBlockRows);
  return std::clamp<int64_t>(std::min(wanted, most), 1, units);
}

// One A operand of a pass's GEMMs: its shape (M, K, trans_a, lda), where it is read and where it is packed.
struct WeightOperand {
  GemmShape shape;
  const float* a;
  float* packed;
};

// ---- B panels packed straight from the image (no col matrix in memory) ---------------------------------------

// col rows [k0, k0 + kc) x output positions [first + col0, ... + cols) in GEMM panel layout (GemmPanelSource).
struct ImagePanels {
  const ConvShape* s;
  const float* x_g;     // plane 0 of this image's group
  int64_t first;        // the item's first output position
  bool direct;          // 1x1 unpadded stride 1: row k is plane k itself
  const float* phases;  // split_phases of x_g where stride_w > 1, else null
};

// Copies `row` (cols floats) into column run j of the panels: dst[(j / nr) * kc * nr + k * nr + j % nr].
void scatter_row(const float* row, int cols, int k, int kc, int nr, float* dst) {
  int j = 0;
  for (; j + nr <= cols; j += nr) std::memcpy(dst + int64_t(j) * kc + int64_t(k) * nr, row + j, size_t(nr) * 4);
  if (j < cols) {
    float* tail = dst + int64_t(j) * kc + int64_t(k) * nr;
    std::memcpy(tail, row + j, size_t(cols - j) * 4);
    std::fill(tail + (cols - j), tail + nr, 0.f);
  }
}

void pack_image_panels(const void* context, int k0, int kc, int col0, int cols, int nr, float* dst) {
  const ImagePanels& c = *static_cast<const ImagePanels*>(context);
  thread_local std::vector<float> row;  // (cols): one col row, in L1
  if (row.size() < size_t(cols)) row.resize(size_t(cols));
  for (int k = 0; k < kc; ++k) {
    const float* src = row.data();
    if (c.direct) {
      src = c.x_g + (k0 + k) * c.s->x.channel_stride + c.first + col0;
    } else {
      im2col(*c.s, c.x_g, k0 + k, k0 + k + 1, c.first + col0, cols, row.data(), c.phases);
    }
    scatter_row(src, cols, k, kc, nr, dst);
  }
}

// Rows of a plain row-major matrix (rows ld apart) as panels: dY in backward data.
struct MatrixPanels {
  const float* m;
  int64_t ld;
};

void pack_matrix_panels(const void* context, int k0, int kc, int col0, int cols, int nr, float* dst) {
  const MatrixPanels& c = *static_cast<const MatrixPanels*>(context);
  for (int k = 0; k < kc; ++k) scatter_row(c.m + (k0 + k) * c.ld + col0, cols, k, kc, nr, dst);
}

// The weights packed once per call for all images, on the calling thread's buffer (the engine calls a kernel from
// one thread; the OpenMP workers only read it).
float* packed_weights(size_t floats) {
  thread_local std::vector<float> packed;
  if (packed.size() < floats) packed.resize(floats);
  return packed.data();
}

// Inside a parallel region: packs `operands` A operands (operand(i) gives the shape, source and destination of
// operand i, each of at most `most_rows` rows), cut into slices of whole register tiles so that every thread gets a
// share even when there is one operand (one thread packing one group's weights while the others wait: packing is
// about 3% of a one-thread forward pass of AlexNet conv3 at batch 4 in perf, so as much idle time on a second core).
template <typename Operand>
void pack_weights_shared(int64_t operands, int64_t most_rows, CpuIsa isa, Operand operand) {
  const int64_t tile = gemm_tile_rows(isa), floats = operands * most_rows * operand(0).shape.K;
  const int64_t slices = floats < kSharedPackFloats ? 1
                                                    : std::min(ceil_div(most_rows, tile),
                                                               ceil_div(2 * int64_t(omp_get_num_threads()), operands));
  const int64_t slice_rows = ceil_div(ceil_div(most_rows, tile), std::max<int64_t>(slices, 1)) * tile;
#pragma omp for schedule(dynamic, 1)
  for (int64_t item = 0; item < operands * slices; ++item) {
    const WeightOperand o = operand(item / slices);
    const int64_t r0 = item % slices * slice_rows, r1 = std::min<int64_t>(o.shape.M, r0 + slice_rows);
    if (r0 < r1) gemm_pack_a_rows(o.shape, o.a, o.packed, int(r0), int(r1), isa);
  }
}

}  // namespace

void conv_forward(const ConvShape& s, const float* x, const float* w, const float* b, float* y) {
  conv_forward(s, x, w, b, y, ConvEpilogue{});
}

void conv_forward(const ConvShape& s, const float* x, const float* w, const float* b, float* y, ConvEpilogue epilogue) {
  check_conv_shape(s);
  if (conv_bf16_applies(s)) return conv_forward_bf16(s, x, w, b, y, epilogue);                  // bfloat16 tiles
  if (conv_direct_fwd_applies(s)) return conv_forward_direct(s, x, w, b, y, epilogue);        // few input channels
  if (conv_direct_kvec_applies(s)) return conv_forward_direct_kvec(s, x, w, b, y, epilogue);  // many (measured rule)
  const Geometry geo = geometry(s);
  const CpuIsa isa = active_cpu_isa();
  // W_g (Kg, CRS) of every group, packed once for all images.
  const int64_t per_group = gemm_packed_a_floats(geo.Kg, int(geo.crs), isa);
  float* w_packed = packed_weights(size_t(per_group * s.groups));  // (G, per_group)
  // Each output element is summed inside one GEMM whatever the blocks, so they may follow the thread count: at least
  // kItemsPerThread items per thread (on a shared machine a thread that loses its core mid-item holds up the call by
  // the rest of that item), blocks of whole register tiles so that splitting adds no padded columns.
  int64_t columns = geo.positions;
  const int64_t outer = int64_t(s.N) * s.groups, wanted = kItemsPerThread * int64_t(omp_get_max_threads());
  if (outer < wanted && omp_get_max_threads() > 1) {
    const int64_t tile = gemm_tile_cols(isa);
    columns = std::max(tile, ceil_div(ceil_div(geo.positions, ceil_div(wanted, outer)), tile) * tile);
  }
  const int64_t blocks = ceil_div(geo.positions, columns);
  const int64_t items = outer * blocks;
  const bool in_place = geo.direct && geo.Kg <= kInPlaceMaxRows && gemm_b_in_place_supported(isa);
  // One parallel region (each fork and join waits for a thread that may have lost its core): the packing, then the
  // items. Items write disjoint blocks of y, so the schedule cannot change a bit; dynamic copes with busy cores.
#pragma omp parallel
  {
    pack_weights_shared(s.groups, geo.Kg, isa, [&](int64_t g) {
      return WeightOperand{{geo.Kg, 0, int(geo.crs), false, false, geo.crs, 1, 1, 1.f, 0.f},
                           w + g * geo.Kg * geo.crs,
                           w_packed + g * per_group};
    });
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t block = item % blocks;
      const int g = int(item / blocks % s.groups), n = int(item / blocks / s.groups);
      const int64_t first = block * columns, count = std::min(columns, geo.positions - first);
      const float* x_g = x + s.x.plane(n, g * geo.Cg);  // (Cg, H, W) planes
      const float* phases = s.stride_w > 1 && !geo.direct ? split_phases(s, geo.Cg, x_g) : nullptr;
      const ImagePanels panels{&s, x_g, first, geo.direct, phases};
      const GemmPanelSource source{pack_image_panels, &panels};
      float* y_block = y + s.y.plane(n, g * geo.Kg) + first;  // (Kg, count), rows channel_stride apart
      // Y_block (Kg, count) = W_g (Kg, CRS) * col (CRS, count), col packed from x as the GEMM goes.
      if (in_place) {
        gemm_packed_b_in_place(geo.Kg, int(count), int(geo.crs), w_packed + g * per_group, x_g + first,
                               s.x.channel_stride, y_block, s.y.channel_stride, 0.f, 0, geo.Kg, isa);
      } else {
        gemm_packed(geo.Kg, int(count), int(geo.crs), w_packed + g * per_group, source, y_block, s.y.channel_stride,
                    0.f, 0, geo.Kg, isa);
      }
      // Epilogue while the block is in cache: the bias, then the ReLU reference's expression (so a fused call matches
      // conv + relu bit for bit; NaN passes through).
      for (int k = 0; k < geo.Kg; ++k) {
        float* row = y_block + k * s.y.channel_stride;  // (count)
        const float bias = b ? b[int64_t(g) * geo.Kg + k] : 0.f;
        if (b)
          for (int64_t i = 0; i < count; ++i) row[i] += bias;
        if (epilogue.relu)
          for (int64_t i = 0; i < count; ++i) row[i] = row[i] < 0.f ? 0.f : row[i];
      }
    }
  }
}

void conv_backward_data(const ConvShape& s, const float* dy, const float* w, float* dx, bool accumulate) {
  check_conv_shape(s);
  if (conv_bf16_backward_data_applies(s)) return conv_backward_data_bf16(s, dy, w, dx, accumulate);  // bfloat16 tiles
  if (conv_direct_bwd_data_applies(s)) return conv_backward_data_direct(s, dy, w, dx, accumulate);    // stride 1
  if (conv_phase_bwd_data_applies(s)) return conv_backward_data_by_phases(s, dy, w, dx, accumulate);  // strided
  const Geometry geo = geometry(s);
  const CpuIsa isa = active_cpu_isa();
  // col2im of one channel adds only that channel's col rows, so blocks of channels are independent items; the
  // blocks are cut from the shape alone (several per image when the batch is small).
  const int64_t channel_blocks = unit_blocks(int64_t(s.N) * s.groups, geo.Cg, geo.RS);
  const int64_t block_channels = ceil_div(geo.Cg, channel_blocks);
  const int64_t blocks = ceil_div(geo.Cg, block_channels);
  const int64_t block_rows = block_channels * geo.RS;
  // W_g^T's rows of each (group, channel block), packed once for all images.
  const int64_t per_block = gemm_packed_a_floats(int(block_rows), geo.Kg, isa);
  float* w_packed = packed_weights(size_t(per_block * s.groups * blocks));  // (G, blocks, per_block)
  // col is made a chunk of rows at a time, small enough to stay in L2 for col2im: positions in blocks of up to
  // kChunkFloats / kChunkRows, rows in chunks that fill kChunkFloats (each chunk packs dY's block once more).
  const int64_t most = std::max<int64_t>(1, kChunkFloats / std::min<int64_t>(block_rows, kChunkRows));
  const int64_t columns = ceil_div(geo.positions, ceil_div(geo.positions, most));
  const int tile = gemm_tile_rows(isa);
  const int64_t chunk_rows = std::max<int64_t>(tile, kChunkFloats / columns / tile * tile);
  const int64_t items = int64_t(s.N) * s.groups * blocks;
  // One parallel region: the packing, then the items.
#pragma omp parallel
  {
    pack_weights_shared(int64_t(s.groups) * blocks, block_rows, isa, [&](int64_t gb) {
      const int64_t g = gb / blocks, row_begin = gb % blocks * block_rows;
      const int rows = int(std::min(geo.crs, row_begin + block_rows) - row_begin);
      return WeightOperand{{rows, 0, geo.Kg, true, false, geo.crs, 1, 1, 1.f, 0.f},
                           w + g * geo.Kg * geo.crs + row_begin,
                           w_packed + gb * per_block};
    });
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t block = item % blocks;
      const int g = int(item / blocks % s.groups), n = int(item / blocks / s.groups);
      const int64_t c_begin = block * block_channels, c_end = std::min<int64_t>(geo.Cg, c_begin + block_channels);
      const int64_t row_begin = c_begin * geo.RS, rows = (c_end - c_begin) * geo.RS;
      const float* a = w_packed + (int64_t(g) * blocks + block) * per_block;  // W_g^T rows of the block, packed
      float* dx_g = dx + s.x.plane(n, g * geo.Cg);                            // (Cg, H, W) planes
      const float* dy_g = dy + s.y.plane(n, g * geo.Kg);                      // (Kg, P, Q) planes
      if (geo.direct) {  // dX rows (channels of the block, HW) (+)= W_rows^T (rows, Kg) * dY_g (Kg, HW)
        const MatrixPanels m{dy_g, s.y.channel_stride};
        gemm_packed(int(rows), int(geo.positions), geo.Kg, a, {pack_matrix_panels, &m},
                    dx_g + c_begin * s.x.channel_stride, s.x.channel_stride, accumulate ? 1.f : 0.f, 0, int(rows), isa);
        continue;
      }
      if (!accumulate) {
        for (int64_t c = c_begin; c < c_end; ++c) std::fill_n(dx_g + c * s.x.channel_stride, int64_t(s.H) * s.W, 0.f);
      }
      float* col = thread_scratch(size_t(std::min(rows, chunk_rows) * columns));  // (chunk rows, columns)
      for (int64_t first = 0; first < geo.positions; first += columns) {
        const int64_t count = std::min(columns, geo.positions - first);
        const MatrixPanels m{dy_g + first, s.y.channel_stride};  // dY block (Kg, count)
        for (int64_t m0 = 0; m0 < rows; m0 += chunk_rows) {
          const int64_t m1 = std::min(rows, m0 + chunk_rows);
          // col rows [m0, m1) (count) = W_rows^T rows (Kg) * dY block (Kg, count), then added into dx.
          gemm_packed(int(rows), int(count), geo.Kg, a, {pack_matrix_panels, &m}, col, count, 0.f, int(m0), int(m1),
                      isa);
          col2im_add(s, col, row_begin + m0, row_begin + m1, first, count, dx_g);
        }
      }
    }
  }
}

void conv_backward_filter(const ConvShape& s, const float* x, const float* dy, float* dw, bool accumulate) {
  check_conv_shape(s);
  if (conv_bf16_applies(s)) return conv_backward_filter_bf16(s, x, dy, dw, accumulate);  // bfloat16 tiles
  if (conv_direct_filter_kvec_applies(s))  // many taps: vectorised over output channels
    return conv_backward_filter_direct_kvec(s, x, dy, dw, accumulate);
  if (conv_direct_filter_applies(s)) return conv_backward_filter_direct(s, x, dy, dw, accumulate);  // few channels
  const Geometry geo = geometry(s);
  // Items are (group, block of col rows, block of images). A row block is a set of columns of dW_g summed over its
  // images and positions in order, so every GEMM reduces over a whole image or a large block of positions. Where dW is
  // small (conv1: col has few rows and many positions), cutting rows would pack each image's dY once per row block;
  // there the images are cut instead, each block sums into its own partial dW, and the partials are added in block
  // order at the end. All blocks follow from the shape, so the sums' order does too.
  const int64_t dw_floats = int64_t(s.K) * geo.crs;
  const int64_t image_blocks =
      dw_floats <= kSmallFilterFloats ? std::min<int64_t>(s.N, ceil_div(kTargetItems, s.groups)) : 1;
  const int64_t row_blocks = unit_blocks(int64_t(s.groups) * image_blocks, geo.crs, 1);
  const int64_t block_rows = ceil_div(geo.crs, row_blocks), blocks = ceil_div(geo.crs, block_rows);
  const int64_t block_images = ceil_div(s.N, image_blocks);
  const int64_t columns = geo.direct ? geo.positions : block_columns(geo, block_rows);
  // (image_blocks, K, CRS): each image block's partial dW, laid out as dw (one block needs none: it sums into dw).
  float* partials = image_blocks > 1 ? packed_weights(size_t(image_blocks * dw_floats)) : nullptr;
  const int64_t items = int64_t(s.groups) * blocks * image_blocks;
  const bool stream = geo.direct && geo.Kg <= kStreamFilterMaxRows && gemm_stream_supported(active_cpu_isa());
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t item = 0; item < items; ++item) {
    const int64_t image_block = item % image_blocks, block = item / image_blocks % blocks;
    const int g = int(item / image_blocks / blocks);
    const int64_t row_begin = block * block_rows, row_end = std::min(geo.crs, row_begin + block_rows);
    const int64_t rows = row_end - row_begin;
    float* target = partials ? partials + image_block * dw_floats : dw;   // (K, CRS)
    float* dw_rows = target + int64_t(g) * geo.Kg * geo.crs + row_begin;  // (Kg, rows), rows crs apart
    if (partials || !accumulate)
      for (int k = 0; k < geo.Kg; ++k) std::fill_n(dw_rows + k * geo.crs, rows, 0.f);
    float* col = geo.direct ? nullptr : thread_scratch(size_t(rows * columns));  // (rows, columns)
    const int64_t n_end = std::min<int64_t>(s.N, (image_block + 1) * block_images);
    for (int64_t n = image_block * block_images; n < n_end; ++n) {
      const float* x_g = x + s.x.plane(n, g * geo.Cg);    // (Cg, H, W) planes
      const float* dy_g = dy + s.y.plane(n, g * geo.Kg);  // (Kg, P, Q) planes
      const float* phases = s.stride_w > 1 && !geo.direct ? split_phases(s, geo.Cg, x_g) : nullptr;
      for (int64_t first = 0; first < geo.positions; first += columns) {
        const int64_t count = std::min(columns, geo.positions - first);
        // dW rows (Kg, rows) += dY block (Kg, count) * col^T (count, rows); x's planes are col when direct.
        if (geo.direct) {
          GemmShape product{geo.Kg, int(rows), int(count), false, true, s.y.channel_stride, s.x.channel_stride};
          product.ldc = geo.crs, product.beta = 1.f;
          const float* x_rows = x_g + row_begin * s.x.channel_stride + first;
          if (stream) {
            gemm_stream(product, dy_g + first, x_rows, dw_rows, 1);
          } else {
            gemm(product, dy_g + first, x_rows, dw_rows);
          }
        } else {
          im2col(s, x_g, row_begin, row_end, first, count, col, phases);
          gemm({geo.Kg, int(rows), int(count), false, true, s.y.channel_stride, count, geo.crs, 1.f, 1.f}, dy_g + first,
               col, dw_rows);
        }
      }
    }
  }
  if (!partials) return;
    // dw (+)= partial 0 + partial 1 + ..., in block order for every element.
#pragma omp parallel for schedule(static) if (dw_floats * image_blocks >= kParallelMinElements)
  for (int64_t e = 0; e < dw_floats; ++e) {
    float sum = partials[e];
    for (int64_t ib = 1; ib < image_blocks; ++ib) sum += partials[ib * dw_floats + e];
    dw[e] = accumulate ? dw[e] + sum : sum;
  }
}

}  // namespace cpu
}  // namespace kernels
