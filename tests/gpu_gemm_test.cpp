// GPU GEMM kernels (kernels/cuda/gemm.cu) against the CPU reference, every version (naive, tiled,
// register-blocked, best) on awkward shapes: sizes that are not multiples of any tile, every transpose, padded and
// odd leading dimensions (which force the one-float-at-a-time loads), a misaligned pointer, alpha / beta, and the
// linear layer's three passes with strided rows, bias null or not, accumulate on and off.
//
// Tolerance (all GEMM outputs): |gpu - ref| <= atol + rtol * |ref| with atol = 1e-5 * sqrt(K) + 1e-6 and
// rtol = 1e-5, K the length of the sum. The reference sums in double; a float sum of K products of values in
// [-1, 1] is typically off by ~1e-7 * sqrt(K), so this leaves a 100x margin and still catches a missing term
// (>= ~1e-3).
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/gpu.h"
#include "kernels/linear.h"
#include "tests/support/check.h"
#include "tests/support/gpu.h"

using kernels::GemmShape;
using kernels::GpuKernelVersion;
using kernels::LinearShape;
using testing_support::DeviceBuffer;
using testing_support::expect_close;
using testing_support::GpuBackend;
using testing_support::random_vector;

namespace {

using Buffer = std::vector<float>;

// C = alpha * op(A) * op(B) + beta * C on the host, in double; only the M x N entries of C change.
void reference_sgemm(const GemmShape& s, const Buffer& a, const Buffer& b, Buffer& c) {
  for (int m = 0; m < s.M; ++m) {
    for (int n = 0; n < s.N; ++n) {
      double sum = 0;
      for (int k = 0; k < s.K; ++k) {
        const double av = s.trans_a ? a[size_t(k) * s.lda + m] : a[size_t(m) * s.lda + k];
        const double bv = s.trans_b ? b[size_t(n) * s.ldb + k] : b[size_t(k) * s.ldb + n];
        sum += av * bv;
      }
      float& out = c[size_t(m) * s.ldc + n];
      out = float(s.alpha * sum + (s.beta != 0.f ? double(s.beta) * out : 0.0));
    }
  }
}

// Runs sgemm with every version on operands placed `a_shift` floats into their buffers (1 misaligns them) and
// compares the whole C buffer (entries outside M x N must keep their values) with the reference.
void check_sgemm(const GpuBackend& gpu, const GemmShape& s, int a_shift, const std::string& what) {
  const size_t a_rows = s.trans_a ? s.K : s.M, b_rows = s.trans_b ? s.N : s.K;
  const Buffer a = random_vector(a_shift + a_rows * s.lda, 11), b = random_vector(b_rows * s.ldb, 12);
  const Buffer c0 = random_vector(size_t(s.M) * s.ldc, 13);
  Buffer expected = c0;
  reference_sgemm(s, Buffer(a.begin() + a_shift, a.end()), b, expected);
  for (GpuKernelVersion v : testing_support::kGpuKernelVersions) {
    DeviceBuffer a_dev(gpu, a), b_dev(gpu, b), c_dev(gpu, c0);
    GPU_CALL(gpu, sgemm, s, a_dev.get() + a_shift, b_dev.get(), c_dev.get(), gpu.stream(), v);
    expect_close(c_dev.download(), expected, testing_support::gemm_atol(s.K), testing_support::kGemmRtol,
                 what + " " + testing_support::version_name(v));
  }
}

GemmShape shape(int M, int N, int K, bool ta, bool tb, int pad_a, int pad_b, int pad_c, float alpha, float beta) {
  GemmShape s{M, N, K, ta, tb, (ta ? M : K) + pad_a, (tb ? K : N) + pad_b, N + pad_c, alpha, beta};
  return s;
}

}  // namespace

GPU_TEST("gemm every transpose, sizes off the tiles") {
  // 70 rows: 128-row tiles with a ragged edge; 131 columns: two 128-column tiles, the second nearly empty;
  // K = 19: two 8-deep slices and a partial third; 16-byte loads on (ld multiples of 4, aligned pointers).
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      const GemmShape s = shape(70, 131, 19, ta, tb, (ta ? 2 : 1), (tb ? 1 : 1), 3, 1.f, 0.f);
      // Round lda / ldb up to a multiple of 4 so the vector path runs.
      GemmShape aligned = s;
      aligned.lda = (s.lda + 3) / 4 * 4, aligned.ldb = (s.ldb + 3) / 4 * 4;
      check_sgemm(gpu, aligned, 0, "sgemm aligned ta=" + std::to_string(ta) + " tb=" + std::to_string(tb));
      // Odd leading dimensions: rows start off 16 bytes, every load goes one float at a time.
      GemmShape odd = s;
      odd.lda |= 1, odd.ldb |= 1;
      check_sgemm(gpu, odd, 0, "sgemm odd ld ta=" + std::to_string(ta) + " tb=" + std::to_string(tb));
    }
  }
}

GPU_TEST("gemm alpha beta, short M (64-row tiles), misaligned A") {
  check_sgemm(gpu, shape(40, 37, 33, false, false, 3, 3, 2, 0.5f, 2.f), 0, "sgemm alpha 0.5 beta 2, M 40");
  check_sgemm(gpu, shape(40, 37, 33, false, false, 3, 3, 2, 1.f, 1.f), 1, "sgemm A one float off 16 bytes");
  check_sgemm(gpu, shape(1, 1, 1, false, false, 0, 0, 0, 1.f, 0.f), 0, "sgemm 1x1x1");
  check_sgemm(gpu, shape(5, 3, 2, true, true, 0, 0, 0, -1.f, 0.f), 0, "sgemm K 2 transposed");
}

GPU_TEST("gemm bad shapes throw naming the kernel") {
  GemmShape s = kernels::gemm_shape(4, 4, 4);
  s.ldc = 3;
  DeviceBuffer buffer(gpu, 64);
  CHECK_THROWS_WITH_AS(
      GPU_CALL(gpu, sgemm, s, buffer.get(), buffer.get(), buffer.get(), gpu.stream(), GpuKernelVersion::best),
      doctest::Contains("sgemm"), std::invalid_argument);
}

namespace {

struct LinearCase {
  std::string name;
  LinearShape s;
};

std::vector<LinearCase> linear_cases() {
  return {{"dense batch 1", kernels::linear_shape(1, 27, 10)},
          {"strided rows", LinearShape{5, 33, 70, 40, 75}},
          {"aligned", kernels::linear_shape(6, 64, 36)}};
}

}  // namespace

GPU_TEST("linear forward, backward data, backward weight") {
  for (const LinearCase& lc : linear_cases()) {
    const LinearShape& s = lc.s;
    const size_t x_size = size_t(s.N) * s.x_row_stride, y_size = size_t(s.N) * s.y_row_stride;
    const size_t w_size = size_t(s.O) * s.I;
    const Buffer x = random_vector(x_size, 21), w = random_vector(w_size, 22), b = random_vector(s.O, 23);
    const Buffer dy = random_vector(y_size, 24), y0 = random_vector(y_size, 25);
    const Buffer dx0 = random_vector(x_size, 26), dw0 = random_vector(w_size, 27);
    for (GpuKernelVersion v : testing_support::kGpuKernelVersions) {
      const std::string tag = lc.name + " " + testing_support::version_name(v);
      DeviceBuffer x_dev(gpu, x), w_dev(gpu, w), b_dev(gpu, b), dy_dev(gpu, dy);
      for (bool with_bias : {false, true}) {
        Buffer expected = y0;
        kernels::ref::linear_forward(s, x.data(), w.data(), with_bias ? b.data() : nullptr, expected.data());
        DeviceBuffer y_dev(gpu, y0);
        GPU_CALL(gpu, linear_forward, s, x_dev.get(), w_dev.get(), with_bias ? b_dev.get() : nullptr, y_dev.get(),
                 gpu.stream(), v);
        expect_close(y_dev.download(), expected, testing_support::gemm_atol(s.I), testing_support::kGemmRtol,
                     "linear_forward " + tag + (with_bias ? " bias" : " no bias"));
      }
      for (bool accumulate : {false, true}) {
        const std::string acc = accumulate ? " accumulate" : " overwrite";
        Buffer dx_expected = dx0, dw_expected = dw0;
        kernels::ref::linear_backward_data(s, dy.data(), w.data(), dx_expected.data(), accumulate);
        kernels::ref::linear_backward_weight(s, x.data(), dy.data(), dw_expected.data(), accumulate);
        DeviceBuffer dx_dev(gpu, dx0), dw_dev(gpu, dw0);
        GPU_CALL(gpu, linear_backward_data, s, dy_dev.get(), w_dev.get(), dx_dev.get(), accumulate, gpu.stream(), v);
        GPU_CALL(gpu, linear_backward_weight, s, x_dev.get(), dy_dev.get(), dw_dev.get(), accumulate, gpu.stream(), v);
        expect_close(dx_dev.download(), dx_expected, testing_support::gemm_atol(s.O), testing_support::kGemmRtol,
                     "linear_backward_data " + tag + acc);
        expect_close(dw_dev.download(), dw_expected, testing_support::gemm_atol(s.N), testing_support::kGemmRtol,
                     "linear_backward_weight " + tag + acc);
      }
    }
  }
}
