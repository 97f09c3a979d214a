// Fast CPU convolution: im2col / col2im + our GEMM (kernels/cpu/gemm.h, one thread per work item), OpenMP over
// independent work items.
//
// Per image n and group g (Cg = C/G, Kg = K/G, CRS = Cg*R*S), col (CRS, PQ) holds the input values under each filter
// tap (row (c, r, s)) for each output position (column p*Q + q):
//   forward          Y_g (Kg, PQ)  = W_g (Kg, CRS) * col (CRS, PQ) + b_g
//   backward data    col (CRS, PQ) = W_g^T * dY_g (Kg, PQ), then col2im adds col into dx
//   backward filter  dW_g (Kg, CRS) = sum over images of dY_g (Kg, PQ) * col^T (PQ, CRS)
// col is built for a block of rows and a block of output positions at a time, at most kColumnBlockFloats (4 MB; more
// only where 128 positions of a row block exceed it), so scratch memory stays bounded per thread for whole-image
// inference, and no pass allocates anything else. A 1x1 stride-1 unpadded
// convolution needs no col at all: x's (Cg, HW) planes already are it.
//
// How each pass is cut into work items, each writing its own part of the output:
//   forward          (image, group, block of output positions): a block of Y's columns;
//   backward data    (image, group, block of input channels): those channels of dx, whose col rows are the block's
//                    rows of W_g^T * dY_g (col2im of one channel reads only that channel's rows);
//   backward filter  (group, block of col rows): those columns of dW_g, summed over all images and positions in
//                    order inside the item (no partial dW to reduce, the reduction dimension of each GEMM is a
//                    whole image or a large block of positions).
// Every summation order depends on the shape only (forward's blocks also follow the thread count, but each output
// element is summed inside one GEMM call whatever the blocks), and each item writes a disjoint part of the output,
// so results are bit-identical for any number of threads, any schedule, and from run to run.
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/conv.h"
#include "kernels/cpu/gemm.h"

namespace kernels {
namespace cpu {

namespace {

using RowMajorMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// A row-major matrix view whose rows are `stride` elements apart: the (channels, pixels) planes of a placement.
using MatrixView = Eigen::Map<RowMajorMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;
using ConstMatrixView = Eigen::Map<const RowMajorMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;
using ConstVectorView = Eigen::Map<const Eigen::VectorXf>;

// Most floats in one col block (rows x output positions): 4 MB. Each block is one GEMM call that packs its share of
// the weights again, so blocks are as large as memory allows: a 3x3 layer's whole 13x13 or 14x14 map is one block
// (1 MB blocks made AlexNet conv3-5 and VGG conv5 11-14% slower per CPU second).
constexpr int64_t kColumnBlockFloats = int64_t(1) << 20;
// Fewest output positions in a col block, so the GEMM stays efficient when a col column is long.
constexpr int64_t kMinBlockColumns = 128;
// Items the backward passes aim for (when the shape allows), so that several threads have work at batch 1.
constexpr int64_t kTargetItems = 4;
// Fewest col rows in a row block of backward filter or a channel block of backward data.
constexpr int64_t kMinBlockRows = 32;

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

// col (row_end - row_begin, count): rows [row_begin, row_end) of the column matrix, output positions
// [first, first + count). x_g points at plane 0 of this image's group (channels g*Cg ...), planes channel_stride
// apart.
void im2col(const ConvShape& s, const float* x_g, int64_t row_begin, int64_t row_end, int64_t first, int64_t count,
            float* col) {
  for (int64_t row = row_begin; row < row_end; ++row) {
    const int t = int(row % s.S), r = int(row / s.S % s.R);
    const float* x_c = x_g + row / (int64_t(s.R) * s.S) * s.x.channel_stride;  // (H, W)
    float* col_row = col + (row - row_begin) * count;                          // (count)
    const ValidColumns valid(s, t);
    const int64_t offset = int64_t(s.pad_w) - t;  // output column q reads input column q*stride_w - offset
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
      } else {
        for (int64_t q = lo; q < hi; ++q) dst[q - q0] = x_row[q * s.stride_w - offset];
      }
      std::fill(dst + (hi - q0), dst + run, 0.f);
    });
  }
}

// The adjoint of im2col: adds each entry of col (rows [row_begin, row_end), positions [first, first + count)) into
// the dx pixel it was read from.
void col2im_add(const ConvShape& s, const float* col, int64_t row_begin, int64_t row_end, int64_t first, int64_t count,
                float* dx_g) {
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

}  // namespace

void conv_forward(const ConvShape& s, const float* x, const float* w, const float* b, float* y) {
  conv_forward(s, x, w, b, y, ConvEpilogue{});
}

void conv_forward(const ConvShape& s, const float* x, const float* w, const float* b, float* y, ConvEpilogue epilogue) {
  check_conv_shape(s);
  const Geometry geo = geometry(s);
  // Forward sums each output element inside one GEMM, whatever the blocks, so they may follow the thread count:
  // at least two items per thread (batch 1 would otherwise leave threads idle).
  int64_t columns = block_columns(geo, geo.crs);
  const int64_t outer = int64_t(s.N) * s.groups, wanted = 2 * int64_t(omp_get_max_threads());
  if (outer * ceil_div(geo.positions, columns) < wanted)
    columns = std::max<int64_t>(1, ceil_div(geo.positions, ceil_div(wanted, outer)));
  const int64_t blocks = ceil_div(geo.positions, columns);
  const int64_t items = outer * blocks;
  // Items write disjoint blocks of y, so the schedule cannot change a bit; dynamic copes with busy cores.
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t item = 0; item < items; ++item) {
    const int64_t block = item % blocks;
    const int g = int(item / blocks % s.groups), n = int(item / blocks / s.groups);
    const int64_t first = block * columns, count = std::min(columns, geo.positions - first);
    const float* x_g = x + s.x.plane(n, g * geo.Cg);  // (Cg, H, W) planes
    ConstMatrixView w_g(w + int64_t(g) * geo.Kg * geo.crs, geo.Kg, geo.crs, Eigen::OuterStride<>(geo.crs));
    MatrixView y_block(y + s.y.plane(n, g * geo.Kg) + first, geo.Kg, count,
                       Eigen::OuterStride<>(s.y.channel_stride));  // (Kg, count)
    // Y_block (Kg, count) = W_g (Kg, CRS) * col (CRS, count); x's planes are col when direct.
    const int64_t crs = geo.crs, kg = geo.Kg, n_cols = count;
    if (geo.direct) {
      gemm({int(kg), int(n_cols), int(crs), false, false, crs, s.x.channel_stride, s.y.channel_stride, 1.f, 0.f},
           w_g.data(), x_g + first, y_block.data());
    } else {
      float* col = thread_scratch(size_t(geo.crs * count));  // (CRS, count)
      im2col(s, x_g, 0, geo.crs, first, count, col);
      gemm({int(kg), int(n_cols), int(crs), false, false, crs, n_cols, s.y.channel_stride, 1.f, 0.f}, w_g.data(), col,
           y_block.data());
    }
    // Epilogue: the bias is added while the block is still in cache.
    if (b) y_block.colwise() += ConstVectorView(b + int64_t(g) * geo.Kg, geo.Kg);
    // The ReLU reference's expression, so a fused call matches conv + relu bit for bit (NaN passes through).
    if (epilogue.relu) y_block = y_block.unaryExpr([](float v) { return v < 0.f ? 0.f : v; });
  }
}

void conv_backward_data(const ConvShape& s, const float* dy, const float* w, float* dx, bool accumulate) {
  check_conv_shape(s);
  const Geometry geo = geometry(s);
  // col2im of one channel adds only that channel's col rows, so blocks of channels are independent items; the
  // blocks are cut from the shape alone (several per image when the batch is small).
  const int64_t channel_blocks = unit_blocks(int64_t(s.N) * s.groups, geo.Cg, geo.RS);
  const int64_t block_channels = ceil_div(geo.Cg, channel_blocks);
  const int64_t blocks = ceil_div(geo.Cg, block_channels);
  const int64_t columns = block_columns(geo, block_channels * geo.RS);
  const int64_t items = int64_t(s.N) * s.groups * blocks;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t item = 0; item < items; ++item) {
    const int64_t block = item % blocks;
    const int g = int(item / blocks % s.groups), n = int(item / blocks / s.groups);
    const int64_t c_begin = block * block_channels, c_end = std::min<int64_t>(geo.Cg, c_begin + block_channels);
    const int64_t row_begin = c_begin * geo.RS, row_end = c_end * geo.RS, rows = row_end - row_begin;
    float* dx_g = dx + s.x.plane(n, g * geo.Cg);  // (Cg, H, W) planes
    // Columns [row_begin, row_end) of W_g (Kg, CRS).
    ConstMatrixView w_rows(w + int64_t(g) * geo.Kg * geo.crs + row_begin, geo.Kg, rows, Eigen::OuterStride<>(geo.crs));
    const float* dy_g = dy + s.y.plane(n, g * geo.Kg);  // (Kg, P, Q) planes
    if (geo.direct) {  // dX rows (channels of the block, HW) (+)= W_rows^T (rows, Kg) * dY_g (Kg, HW)
      gemm({int(rows), int(geo.positions), geo.Kg, true, false, geo.crs, s.y.channel_stride, s.x.channel_stride, 1.f,
            accumulate ? 1.f : 0.f},
           w_rows.data(), dy_g, dx_g + c_begin * s.x.channel_stride);
      continue;
    }
    if (!accumulate) {
      for (int64_t c = c_begin; c < c_end; ++c) std::fill_n(dx_g + c * s.x.channel_stride, int64_t(s.H) * s.W, 0.f);
    }
    float* col = thread_scratch(size_t(rows * columns));  // (rows, columns)
    for (int64_t first = 0; first < geo.positions; first += columns) {
      const int64_t count = std::min(columns, geo.positions - first);
      // col (rows, count) = W_rows^T (rows, Kg) * dY block (Kg, count)
      gemm({int(rows), int(count), geo.Kg, true, false, geo.crs, s.y.channel_stride, count, 1.f, 0.f}, w_rows.data(),
           dy_g + first, col);
      col2im_add(s, col, row_begin, row_end, first, count, dx_g);
    }
  }
}

void conv_backward_filter(const ConvShape& s, const float* x, const float* dy, float* dw, bool accumulate) {
  check_conv_shape(s);
  const Geometry geo = geometry(s);
  // Each item owns a block of col rows (columns of dW_g) of one group and sums all images and positions into it in
  // order, so every GEMM reduces over a whole image or a large block of positions and nothing is reduced afterwards.
  const int64_t row_blocks = unit_blocks(s.groups, geo.crs, 1);
  const int64_t block_rows = ceil_div(geo.crs, row_blocks), blocks = ceil_div(geo.crs, block_rows);
  const int64_t columns = geo.direct ? geo.positions : block_columns(geo, block_rows);
  const int64_t items = int64_t(s.groups) * blocks;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t item = 0; item < items; ++item) {
    const int64_t block = item % blocks;
    const int g = int(item / blocks);
    const int64_t row_begin = block * block_rows, row_end = std::min(geo.crs, row_begin + block_rows);
    const int64_t rows = row_end - row_begin;
    MatrixView dw_rows(dw + int64_t(g) * geo.Kg * geo.crs + row_begin, geo.Kg, rows,
                       Eigen::OuterStride<>(geo.crs));  // columns [row_begin, row_end) of dW_g (Kg, CRS)
    if (!accumulate) dw_rows.setZero();
    float* col = geo.direct ? nullptr : thread_scratch(size_t(rows * columns));  // (rows, columns)
    for (int n = 0; n < s.N; ++n) {
      const float* x_g = x + s.x.plane(n, g * geo.Cg);    // (Cg, H, W) planes
      const float* dy_g = dy + s.y.plane(n, g * geo.Kg);  // (Kg, P, Q) planes
      for (int64_t first = 0; first < geo.positions; first += columns) {
        const int64_t count = std::min(columns, geo.positions - first);
        // dW rows (Kg, rows) += dY block (Kg, count) * col^T (count, rows); x's planes are col when direct.
        if (geo.direct) {
          gemm({geo.Kg, int(rows), int(count), false, true, s.y.channel_stride, s.x.channel_stride, geo.crs, 1.f, 1.f},
               dy_g + first, x_g + row_begin * s.x.channel_stride + first, dw_rows.data());
        } else {
          im2col(s, x_g, row_begin, row_end, first, count, col);
          gemm({geo.Kg, int(rows), int(count), false, true, s.y.channel_stride, count, geo.crs, 1.f, 1.f}, dy_g + first,
               col, dw_rows.data());
        }
      }
    }
  }
}

}  // namespace cpu
}  // namespace kernels
