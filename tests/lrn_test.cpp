// LRN reference: forward on hand values, backward against the explicit Jacobian, gradient checks.
//
// GPU local response normalisation against kernels::ref: windows clipped at both channel ends, fewer channels than
// the window, an even window, channel slices, accumulate, on simt (every schedule) and cuda. alpha is large so the
// cross-channel term of the gradient matters. Whole buffers are compared: entries outside a slice must survive.
// Tolerances: forward 1e-6 + 1e-5 |ref|, backward 1e-5 + 1e-5 |ref| (float sums and powf against the reference's
// double).
#include "kernels/lrn.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "kernels/gpu.h"
#include "tests/support/check.h"
#include "tests/support/gpu.h"
#include "tests/support/placed_tensor.h"

using kernels::LrnShape;
using testing_support::PlacedTensor;

namespace {

LrnShape lrn(int N, int C, int H, int W, int size, float alpha, float beta, float k) {
  LrnShape s;
  s.N = N, s.C = C, s.H = H, s.W = W;
  s.size = size, s.alpha = alpha, s.beta = beta, s.k = k;
  s.x = s.y = kernels::Placement::dense(C, H, W);
  return s;
}

struct Layout {
  int x_total, x_offset, y_total, y_offset;
};

// dx from the explicit Jacobian, written independently of the kernel: at one pixel, with
// window(j) = j - (size-1)/2 .. j + size/2 and s_j = k + alpha/size * sum_{i in window(j)} x_i^2,
//   d y_j / d x_i = [i == j] s_j^-beta - 2 alpha beta / size * x_j * x_i * s_j^(-beta-1) * [i in window(j)]
//   dx_i = sum_j dy_j * d y_j / d x_i
// Inputs and output dense (N, C, H, W).
std::vector<float> jacobian_dx(const LrnShape& s, const std::vector<float>& x, const std::vector<float>& dy) {
  std::vector<float> dx(x.size());
  const int plane = s.H * s.W;
  for (int n = 0; n < s.N; ++n) {
    for (int pixel = 0; pixel < plane; ++pixel) {
      auto at = [&](int c) { return (size_t(n) * s.C + c) * plane + pixel; };
      auto in_window = [&](int i, int j) { return i >= j - (s.size - 1) / 2 && i <= j + s.size / 2; };
      std::vector<double> scale(s.C);
      for (int j = 0; j < s.C; ++j) {
        double sum = 0;
        for (int i = 0; i < s.C; ++i)
          if (in_window(i, j)) sum += double(x[at(i)]) * x[at(i)];
        scale[j] = s.k + double(s.alpha) / s.size * sum;
      }
      for (int i = 0; i < s.C; ++i) {
        double grad = 0;
        for (int j = 0; j < s.C; ++j) {
          double jacobian = i == j ? std::pow(scale[j], -double(s.beta)) : 0.0;
          if (in_window(i, j))
            jacobian -= 2.0 * s.alpha * s.beta / s.size * x[at(j)] * x[at(i)] * std::pow(scale[j], -s.beta - 1.0);
          grad += dy[at(j)] * jacobian;
        }
        dx[at(i)] = float(grad);
      }
    }
  }
  return dx;
}

// Runs forward and backward on placed buffers; checks the backward against the Jacobian and by central differences.
void check_lrn(LrnShape s, Layout layout, bool accumulate) {
  PlacedTensor x(s.N, s.C, s.H, s.W, layout.x_total, layout.x_offset, 1);
  PlacedTensor dx(s.N, s.C, s.H, s.W, layout.x_total, layout.x_offset, 2);
  PlacedTensor y(s.N, s.C, s.H, s.W, layout.y_total, layout.y_offset, 3);
  PlacedTensor dy(s.N, s.C, s.H, s.W, layout.y_total, layout.y_offset, 4);
  s.x = x.place();
  s.y = y.place();
  std::vector<float> x_values = testing_support::random_vector(x.size(), 5, -2.f, 2.f);
  const std::vector<float> r = testing_support::random_vector(y.size(), 6);
  x.set_logical(x_values);
  dy.set_logical(r);

  const std::vector<float> y_before = y.buffer();
  kernels::ref::lrn_forward(s, x.data(), y.data());
  y.expect_outside_unchanged(y_before, "lrn forward");
  const std::vector<float> dx_before = dx.buffer(), dx_old = dx.logical();
  kernels::ref::lrn_backward(s, x.data(), y.data(), dy.data(), dx.data(), accumulate);
  dx.expect_outside_unchanged(dx_before, "lrn backward");
  const std::vector<float> analytic = accumulate ? testing_support::difference(dx.logical(), dx_old) : dx.logical();

  testing_support::expect_close(analytic, jacobian_dx(s, x_values, r), 1e-5f, 1e-5f, "lrn dx vs Jacobian");

  auto loss = [&] {
    x.set_logical(x_values);
    kernels::ref::lrn_forward(s, x.data(), y.data());
    return testing_support::weighted_sum(y.logical(), r);
  };
  testing_support::GradCheckOptions opt;
  opt.eps = 1e-3f;
  opt.tolerance = 1e-2f;
  testing_support::check_gradient(x_values, analytic, loss, "lrn dx", opt);
}

}  // namespace

TEST_CASE("lrn forward on hand values") {
  // x = (1, 2, 3) across three channels at one pixel.
  const std::vector<float> x = {1.f, 2.f, 3.f};
  std::vector<float> y(3);
  SUBCASE("size 3: windows {0,1}, {0,1,2}, {1,2}") {
    // alpha 1, beta 1/2, k 1: scale = 1 + (5, 14, 13) / 3 = (8/3, 17/3, 16/3); y = x / sqrt(scale).
    kernels::ref::lrn_forward(lrn(1, 3, 1, 1, 3, 1.f, 0.5f, 1.f), x.data(), y.data());
    testing_support::expect_close(
        y, {float(std::sqrt(3.0 / 8)), float(2 * std::sqrt(3.0 / 17)), float(3 * std::sqrt(3.0) / 4)}, 1e-6f, 1e-6f,
        "size 3");
  }
  SUBCASE("size 2 looks one channel ahead: windows {0,1}, {1,2}, {2}") {
    // alpha 2, beta 1, k 1: scale = 1 + (5, 13, 9) = (6, 14, 10); y = x / scale.
    kernels::ref::lrn_forward(lrn(1, 3, 1, 1, 2, 2.f, 1.f, 1.f), x.data(), y.data());
    testing_support::expect_close(y, {1.f / 6, 2.f / 14, 3.f / 10}, 1e-7f, 1e-6f, "size 2");
  }
}

TEST_CASE("lrn backward matches the Jacobian and central differences") {
  SUBCASE("batch 1, 7 channels, 3x5, size 5, strong alpha") {
    check_lrn(lrn(1, 7, 3, 5, 5, 0.5f, 0.75f, 2.f), {7, 0, 7, 0}, false);
  }
  SUBCASE("even size 4, 6 channels, 9x9, accumulate") {
    check_lrn(lrn(2, 6, 9, 9, 4, 0.8f, 0.75f, 1.f), {6, 0, 6, 0}, true);
  }
  SUBCASE("fewer channels than the window") {
    check_lrn(lrn(2, 3, 5, 7, 5, 1.f, 0.6f, 1.5f), {3, 0, 3, 0}, false);
  }
  SUBCASE("channel slices of wider buffers") {
    check_lrn(lrn(2, 5, 7, 5, 5, 0.5f, 0.75f, 2.f), {9, 3, 7, 1}, false);
  }
  SUBCASE("channel slices, accumulate") {
    check_lrn(lrn(2, 5, 3, 3, 3, 0.5f, 0.75f, 1.f), {6, 1, 8, 3}, true);
  }
  SUBCASE("AlexNet settings: alpha 1e-4, beta 0.75, k 1") {
    check_lrn(lrn(2, 10, 3, 3, 5, 1e-4f, 0.75f, 1.f), {10, 0, 10, 0}, false);
  }
}

// ---- GPU kernels ----
using kernels::LrnShape;
using testing_support::DeviceBuffer;
using testing_support::expect_close;
using testing_support::PlacedTensor;

namespace {

struct Case {
  const char* name;
  int N, C, H, W, size;
  float alpha, beta, k;
  int x_total, x_offset, y_total, y_offset;  // channel slices (total == C and offset 0: dense)
};

const Case kCases[] = {
    {"batch 1, odd sizes, size 5", 1, 7, 3, 5, 5, 0.5f, 0.75f, 2.f, 7, 0, 7, 0},
    {"fewer channels than the window", 2, 3, 4, 4, 5, 0.3f, 0.75f, 1.f, 3, 0, 3, 0},
    {"size 3, channel slices", 2, 6, 3, 3, 3, 0.4f, 0.6f, 1.5f, 9, 2, 8, 1},
    {"even window (size 4), slices", 1, 5, 2, 3, 4, 0.5f, 0.75f, 1.f, 6, 1, 7, 2},
    {"AlexNet constants", 2, 9, 3, 3, 5, 1e-4f, 0.75f, 2.f, 9, 0, 9, 0},
};

}  // namespace

GPU_TEST("lrn forward and backward") {
  for (const Case& c : kCases) {
    for (bool accumulate : {false, true}) {
      CAPTURE(c.name);
      CAPTURE(accumulate);
      PlacedTensor x(c.N, c.C, c.H, c.W, c.x_total, c.x_offset, 1), dx(c.N, c.C, c.H, c.W, c.x_total, c.x_offset, 2);
      PlacedTensor y(c.N, c.C, c.H, c.W, c.y_total, c.y_offset, 3), dy(c.N, c.C, c.H, c.W, c.y_total, c.y_offset, 4);
      x.set_logical(testing_support::random_vector(x.size(), 5, -2.f, 2.f));
      const LrnShape s{c.N, c.C, c.H, c.W, c.size, c.alpha, c.beta, c.k, x.place(), y.place()};

      DeviceBuffer x_dev(gpu, x.buffer()), y_dev(gpu, y.buffer()), dy_dev(gpu, dy.buffer()), dx_dev(gpu, dx.buffer());
      GPU_CALL(gpu, lrn_forward, s, x_dev.get(), y_dev.get(), gpu.stream());
      kernels::ref::lrn_forward(s, x.data(), y.data());
      expect_close(y_dev.download(), y.buffer(), 1e-6f, 1e-5f, "lrn forward");

      // Backward from the reference's y, so only the backward kernel's error is measured.
      y_dev.upload(y.buffer());
      GPU_CALL(gpu, lrn_backward, s, x_dev.get(), y_dev.get(), dy_dev.get(), dx_dev.get(), accumulate, gpu.stream());
      kernels::ref::lrn_backward(s, x.data(), y.data(), dy.data(), dx.data(), accumulate);
      expect_close(dx_dev.download(), dx.buffer(), 1e-5f, 1e-5f, "lrn backward");
    }
  }
}

GPU_TEST("lrn launchers reject a bad shape, naming the kernel") {
  LrnShape s{2, 3, 4, 4, 0, 1e-4f, 0.75f, 1.f, kernels::Placement::dense(3, 4, 4), kernels::Placement::dense(3, 4, 4)};
  DeviceBuffer buffer(gpu, 96);
  CHECK_THROWS_WITH_AS(GPU_CALL(gpu, lrn_forward, s, buffer.get(), buffer.get(), gpu.stream()),
                       doctest::Contains("lrn_forward"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      GPU_CALL(gpu, lrn_backward, s, buffer.get(), buffer.get(), buffer.get(), buffer.get(), false, gpu.stream()),
      doctest::Contains("lrn_backward"), std::invalid_argument);
}
