// Fast CPU fully connected layer: Eigen GEMM on views of the caller's buffers (no copies), OpenMP over fixed
// blocks of output columns. Shape letters: N batch, I inputs, O outputs; rows of x / dx are x_row_stride apart,
// rows of y / dy y_row_stride apart.
//   forward          Y (N, O)  = X (N, I) * W^T (I, O) + b
//   backward data    dX (N, I) = dY (N, O) * W (O, I)
//   backward weight  dW (O, I) = dY^T (O, N) * X (N, I)
// Each block owns its output columns and sums the whole reduction itself, so there are no races, and the blocks
// depend on the shape only: the same bits for any thread count.
#include <Eigen/Core>
#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/linear.h"

namespace kernels {
namespace cpu {

namespace {

using RowMajorMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixView = Eigen::Map<RowMajorMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;
using ConstMatrixView = Eigen::Map<const RowMajorMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;
using ConstRowVectorView = Eigen::Map<const Eigen::RowVectorXf>;

void check_linear_shape(const LinearShape& s) {
  if (s.N < 1 || s.I < 1 || s.O < 1 || s.x_row_stride < s.I || s.y_row_stride < s.O)
    throw std::invalid_argument("linear shape: N " + std::to_string(s.N) + ", I " + std::to_string(s.I) + ", O " +
                                std::to_string(s.O) + ", x_row_stride " + std::to_string(s.x_row_stride) +
                                ", y_row_stride " + std::to_string(s.y_row_stride) +
                                " (sizes must be positive and row strides >= I and O)");
}

// Columns per work block: about 16 blocks, at least 64 columns wide, a multiple of 16.
int64_t block_size(int64_t columns) {
  const int64_t sixteenth = (columns + 15) / 16;
  return std::max<int64_t>(64, (sixteenth + 15) / 16 * 16);
}

}  // namespace

void linear_forward(const LinearShape& s, const float* x, const float* w, const float* b, float* y) {
  check_linear_shape(s);
  const int64_t block = block_size(s.O), blocks = (s.O + block - 1) / block;
  ConstMatrixView x_all(x, s.N, s.I, Eigen::OuterStride<>(s.x_row_stride));  // (N, I)
#pragma omp parallel for schedule(static)
  for (int64_t index = 0; index < blocks; ++index) {
    const int64_t first = index * block, count = std::min<int64_t>(block, s.O - first);
    ConstMatrixView w_block(w + first * s.I, count, s.I, Eigen::OuterStride<>(s.I));  // (count, I)
    MatrixView y_block(y + first, s.N, count, Eigen::OuterStride<>(s.y_row_stride));  // (N, count)
    y_block.noalias() = x_all * w_block.transpose();
    if (b) y_block.rowwise() += ConstRowVectorView(b + first, count);  // epilogue while the block is in cache
  }
}

void linear_backward_data(const LinearShape& s, const float* dy, const float* w, float* dx, bool accumulate) {
  check_linear_shape(s);
  const int64_t block = block_size(s.I), blocks = (s.I + block - 1) / block;
  ConstMatrixView dy_all(dy, s.N, s.O, Eigen::OuterStride<>(s.y_row_stride));  // (N, O)
#pragma omp parallel for schedule(static)
  for (int64_t index = 0; index < blocks; ++index) {
    const int64_t first = index * block, count = std::min<int64_t>(block, s.I - first);
    ConstMatrixView w_block(w + first, s.O, count, Eigen::OuterStride<>(s.I));          // (O, count)
    MatrixView dx_block(dx + first, s.N, count, Eigen::OuterStride<>(s.x_row_stride));  // (N, count)
    if (accumulate) {
      dx_block.noalias() += dy_all * w_block;
    } else {
      dx_block.noalias() = dy_all * w_block;
    }
  }
}

void linear_backward_weight(const LinearShape& s, const float* x, const float* dy, float* dw, bool accumulate) {
  check_linear_shape(s);
  const int64_t block = block_size(s.O), blocks = (s.O + block - 1) / block;
  ConstMatrixView x_all(x, s.N, s.I, Eigen::OuterStride<>(s.x_row_stride));  // (N, I)
#pragma omp parallel for schedule(static)
  for (int64_t index = 0; index < blocks; ++index) {
    const int64_t first = index * block, count = std::min<int64_t>(block, s.O - first);
    ConstMatrixView dy_block(dy + first, s.N, count, Eigen::OuterStride<>(s.y_row_stride));  // (N, count)
    MatrixView dw_block(dw + first * s.I, count, s.I, Eigen::OuterStride<>(s.I));            // (count, I)
    if (accumulate) {
      dw_block.noalias() += dy_block.transpose() * x_all;
    } else {
      dw_block.noalias() = dy_block.transpose() * x_all;
    }
  }
}

}  // namespace cpu
}  // namespace kernels
