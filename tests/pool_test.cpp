// Max and average pooling reference: Caffe output sizes, hand-computed values, gradient checks on awkward shapes.
//
// GPU max and average pooling against kernels::ref: Caffe CEIL windows, padding, stride 2, global pooling, ties,
// channel slices in and out, accumulate, on simt (every schedule) and cuda. Whole buffers are compared, so entries
// outside a slice must come back untouched.
// Tolerances: max pooling exact (the same comparisons pick the same element; the gradient adds the same dy values
// in the same order); average pooling 1e-6 + 1e-6 |ref| (the same float sums and divisions in the same order,
// exact on simt; a GPU may contract differently).
#include "kernels/pool.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/gpu.h"
#include "tests/support/check.h"
#include "tests/support/gpu.h"
#include "tests/support/placed_tensor.h"

using kernels::PoolMethod;
using kernels::PoolShape;
using testing_support::PlacedTensor;

namespace {

// Distinct values k * spacing in a seeded random order: with spacing > 2 * eps a gradient-check step never changes
// which element of a window is the maximum, so max pooling has no kink to skip.
std::vector<float> distinct_values(size_t n, float spacing, uint64_t seed) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = (float(i) - float(n) / 2) * spacing;
  testing_support::TestRng rng(seed);
  for (size_t i = n; i > 1; --i) std::swap(v[i - 1], v[rng.next() % i]);
  return v;
}

struct Layout {
  int x_total, x_offset, y_total, y_offset;  // channel slices; x_total == C and offset 0 for dense
};

void check_pool_gradient(PoolShape s, Layout layout, bool accumulate) {
  PlacedTensor x(s.N, s.C, s.H, s.W, layout.x_total, layout.x_offset, 1);
  PlacedTensor dx(s.N, s.C, s.H, s.W, layout.x_total, layout.x_offset, 2);
  PlacedTensor y(s.N, s.C, s.P, s.Q, layout.y_total, layout.y_offset, 3);
  PlacedTensor dy(s.N, s.C, s.P, s.Q, layout.y_total, layout.y_offset, 4);
  s.x = x.place();
  s.y = y.place();
  std::vector<float> x_values =
      s.method == PoolMethod::max ? distinct_values(x.size(), 0.05f, 5) : testing_support::random_vector(x.size(), 5);
  const std::vector<float> r = testing_support::random_vector(y.size(), 6);
  x.set_logical(x_values);
  dy.set_logical(r);

  const std::vector<float> y_before = y.buffer();
  kernels::ref::pool_forward(s, x.data(), y.data());
  y.expect_outside_unchanged(y_before, "pool forward");

  const std::vector<float> dx_before = dx.buffer(), dx_old = dx.logical();
  kernels::ref::pool_backward(s, x.data(), dy.data(), dx.data(), accumulate);
  dx.expect_outside_unchanged(dx_before, "pool backward");
  const std::vector<float> analytic = accumulate ? testing_support::difference(dx.logical(), dx_old) : dx.logical();

  auto loss = [&] {
    x.set_logical(x_values);
    kernels::ref::pool_forward(s, x.data(), y.data());
    return testing_support::weighted_sum(y.logical(), r);
  };
  testing_support::GradCheckOptions opt;
  opt.max_entries = 400;
  testing_support::check_gradient(x_values, analytic, loss, "pool dx", opt);
}

}  // namespace

TEST_CASE("output sizes follow Caffe's CEIL rounding") {
  auto size = [](int H, int kernel, int stride, int pad) {
    const PoolShape s = kernels::pool_shape(1, 1, H, H, PoolMethod::max, kernel, stride, pad);
    CHECK(s.P == s.Q);
    return s.P;
  };
  CHECK(size(55, 3, 2, 0) == 27);    // AlexNet pool1
  CHECK(size(27, 3, 2, 0) == 13);    // AlexNet pool2
  CHECK(size(13, 3, 2, 0) == 6);     // AlexNet pool5
  CHECK(size(112, 3, 2, 0) == 56);   // GoogLeNet pool1: (112 - 3) / 2 = 54.5 rounds up to 55, plus 1
  CHECK(size(56, 3, 2, 0) == 28);    // GoogLeNet pool2
  CHECK(size(14, 3, 2, 0) == 7);     // GoogLeNet pool4
  CHECK(size(28, 3, 1, 1) == 28);    // inception pool branch
  CHECK(size(224, 2, 2, 0) == 112);  // VGG
  CHECK(size(6, 3, 2, 0) == 3);      // ceil(3 / 2) + 1: the last window (rows 4..5) is partial
  CHECK(size(9, 2, 2, 0) == 5);      // last window holds row 8 only
  // pad 1, 3 -> ceil((3 + 2 - 2) / 2) + 1 = 3, but the third window would start at row 3 (in the right padding):
  // the correction drops it.
  CHECK(size(3, 2, 2, 1) == 2);
  CHECK(size(4, 3, 2, 1) == 3);  // no correction: the third window starts at row 3, inside the image

  const PoolShape rect = kernels::pool_shape(2, 3, 7, 5, PoolMethod::max, 3, 2, 0);
  CHECK(rect.P == 3);
  CHECK(rect.Q == 2);
  CHECK(rect.y.batch_stride == 3 * 3 * 2);

  const PoolShape global = kernels::pool_shape(2, 3, 7, 5, PoolMethod::avg, 3, 2, 1, true);
  CHECK(global.R == 7);
  CHECK(global.S == 5);
  CHECK(global.P == 1);
  CHECK(global.Q == 1);
  CHECK(global.pad_h == 0);
  CHECK(global.stride_w == 1);
}

TEST_CASE("invalid geometries throw std::invalid_argument naming the values") {
  CHECK_THROWS_AS(kernels::pool_shape(1, 1, 5, 5, PoolMethod::max, 3, 2, 3), std::invalid_argument);
  CHECK_THROWS_AS(kernels::pool_shape(1, 1, 2, 2, PoolMethod::max, 5, 1, 1), std::invalid_argument);
  CHECK_THROWS_AS(kernels::pool_shape(1, 1, 5, 5, PoolMethod::max, 3, 0, 0), std::invalid_argument);
  try {
    kernels::pool_shape(1, 1, 5, 5, PoolMethod::avg, 2, 2, 2);
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    CHECK_MESSAGE(msg.find("pad 2") != std::string::npos, msg);
    CHECK_MESSAGE(msg.find("window 2") != std::string::npos, msg);
  }
  PoolShape s = kernels::pool_shape(1, 1, 6, 6, PoolMethod::max, 2, 2, 0);
  s.P = 4;  // the fourth window would start at row 6, past the image
  CHECK_THROWS_AS(kernels::check_pool_shape(s), std::invalid_argument);
}

TEST_CASE("hand-computed 4x4 example, 3x3 windows, stride 2, pad 1") {
  // x = 1..16 row-major. Row (and column) windows: [-1, 2) -> rows 0-1, divisor 3; [1, 4) -> rows 1-3, divisor 3;
  // [3, 6) -> row 3, divisor min(6, 4 + 1) - 3 = 2 (the padded row counts, the row beyond it does not).
  std::vector<float> x(16);
  std::iota(x.begin(), x.end(), 1.f);
  std::vector<float> y(9, -1.f);

  const PoolShape avg = kernels::pool_shape(1, 1, 4, 4, PoolMethod::avg, 3, 2, 1);
  REQUIRE(avg.P == 3);
  kernels::ref::pool_forward(avg, x.data(), y.data());
  const std::vector<float> avg_expected = {14.f / 9, 30.f / 9, 12.f / 6,  //
                                           57.f / 9, 99.f / 9, 36.f / 6,  //
                                           27.f / 6, 45.f / 6, 16.f / 4};
  testing_support::expect_close(y, avg_expected, 1e-6f, 1e-6f, "avg pool");

  // Backward of avg: x[0][0] lies only in window (0, 0); x[3][3] in (1, 1), (1, 2), (2, 1), (2, 2).
  const std::vector<float> dy = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<float> dx(16);
  kernels::ref::pool_backward(avg, x.data(), dy.data(), dx.data(), false);
  CHECK(dx[0] == doctest::Approx(1.f / 9));
  CHECK(dx[15] == doctest::Approx(5.f / 9 + 6.f / 6 + 8.f / 6 + 9.f / 4));

  const PoolShape max = kernels::pool_shape(1, 1, 4, 4, PoolMethod::max, 3, 2, 1);
  kernels::ref::pool_forward(max, x.data(), y.data());
  testing_support::expect_close(y, {6, 8, 8, 14, 16, 16, 14, 16, 16}, 0, 0, "max pool");
  // Backward of max: x[3][3] = 16 is the maximum of windows (1, 1), (1, 2), (2, 1), (2, 2).
  kernels::ref::pool_backward(max, x.data(), dy.data(), dx.data(), false);
  std::vector<float> dx_expected(16, 0.f);
  dx_expected[5] = 1;       // 6 wins window (0, 0)
  dx_expected[7] = 2 + 3;   // 8 wins (0, 1) and (0, 2)
  dx_expected[13] = 4 + 7;  // 14 wins (1, 0) and (2, 0)
  dx_expected[15] = 5 + 6 + 8 + 9;
  testing_support::expect_close(dx, dx_expected, 0, 0, "max pool backward");
}

TEST_CASE("max pooling: the first maximum in row-major order takes the gradient; padding never wins") {
  // All-negative input with padding: a padded zero must not become the maximum.
  const std::vector<float> x = {-3, -1, -1, -2, -1, -5, -4, -1, -6};  // 3x3; -1 at (0,1), (0,2), (1,1), (2,1)
  const PoolShape s = kernels::pool_shape(1, 1, 3, 3, PoolMethod::max, 2, 2, 1);
  REQUIRE(s.P == 2);
  std::vector<float> y(4);
  kernels::ref::pool_forward(s, x.data(), y.data());
  testing_support::expect_close(y, {-3, -1, -2, -1}, 0, 0, "max with padding");
  // Window (1, 1) covers rows 1-2, columns 1-2: {-1, -5, -1, -6}; the first -1, at (1, 1), takes the gradient.
  // Window (0, 1) covers row 0, columns 1-2: {-1, -1}; (0, 1) takes it.
  const std::vector<float> dy = {10, 20, 30, 40};
  std::vector<float> dx(9, 0.f);
  kernels::ref::pool_backward(s, x.data(), dy.data(), dx.data(), false);
  testing_support::expect_close(dx, {10, 20, 0, 30, 40, 0, 0, 0, 0}, 0, 0, "first maximum");
}

TEST_CASE("max pool gradient check") {
  SUBCASE("batch 1, 7x5, 3x3/2") {
    check_pool_gradient(kernels::pool_shape(1, 3, 7, 5, PoolMethod::max, 3, 2, 0), {3, 0, 3, 0}, false);
  }
  SUBCASE("9x9, 2x2/2, partial last window, accumulate") {
    check_pool_gradient(kernels::pool_shape(2, 5, 9, 9, PoolMethod::max, 2, 2, 0), {5, 0, 5, 0}, true);
  }
  SUBCASE("9x9, 3x3/2 pad 1, channel slices") {
    check_pool_gradient(kernels::pool_shape(2, 3, 9, 9, PoolMethod::max, 3, 2, 1), {7, 2, 5, 1}, false);
  }
  SUBCASE("6x7, 3x3/2 pad 0 CEIL, channel slices, accumulate") {
    check_pool_gradient(kernels::pool_shape(2, 3, 6, 7, PoolMethod::max, 3, 2, 0), {4, 1, 6, 3}, true);
  }
  SUBCASE("3x3, 2x2/2 pad 1 (corrected size)") {
    check_pool_gradient(kernels::pool_shape(2, 2, 3, 3, PoolMethod::max, 2, 2, 1), {2, 0, 2, 0}, false);
  }
  SUBCASE("overlapping 3x3/1 pad 1") {
    check_pool_gradient(kernels::pool_shape(1, 3, 5, 6, PoolMethod::max, 3, 1, 1), {5, 1, 3, 0}, true);
  }
  SUBCASE("global 7x5") {
    check_pool_gradient(kernels::pool_shape(2, 3, 7, 5, PoolMethod::max, 0, 0, 0, true), {6, 2, 3, 0}, true);
  }
}

TEST_CASE("avg pool gradient check") {
  SUBCASE("batch 1, 7x5, 3x3/2") {
    check_pool_gradient(kernels::pool_shape(1, 3, 7, 5, PoolMethod::avg, 3, 2, 0), {3, 0, 3, 0}, false);
  }
  SUBCASE("9x9, 2x2/2, partial last window, accumulate") {
    check_pool_gradient(kernels::pool_shape(2, 5, 9, 9, PoolMethod::avg, 2, 2, 0), {5, 0, 5, 0}, true);
  }
  SUBCASE("7x5, 3x3/2 pad 1, channel slices") {
    check_pool_gradient(kernels::pool_shape(2, 3, 7, 5, PoolMethod::avg, 3, 2, 1), {7, 2, 5, 1}, false);
  }
  SUBCASE("4x4, 3x3/2 pad 1 (window beyond the padded image), channel slices, accumulate") {
    check_pool_gradient(kernels::pool_shape(2, 3, 4, 4, PoolMethod::avg, 3, 2, 1), {4, 1, 6, 3}, true);
  }
  SUBCASE("3x3, 2x2/2 pad 1 (corrected size)") {
    check_pool_gradient(kernels::pool_shape(2, 2, 3, 3, PoolMethod::avg, 2, 2, 1), {2, 0, 2, 0}, false);
  }
  SUBCASE("overlapping 3x3/1 pad 1") {
    check_pool_gradient(kernels::pool_shape(1, 3, 5, 6, PoolMethod::avg, 3, 1, 1), {5, 1, 3, 0}, true);
  }
  SUBCASE("global 7x5") {
    check_pool_gradient(kernels::pool_shape(2, 3, 7, 5, PoolMethod::avg, 0, 0, 0, true), {6, 2, 3, 0}, true);
  }
}

// ---- GPU kernels ----
using kernels::PoolMethod;
using kernels::PoolShape;
using testing_support::DeviceBuffer;
using testing_support::expect_close;
using testing_support::PlacedTensor;

namespace {

struct Case {
  const char* name;
  int N, C, H, W, kernel, stride, pad;
  bool global;
  int x_total, x_offset, y_total, y_offset;  // channel slices (total == C and offset 0: dense)
};

const Case kCases[] = {
    {"batch 1, 3/2 CEIL, odd sizes", 1, 3, 7, 9, 3, 2, 0, false, 3, 0, 3, 0},
    {"3/2 pad 1, channel slices", 2, 5, 6, 6, 3, 2, 1, false, 7, 2, 9, 4},
    {"2/2 CEIL: a last window of one row", 2, 3, 5, 5, 2, 2, 0, false, 3, 0, 4, 1},
    {"3/1 pad 1: every input in up to 9 windows", 1, 2, 8, 5, 3, 1, 1, false, 2, 0, 2, 0},
    {"2/3: inputs in no window", 1, 3, 8, 7, 2, 3, 0, false, 3, 0, 3, 0},
    {"global over 5x7, slices", 2, 4, 5, 7, 0, 0, 0, true, 6, 1, 5, 1},
};

// A seeded tensor of values in {-1, -0.5, 0, 0.5, 1}: most windows hold ties, which exercise the first-maximum
// rule.
std::vector<float> tied_values(size_t n, uint64_t seed) {
  std::vector<float> v = testing_support::random_vector(n, seed);
  for (float& e : v) e = std::round(e * 2.f) / 2.f;
  return v;
}

void check_case(const testing_support::GpuBackend& gpu, const Case& k, PoolMethod method, bool ties, bool accumulate) {
  PoolShape s = kernels::pool_shape(k.N, k.C, k.H, k.W, method, k.kernel, k.stride, k.pad, k.global);
  PlacedTensor x(s.N, s.C, s.H, s.W, k.x_total, k.x_offset, 1), dx(s.N, s.C, s.H, s.W, k.x_total, k.x_offset, 2);
  PlacedTensor y(s.N, s.C, s.P, s.Q, k.y_total, k.y_offset, 3), dy(s.N, s.C, s.P, s.Q, k.y_total, k.y_offset, 4);
  s.x = x.place();
  s.y = y.place();
  if (ties) x.set_logical(tied_values(x.size(), 5));
  const float tolerance = method == PoolMethod::max ? 0.f : 1e-6f;

  DeviceBuffer x_dev(gpu, x.buffer()), y_dev(gpu, y.buffer()), dy_dev(gpu, dy.buffer()), dx_dev(gpu, dx.buffer());
  GPU_CALL(gpu, pool_forward, s, x_dev.get(), y_dev.get(), gpu.stream());
  kernels::ref::pool_forward(s, x.data(), y.data());
  expect_close(y_dev.download(), y.buffer(), tolerance, tolerance, "pool forward");

  GPU_CALL(gpu, pool_backward, s, x_dev.get(), dy_dev.get(), dx_dev.get(), accumulate, gpu.stream());
  kernels::ref::pool_backward(s, x.data(), dy.data(), dx.data(), accumulate);
  expect_close(dx_dev.download(), dx.buffer(), tolerance, tolerance, "pool backward");
}

}  // namespace

GPU_TEST("max pool forward and backward") {
  for (const Case& k : kCases) {
    for (bool accumulate : {false, true}) {
      CAPTURE(k.name);
      CAPTURE(accumulate);
      check_case(gpu, k, PoolMethod::max, false, accumulate);
    }
  }
}

GPU_TEST("max pool with ties takes the first maximum, as the reference") {
  for (const Case& k : kCases) {
    CAPTURE(k.name);
    check_case(gpu, k, PoolMethod::max, true, false);
  }
}

GPU_TEST("average pool forward and backward") {
  for (const Case& k : kCases) {
    for (bool accumulate : {false, true}) {
      CAPTURE(k.name);
      CAPTURE(accumulate);
      check_case(gpu, k, PoolMethod::avg, false, accumulate);
    }
  }
}

GPU_TEST("pool launchers reject a bad shape, naming the kernel") {
  PoolShape s = kernels::pool_shape(1, 1, 5, 5, PoolMethod::max, 3, 2, 0);
  s.P = 4;  // the last window would start past the input
  DeviceBuffer buffer(gpu, 64);
  CHECK_THROWS_WITH_AS(GPU_CALL(gpu, pool_forward, s, buffer.get(), buffer.get(), gpu.stream()),
                       doctest::Contains("pool_forward"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(GPU_CALL(gpu, pool_backward, s, buffer.get(), buffer.get(), buffer.get(), false, gpu.stream()),
                       doctest::Contains("pool_backward"), std::invalid_argument);
}
