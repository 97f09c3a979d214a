// SGD reference against sequences computed by hand and in closed form.
//
// The GPU's fused SGD update against kernels::ref::sgd_update: the float4 body and its scalar tail (counts that are
// not multiples of 4), a misaligned start (the scalar kernel), zero momentum and decay, a count of zero; on simt
// (every schedule) and cuda.
// Tolerance: 1e-7 + 1e-6 |ref| for w and history (the same three operations; a GPU may fuse them into FMAs).
#include "kernels/sgd.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "kernels/gpu.h"
#include "tests/support/check.h"
#include "tests/support/gpu.h"

TEST_CASE("momentum with a constant gradient follows the closed form") {
  // g constant, decay 0, h_0 = 0:  h_t = a g (1 - m^t) / (1 - m)
  //   w_t = w_0 - sum_{k=1..t} h_k = w_0 - a g / (1 - m) * (t - m (1 - m^t) / (1 - m))
  // Large enough (100003 entries) to take the parallel path; each entry has its own w_0 and g.
  const int64_t count = 100003;
  const double a = 0.01, m = 0.9;
  const std::vector<float> w0 = testing_support::random_vector(count, 1), g = testing_support::random_vector(count, 2);
  std::vector<float> w = w0, history(count, 0.f);
  const kernels::SgdStep step{count, float(a), float(m), 0.f};
  for (int t = 1; t <= 5; ++t) {
    CAPTURE(t);
    kernels::ref::sgd_update(step, w.data(), g.data(), history.data());
    std::vector<float> h_expected(count), w_expected(count);
    const double mt = std::pow(m, t);
    for (int64_t i = 0; i < count; ++i) {
      h_expected[i] = float(a * g[i] * (1 - mt) / (1 - m));
      w_expected[i] = float(w0[i] - a * g[i] / (1 - m) * (t - m * (1 - mt) / (1 - m)));
    }
    testing_support::expect_close(history, h_expected, 1e-7f, 1e-5f, "history");
    testing_support::expect_close(w, w_expected, 1e-6f, 1e-5f, "weights");
  }
}

TEST_CASE("weight decay, by hand") {
  // w 1, g 0.5, decay 0.1, lr 0.1, momentum 0.9, history 0.2:
  //   step 1: g' = 0.5 + 0.1 * 1      = 0.6      h = 0.9 * 0.2      + 0.1 * 0.6      = 0.24      w = 0.76
  //   step 2: g' = 0.5 + 0.1 * 0.76   = 0.576    h = 0.9 * 0.24     + 0.1 * 0.576    = 0.2736    w = 0.4864
  //   step 3: g' = 0.5 + 0.1 * 0.4864 = 0.54864  h = 0.9 * 0.2736   + 0.1 * 0.54864  = 0.301104  w = 0.185296
  // A second entry with no momentum and no history: w 2, g -1: g' = -0.8, h = -0.08, w = 2.08, and so on.
  std::vector<float> w = {1.f, 2.f}, g = {0.5f, -1.f}, history = {0.2f, 0.f};
  kernels::SgdStep step{1, 0.1f, 0.9f, 0.1f};
  const float expected_h[3] = {0.24f, 0.2736f, 0.301104f}, expected_w[3] = {0.76f, 0.4864f, 0.185296f};
  for (int t = 0; t < 3; ++t) {
    CAPTURE(t);
    kernels::ref::sgd_update(step, w.data(), g.data(), history.data());
    CHECK(history[0] == doctest::Approx(expected_h[t]).epsilon(1e-6));
    CHECK(w[0] == doctest::Approx(expected_w[t]).epsilon(1e-6));
    CHECK(w[1] == 2.f);  // count 1: the second entry is not touched
  }

  step = {2, 0.1f, 0.f, 0.1f};
  history = {0.f, 0.f};
  w = {1.f, 2.f};
  kernels::ref::sgd_update(step, w.data(), g.data(), history.data());
  // entry 0: g' = 0.6, h = 0.06, w = 0.94; entry 1: g' = -1 + 0.2 = -0.8, h = -0.08, w = 2.08
  testing_support::expect_close(history, {0.06f, -0.08f}, 1e-7f, 1e-6f, "history without momentum");
  testing_support::expect_close(w, {0.94f, 2.08f}, 1e-7f, 1e-6f, "weights without momentum");
}

TEST_CASE("zero learning rate decays the history only") {
  std::vector<float> w = {3.f}, g = {1.f}, history = {0.5f};
  kernels::ref::sgd_update({1, 0.f, 0.5f, 0.f}, w.data(), g.data(), history.data());
  CHECK(history[0] == 0.25f);
  CHECK(w[0] == 2.75f);
}

// ---- GPU kernels ----
using kernels::SgdStep;
using testing_support::DeviceBuffer;
using testing_support::expect_close;

namespace {

// Runs `steps` updates on device and host from the same start, `offset` floats into the buffers (misaligns the
// arrays for offset % 4 != 0), and compares whole buffers.
void check_update(const testing_support::GpuBackend& gpu, SgdStep s, int offset, int steps) {
  const size_t size = size_t(s.count) + offset + 3;
  std::vector<float> w = testing_support::random_vector(size, 1), g = testing_support::random_vector(size, 2);
  std::vector<float> h = testing_support::random_vector(size, 3, -0.1f, 0.1f);
  DeviceBuffer w_dev(gpu, w), g_dev(gpu, g), h_dev(gpu, h);
  for (int i = 0; i < steps; ++i) {
    GPU_CALL(gpu, sgd_update, s, w_dev.get() + offset, g_dev.get() + offset, h_dev.get() + offset, gpu.stream());
    kernels::ref::sgd_update(s, w.data() + offset, g.data() + offset, h.data() + offset);
  }
  expect_close(w_dev.download(), w, 1e-7f, 1e-6f, "sgd: weights");
  expect_close(h_dev.download(), h, 1e-7f, 1e-6f, "sgd: history");
  expect_close(g_dev.download(), g, 0, 0, "sgd: gradient untouched");
}

}  // namespace

GPU_TEST("sgd update with momentum and decay") {
  for (int64_t count : {int64_t(1), int64_t(7), int64_t(1000), int64_t(1027)}) {
    for (int offset : {0, 1}) {
      CAPTURE(count);
      CAPTURE(offset);
      check_update(gpu, SgdStep{count, 0.01f, 0.9f, 5e-4f}, offset, 3);
    }
  }
}

GPU_TEST("sgd update without momentum or decay is w -= lr * g") {
  check_update(gpu, SgdStep{513, 0.1f, 0.f, 0.f}, 0, 1);
}

GPU_TEST("sgd update of zero entries does nothing; a negative count is an error") {
  check_update(gpu, SgdStep{0, 0.1f, 0.9f, 0.f}, 0, 1);
  DeviceBuffer buffer(gpu, 4);
  CHECK_THROWS_WITH_AS(
      GPU_CALL(gpu, sgd_update, SgdStep{-1, 0.1f, 0.f, 0.f}, buffer.get(), buffer.get(), buffer.get(), gpu.stream()),
      doctest::Contains("sgd_update"), std::invalid_argument);
}
