#pragma once
// The ceiling of an im2col convolution: only the GEMMs it would call, on operands that are already laid out (no
// im2col, col2im, bias or zeroing), with Eigen compiled exactly as the kernels are. A kernel that reaches this rate
// spends nothing outside its GEMMs.
//
// A batch of images x groups row-major GEMMs C (m, n) = op(A) * op(B). Either A is shared by the images of a group
// (the weights: forward and backward-data) or C is (the weight gradient, summed over the images: backward-filter).
// OpenMP splits the work over (image, group) and, when there are fewer of those than threads, over column blocks
// of C, so every thread has work; each thread runs single-threaded Eigen (EIGEN_DONT_PARALLELIZE), as the kernels do.
#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <vector>

#include "bench/bench_support.h"

namespace bench {

struct GemmBatch {
  int images = 1, groups = 1;
  int64_t m = 0, n = 0, k = 0;
  bool a_transposed = false;          // A stored (k, m)
  bool b_transposed = false;          // B stored (n, k)
  bool c_summed_over_images = false;  // else A is per group and shared by the images

  double flops() const { return 2.0 * images * groups * double(m) * double(n) * double(k); }
};

class EigenGemmCeiling {
 public:
  explicit EigenGemmCeiling(const GemmBatch& batch) : batch_(batch) {
    const int64_t per_group = batch.groups, per_item = int64_t(batch.images) * batch.groups;
    a_ = random_vector((batch.c_summed_over_images ? per_item : per_group) * batch.m * batch.k, 11);
    b_ = random_vector(per_item * batch.k * batch.n, 12);
    c_.assign((batch.c_summed_over_images ? per_group : per_item) * batch.m * batch.n, 0.f);
  }

  void run() {
    const GemmBatch& g = batch_;
    const int threads = omp_get_max_threads();
    const int outputs = g.c_summed_over_images ? g.groups : g.images * g.groups;
    const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>((threads + outputs - 1) / outputs, g.n / 32));
    const int64_t block_n = (g.n + blocks - 1) / blocks;
#pragma omp parallel for schedule(static)
    for (int64_t task = 0; task < outputs * blocks; ++task) {
      const int output = int(task / blocks);
      const int64_t j0 = (task % blocks) * block_n, j1 = std::min(g.n, j0 + block_n);
      if (j0 >= j1) continue;
      if (g.c_summed_over_images) {
        for (int image = 0; image < g.images; ++image)
          gemm(image * g.groups + output, output, output, j0, j1, image > 0);
      } else {
        gemm(output, output % g.groups, output, j0, j1, false);
      }
    }
  }

 private:
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using View = Eigen::Map<RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>;
  using ConstView = Eigen::Map<const RowMajor, Eigen::Unaligned, Eigen::OuterStride<>>;

  // Columns [j0, j1) of C[c_index] (+)= op(A[a_index]) * op(B[item]).
  void gemm(int item, int a_index, int c_index, int64_t j0, int64_t j1, bool accumulate) {
    const GemmBatch& g = batch_;
    const int64_t cols = j1 - j0;
    const float* a = a_.data() + (g.c_summed_over_images ? item : a_index) * g.m * g.k;
    const float* b = b_.data() + item * g.k * g.n;
    float* c = c_.data() + c_index * g.m * g.n + j0;
    View cv(c, g.m, cols, Eigen::OuterStride<>(g.n));
    ConstView a_stored(a, g.a_transposed ? g.k : g.m, g.a_transposed ? g.m : g.k,
                       Eigen::OuterStride<>(g.a_transposed ? g.m : g.k));
    if (g.b_transposed) {
      ConstView b_rows(b + j0 * g.k, cols, g.k, Eigen::OuterStride<>(g.k));
      multiply(cv, a_stored, b_rows.transpose(), accumulate);
    } else {
      ConstView b_cols(b + j0, g.k, cols, Eigen::OuterStride<>(g.n));
      multiply(cv, a_stored, b_cols, accumulate);
    }
  }

  template <class B>
  void multiply(View& c, const ConstView& a_stored, const B& b, bool accumulate) {
    if (batch_.a_transposed) {
      if (accumulate)
        c.noalias() += a_stored.transpose() * b;
      else
        c.noalias() = a_stored.transpose() * b;
    } else {
      if (accumulate)
        c.noalias() += a_stored * b;
      else
        c.noalias() = a_stored * b;
    }
  }

  GemmBatch batch_;
  std::vector<float> a_, b_, c_;
};

}  // namespace bench
