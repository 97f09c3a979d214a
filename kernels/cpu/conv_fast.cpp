// Fast CPU convolution: im2col / col2im + Eigen GEMM, OpenMP over (image, group, column block).
//
// Per image n and group g (Cg = C/G, Kg = K/G, CRS = Cg*R*S):
//   forward          Y_g (Kg, PQ)  = W_g (Kg, CRS) * col (CRS, PQ) + b_g
//   backward data    col (CRS, PQ) = W_g^T * dY_g (Kg, PQ), then col2im adds col into dx
//   backward filter  dW_g (Kg, CRS) += dY_g (Kg, PQ) * col^T (PQ, CRS), summed over images
// col is built for a block of output positions at a time, so scratch memory stays bounded for whole-image
// inference. A 1x1 stride-1 unpadded convolution needs no col at all: x's (Cg, HW) planes already are it.
//
// Every work partition depends on the shape only, never on the thread count, so results are bit-identical for any
// number of threads and from run to run.
#include <Eigen/Core>
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/conv.h"

namespace kernels {
namespace cpu {

namespace {

using RowMajorMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// A row-major matrix view whose rows are `stride` elements apart: the (channels, pixels) planes of a placement.
using MatrixView = Eigen::Map<RowMajorMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;
using ConstMatrixView = Eigen::Map<const RowMajorMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;
using ConstVectorView = Eigen::Map<const Eigen::VectorXf>;

// Target size of one column block (floats): about an L2 cache, with at least kMinBlockColumns columns so the GEMM
// stays efficient when CRS is large.
constexpr int64_t kColumnBlockFloats = int64_t(1) << 18;
constexpr int64_t kMinBlockColumns = 128;
// Backward filter sums the batch in at most this many fixed chunks, each into its own partial dW.
constexpr int kMaxFilterChunks = 16;
constexpr int64_t kMaxPartialFloats = int64_t(1) << 24;  // 64 MB of partial dW at most

struct Geometry {
  int Cg, Kg;
  int64_t crs;            // rows of col: Cg * R * S
  int64_t positions;      // columns of col: P * Q
  int64_t block_columns;  // output positions per column block
  int64_t blocks;         // column blocks per image
  bool direct;            // 1x1, stride 1, no padding: x itself is the column matrix
};

Geometry geometry(const ConvShape& s) {
  Geometry geo;
  geo.Cg = s.C / s.groups;
  geo.Kg = s.K / s.groups;
  geo.crs = int64_t(geo.Cg) * s.R * s.S;
  geo.positions = int64_t(s.P) * s.Q;
  geo.block_columns = std::min(geo.positions, std::max(kMinBlockColumns, kColumnBlockFloats / geo.crs));
  geo.blocks = (geo.positions + geo.block_columns - 1) / geo.block_columns;
  geo.direct = s.R == 1 && s.S == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 && s.pad_w == 0;
  return geo;
}

// Per-thread scratch, reused across calls and grown as needed.
float* thread_scratch(size_t floats) {
  thread_local std::vector<float> scratch;
  if (scratch.size() < floats) scratch.resize(floats);
  return scratch.data();
}

// Calls visit(row, c, r, t, first, count) for the output positions [first, first + count) of one col row, split
// at output-row boundaries: a run of positions q0..q0+count-1 within output row p.
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

// col (CRS, count): the input values under the filter taps for output positions [first, first + count).
// x_g points at plane 0 of this image's group (channels g*Cg ...), planes channel_stride apart.
void im2col(const ConvShape& s, const Geometry& geo, const float* x_g, int64_t first, int64_t count, float* col) {
  for (int c = 0; c < geo.Cg; ++c) {
    const float* x_c = x_g + c * s.x.channel_stride;  // (H, W)
    for (int r = 0; r < s.R; ++r) {
      for (int t = 0; t < s.S; ++t) {
        float* col_row = col + ((int64_t(c) * s.R + r) * s.S + t) * count;  // (count)
        for_each_row_run(s, first, count, [&](int p, int q0, int64_t out, int64_t run) {
          const int h = p * s.stride_h - s.pad_h + r;
          if (h < 0 || h >= s.H) {
            std::fill(col_row + out, col_row + out + run, 0.f);
            return;
          }
          const float* x_row = x_c + int64_t(h) * s.W;  // (W)
          for (int64_t i = 0; i < run; ++i) {
            const int v = (q0 + int(i)) * s.stride_w - s.pad_w + t;
            col_row[out + i] = (v >= 0 && v < s.W) ? x_row[v] : 0.f;
          }
        });
      }
    }
  }
}

// The adjoint of im2col: adds each col entry into the dx pixel it was read from.
void col2im_add(const ConvShape& s, const Geometry& geo, const float* col, int64_t first, int64_t count, float* dx_g) {
  for (int c = 0; c < geo.Cg; ++c) {
    float* dx_c = dx_g + c * s.x.channel_stride;  // (H, W)
    for (int r = 0; r < s.R; ++r) {
      for (int t = 0; t < s.S; ++t) {
        const float* col_row = col + ((int64_t(c) * s.R + r) * s.S + t) * count;  // (count)
        for_each_row_run(s, first, count, [&](int p, int q0, int64_t out, int64_t run) {
          const int h = p * s.stride_h - s.pad_h + r;
          if (h < 0 || h >= s.H) return;
          float* dx_row = dx_c + int64_t(h) * s.W;  // (W)
          for (int64_t i = 0; i < run; ++i) {
            const int v = (q0 + int(i)) * s.stride_w - s.pad_w + t;
            if (v >= 0 && v < s.W) dx_row[v] += col_row[out + i];
          }
        });
      }
    }
  }
}

}  // namespace

void conv_forward(const ConvShape& s, const float* x, const float* w, const float* b, float* y) {
  check_conv_shape(s);
  const Geometry geo = geometry(s);
  const int64_t items = int64_t(s.N) * s.groups * geo.blocks;
#pragma omp parallel for schedule(static)
  for (int64_t item = 0; item < items; ++item) {
    const int64_t block = item % geo.blocks;
    const int g = int(item / geo.blocks % s.groups), n = int(item / geo.blocks / s.groups);
    const int64_t first = block * geo.block_columns, count = std::min(geo.block_columns, geo.positions - first);
    const float* x_g = x + s.x.plane(n, g * geo.Cg);  // (Cg, H, W) planes
    ConstMatrixView w_g(w + int64_t(g) * geo.Kg * geo.crs, geo.Kg, geo.crs, Eigen::OuterStride<>(geo.crs));
    MatrixView y_block(y + s.y.plane(n, g * geo.Kg) + first, geo.Kg, count,
                       Eigen::OuterStride<>(s.y.channel_stride));  // (Kg, count)
    if (geo.direct) {
      ConstMatrixView x_block(x_g + first, geo.Cg, count, Eigen::OuterStride<>(s.x.channel_stride));  // (Cg, count)
      y_block.noalias() = w_g * x_block;
    } else {
      float* col = thread_scratch(size_t(geo.crs * count));  // (CRS, count)
      im2col(s, geo, x_g, first, count, col);
      y_block.noalias() = w_g * ConstMatrixView(col, geo.crs, count, Eigen::OuterStride<>(count));
    }
    // Epilogue: the bias is added while the block is still in cache.
    if (b) y_block.colwise() += ConstVectorView(b + int64_t(g) * geo.Kg, geo.Kg);
  }
}

void conv_backward_data(const ConvShape& s, const float* dy, const float* w, float* dx, bool accumulate) {
  check_conv_shape(s);
  const Geometry geo = geometry(s);
  // col2im of neighbouring column blocks adds into overlapping dx pixels, so one (image, group) is one work item.
  const int64_t items = int64_t(s.N) * s.groups;
#pragma omp parallel for schedule(static)
  for (int64_t item = 0; item < items; ++item) {
    const int g = int(item % s.groups), n = int(item / s.groups);
    float* dx_g = dx + s.x.plane(n, g * geo.Cg);  // (Cg, H, W) planes
    ConstMatrixView w_g(w + int64_t(g) * geo.Kg * geo.crs, geo.Kg, geo.crs, Eigen::OuterStride<>(geo.crs));
    const float* dy_g = dy + s.y.plane(n, g * geo.Kg);  // (Kg, P, Q) planes
    if (geo.direct) {
      ConstMatrixView dy_image(dy_g, geo.Kg, geo.positions, Eigen::OuterStride<>(s.y.channel_stride));
      MatrixView dx_image(dx_g, geo.Cg, geo.positions, Eigen::OuterStride<>(s.x.channel_stride));  // (Cg, HW)
      if (accumulate) {
        dx_image.noalias() += w_g.transpose() * dy_image;
      } else {
        dx_image.noalias() = w_g.transpose() * dy_image;
      }
      continue;
    }
    if (!accumulate) {
      for (int c = 0; c < geo.Cg; ++c) std::fill_n(dx_g + c * s.x.channel_stride, int64_t(s.H) * s.W, 0.f);
    }
    float* col = thread_scratch(size_t(geo.crs * geo.block_columns));  // (CRS, block_columns)
    for (int64_t block = 0; block < geo.blocks; ++block) {
      const int64_t first = block * geo.block_columns, count = std::min(geo.block_columns, geo.positions - first);
      ConstMatrixView dy_block(dy_g + first, geo.Kg, count, Eigen::OuterStride<>(s.y.channel_stride));
      MatrixView col_block(col, geo.crs, count, Eigen::OuterStride<>(count));  // (CRS, count)
      col_block.noalias() = w_g.transpose() * dy_block;
      col2im_add(s, geo, col, first, count, dx_g);
    }
  }
}

void conv_backward_filter(const ConvShape& s, const float* x, const float* dy, float* dw, bool accumulate) {
  check_conv_shape(s);
  const Geometry geo = geometry(s);
  const int64_t dw_size = int64_t(s.K) * geo.crs;  // (K, Cg, R, S)
  // The batch is cut into a fixed number of chunks (from the shape alone); each (chunk, group) sums its images in
  // order into its own partial dW, and the partials are reduced in chunk order: no races, no atomics, and the same
  // bits for any thread count.
  const int chunks = int(std::clamp<int64_t>(std::min<int64_t>(kMaxPartialFloats / dw_size, kMaxFilterChunks), 1, s.N));
  const int images_per_chunk = (s.N + chunks - 1) / chunks;
  thread_local std::vector<float> partial_storage;
  if (partial_storage.size() < size_t(chunks * dw_size)) partial_storage.resize(size_t(chunks * dw_size));
  float* partials = partial_storage.data();  // (chunks, K, Cg, R, S)

  const int64_t items = int64_t(chunks) * s.groups;
#pragma omp parallel for schedule(static)
  for (int64_t item = 0; item < items; ++item) {
    const int g = int(item % s.groups), chunk = int(item / s.groups);
    MatrixView dw_g(partials + chunk * dw_size + int64_t(g) * geo.Kg * geo.crs, geo.Kg, geo.crs,
                    Eigen::OuterStride<>(geo.crs));  // (Kg, CRS)
    dw_g.setZero();
    const int n_end = std::min(s.N, (chunk + 1) * images_per_chunk);
    for (int n = chunk * images_per_chunk; n < n_end; ++n) {
      const float* x_g = x + s.x.plane(n, g * geo.Cg);    // (Cg, H, W) planes
      const float* dy_g = dy + s.y.plane(n, g * geo.Kg);  // (Kg, P, Q) planes
      for (int64_t block = 0; block < geo.blocks; ++block) {
        const int64_t first = block * geo.block_columns, count = std::min(geo.block_columns, geo.positions - first);
        ConstMatrixView dy_block(dy_g + first, geo.Kg, count, Eigen::OuterStride<>(s.y.channel_stride));
        if (geo.direct) {
          ConstMatrixView x_block(x_g + first, geo.Cg, count, Eigen::OuterStride<>(s.x.channel_stride));
          dw_g.noalias() += dy_block * x_block.transpose();
        } else {
          float* col = thread_scratch(size_t(geo.crs * count));  // (CRS, count)
          im2col(s, geo, x_g, first, count, col);
          dw_g.noalias() += dy_block * ConstMatrixView(col, geo.crs, count, Eigen::OuterStride<>(count)).transpose();
        }
      }
    }
  }

#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < dw_size; ++i) {
    float sum = partials[i];
    for (int chunk = 1; chunk < chunks; ++chunk) sum += partials[chunk * dw_size + i];
    dw[i] = accumulate ? dw[i] + sum : sum;
  }
}

}  // namespace cpu
}  // namespace kernels
