// Inverted dropout reference: mask statistics, determinism, placement independence, backward consistency.
//
// GPU dropout against kernels::ref: the mask must be the CPU's bit for bit (the same Philox draws at the same
// logical indices), on the float4 path, the scalar path, channel slices and planes that are not packed; on simt
// (every schedule) and cuda. Whole buffers are compared: entries outside a slice must survive.
// Tolerances: exact (one multiply by the same keep scale), except with accumulate: 1e-7 + 1e-6 |ref|, since a GPU
// may fuse the multiply and the add.
#include "kernels/dropout.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/philox.h"
#include "engine/autograd.h"
#include "engine/executor.h"
#include "engine/ops/elementwise.h"
#include "kernels/gpu.h"
#include "nets/layers.h"
#include "tests/support/check.h"
#include "tests/support/gpu.h"
#include "tests/support/placed_tensor.h"

using kernels::DropoutShape;
using testing_support::PlacedTensor;

namespace {

DropoutShape dropout(int N, int C, int H, int W, float p, uint64_t seed, uint64_t step) {
  DropoutShape s;
  s.N = N, s.C = C, s.H = H, s.W = W;
  s.p = p, s.seed = seed, s.step = step;
  s.x = s.y = kernels::Placement::dense(C, H, W);
  return s;
}

// Dense forward on the given x (N, C, H, W).
std::vector<float> forward(const DropoutShape& s, const std::vector<float>& x) {
  std::vector<float> y(x.size(), std::numeric_limits<float>::quiet_NaN());
  kernels::ref::dropout_forward(s, x.data(), y.data());
  return y;
}

size_t count_nonzero(const std::vector<float>& v) {
  size_t n = 0;
  for (float e : v) n += e != 0.f;
  return n;
}

}  // namespace

TEST_CASE("drop probability outside [0, 1) throws std::invalid_argument") {
  std::vector<float> x(4, 1.f), y(4);
  for (float p : {1.f, -0.1f, 1.5f, std::numeric_limits<float>::quiet_NaN()}) {
    CAPTURE(p);
    const DropoutShape s = dropout(1, 1, 2, 2, p, 1, 0);
    CHECK_THROWS_AS(kernels::ref::dropout_forward(s, x.data(), y.data()), std::invalid_argument);
    CHECK_THROWS_AS(kernels::ref::dropout_backward(s, x.data(), y.data(), false), std::invalid_argument);
  }
}

TEST_CASE("p == 0 copies, forward and backward") {
  const int N = 2, C = 3, H = 5, W = 7;
  PlacedTensor x(N, C, H, W, 5, 1, 1), y(N, C, H, W, 6, 2, 2);
  DropoutShape s = dropout(N, C, H, W, 0.f, 9, 9);
  s.x = x.place(), s.y = y.place();
  kernels::ref::dropout_forward(s, x.data(), y.data());
  testing_support::expect_close(y.logical(), x.logical(), 0, 0, "p = 0 forward");
  // Backward with accumulate: dx = old + dy.
  const std::vector<float> old = x.logical(), dy = y.logical();
  kernels::ref::dropout_backward(s, y.data(), x.data(), true);
  std::vector<float> expected(old.size());
  for (size_t i = 0; i < old.size(); ++i) expected[i] = old[i] + dy[i];
  testing_support::expect_close(x.logical(), expected, 0, 0, "p = 0 backward");
}

TEST_CASE("kept fraction, kept values and the mean match 1 - p for a large tensor") {
  const int N = 4, C = 16, H = 64, W = 64;  // 262144 elements
  const std::vector<float> x = testing_support::random_vector(size_t(N) * C * H * W, 1, 0.5f, 1.5f);
  for (float p : {0.3f, 0.5f, 0.9f}) {
    CAPTURE(p);
    const std::vector<float> y = forward(dropout(N, C, H, W, p, 1234, 7), x);
    const double n = double(x.size());
    const double kept = double(count_nonzero(y)) / n;
    CHECK(std::fabs(kept - (1 - p)) < 5 * std::sqrt(p * (1 - p) / n));  // 5 standard deviations

    size_t wrong = 0;
    double sum_x = 0, sum_y = 0, sum_y_sq = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double scaled = double(x[i]) / (1.0 - p);
      if (y[i] != 0.f && std::fabs(y[i] - scaled) > 1e-6 * scaled) ++wrong;
      sum_x += x[i];
      sum_y += y[i];
      sum_y_sq += double(y[i]) * y[i];
    }
    CHECK_MESSAGE(wrong == 0, wrong << " kept values differ from x / (1 - p)");
    // Inverted dropout keeps the expectation: mean y ~ mean x within 5 standard errors of mean y.
    const double mean_y = sum_y / n, sd_mean = std::sqrt((sum_y_sq / n - mean_y * mean_y) / n);
    CHECK(std::fabs(mean_y - sum_x / n) < 5 * sd_mean);
  }
}

TEST_CASE("the mask is a function of (seed, step, logical index) only") {
  const int N = 2, C = 5, H = 9, W = 7;
  const std::vector<float> x = testing_support::random_vector(size_t(N) * C * H * W, 2, 0.5f, 1.5f);
  const float p = 0.5f;
  const std::vector<float> y = forward(dropout(N, C, H, W, p, 42, 3), x);

  SUBCASE("same seed and step: identical") {
    testing_support::expect_close(forward(dropout(N, C, H, W, p, 42, 3), x), y, 0, 0, "repeat");
  }
  SUBCASE("another step or seed: a different mask") {
    for (const DropoutShape& other : {dropout(N, C, H, W, p, 42, 4), dropout(N, C, H, W, p, 43, 3)}) {
      const std::vector<float> z = forward(other, x);
      size_t differ = 0;
      for (size_t i = 0; i < z.size(); ++i) differ += (z[i] == 0.f) != (y[i] == 0.f);
      // Independent masks differ in 2 p (1 - p) = 1/2 of 630 entries (sd 12.5).
      CHECK(differ > 250);
    }
  }
  SUBCASE("the documented draw: keep[i] = uniform_at(seed, step, i) >= p, i the logical index") {
    size_t wrong = 0;
    for (size_t i = 0; i < y.size(); ++i) wrong += (y[i] != 0.f) != (massmap::uniform_at(42, 3, i) >= p);
    CHECK(wrong == 0);
  }
  SUBCASE("channel slices of wider buffers draw the same mask") {
    PlacedTensor xp(N, C, H, W, 8, 3, 5), yp(N, C, H, W, 6, 1, 6);
    xp.set_logical(x);
    DropoutShape s = dropout(N, C, H, W, p, 42, 3);
    s.x = xp.place(), s.y = yp.place();
    const std::vector<float> y_before = yp.buffer();
    kernels::ref::dropout_forward(s, xp.data(), yp.data());
    yp.expect_outside_unchanged(y_before, "placed forward");
    testing_support::expect_close(yp.logical(), y, 0, 0, "placed forward");
  }
}

TEST_CASE("backward redraws the forward mask: dx = dy * y / x") {
  const int N = 3, C = 3, H = 7, W = 5;
  for (bool accumulate : {false, true}) {
    CAPTURE(accumulate);
    PlacedTensor x(N, C, H, W, 4, 1, 1), y(N, C, H, W, 5, 2, 2), dx(N, C, H, W, 4, 1, 3), dy(N, C, H, W, 5, 2, 4);
    DropoutShape s = dropout(N, C, H, W, 0.4f, 77, 5);
    s.x = x.place(), s.y = y.place();
    std::vector<float> x_values = testing_support::random_vector(x.size(), 5, 0.5f, 1.5f);  // no zeros
    x.set_logical(x_values);
    kernels::ref::dropout_forward(s, x.data(), y.data());

    const std::vector<float> dx_before = dx.buffer(), dx_old = dx.logical(), dyv = dy.logical(), yv = y.logical();
    kernels::ref::dropout_backward(s, dy.data(), dx.data(), accumulate);
    dx.expect_outside_unchanged(dx_before, "dropout backward");
    const std::vector<float> analytic = accumulate ? testing_support::difference(dx.logical(), dx_old) : dx.logical();
    std::vector<float> expected(x.size());
    for (size_t i = 0; i < expected.size(); ++i) expected[i] = dyv[i] * yv[i] / x_values[i];
    testing_support::expect_close(analytic, expected, 1e-6f, 1e-5f, "dx vs dy * y / x");

    // And by central differences, with the same (seed, step) so every evaluation draws the same mask.
    const std::vector<float> r = dyv;
    auto loss = [&] {
      x.set_logical(x_values);
      kernels::ref::dropout_forward(s, x.data(), y.data());
      return testing_support::weighted_sum(y.logical(), r);
    };
    testing_support::check_gradient(x_values, analytic, loss, "dropout dx");
  }
}

namespace {

// h = fc_a(x); loss(fc_b(drop(h)) + fc_c(h)): h's gradient sums dropout's backward and fc_c's backward, so the
// accumulate flag of dropout's backward step is exercised too. Without dropout, fc_b reads h directly.
massmap::Graph two_branch_graph(bool with_dropout) {
  using namespace massmap;
  Graph g;
  nets::LayerBuilder b(g);
  ValueId x = g.add_input("data", {4, 6});
  ValueId h = b.linear("fc_a", x, 8);
  ValueId kept = with_dropout ? b.dropout("drop", h, 0.5, 11) : h;
  ValueId sum = g.add(ops::add, "sum", {b.linear("fc_b", kept, 3), b.linear("fc_c", h, 3)});
  b.softmax_loss("loss", sum, g.add_input("label", {4}));
  return g;
}

std::map<std::string, std::vector<float>> parameter_gradients(bool with_dropout, bool training) {
  using namespace massmap;
  ExecutorOptions eo;
  eo.training = true;
  eo.input_grads = true;
  Executor ex(two_branch_graph(with_dropout), eo);
  ex.set_input("data", Tensor::from({4, 6}, testing_support::random_vector(24, 3)));
  ex.set_input("label", Tensor::from({4}, {0, 2, 1, 2}));
  uint64_t seed = 7;  // parameters in the same order in both graphs; value ids differ
  for (ValueId p : ex.graph().params()) {
    Tensor t = ex.tensor(p);
    t.copy_from(Tensor::from(t.shape(), testing_support::random_vector(size_t(t.numel()), ++seed)));
  }
  RunContext run;
  run.training = training;
  run.iteration = 2;
  ex.forward(run);
  ex.backward(run);
  std::map<std::string, std::vector<float>> out;
  for (const std::string name : {"data", "fc_a.weight", "fc_a.bias", "fc_b.weight", "fc_c.weight"})
    out[name] = ex.read(gradient_name(name)).to_vector();
  return out;
}

}  // namespace

TEST_CASE("executor: a backward pass with training off treats dropout as the identity") {
  auto plain = parameter_gradients(false, false);
  auto test_time = parameter_gradients(true, false);
  for (const auto& [name, g] : plain) testing_support::expect_close(test_time.at(name), g, 1e-6f, 1e-5f, name);
  // While training the mask drops half of h's entries: the gradients differ (the comparison above means something).
  auto training = parameter_gradients(true, true);
  CHECK(training.at("fc_b.weight") != plain.at("fc_b.weight"));
}

// ---- GPU kernels ----
using kernels::DropoutShape;
using kernels::Placement;
using testing_support::DeviceBuffer;
using testing_support::expect_close;
using testing_support::PlacedTensor;

namespace {

struct Case {
  const char* name;
  int N, C, H, W;
  int x_total, x_offset, y_total, y_offset;  // channel slices (total == C and offset 0: dense)
};

const Case kCases[] = {
    {"batch 1, odd sizes (scalar)", 1, 5, 3, 7, 5, 0, 5, 0},
    {"float4, dense", 2, 3, 4, 4, 3, 0, 3, 0},
    {"float4, channel slices", 2, 3, 4, 4, 5, 2, 7, 4},
    {"fc activations, channels % 4 == 1", 3, 9, 1, 1, 11, 1, 9, 0},
};

struct Draw {
  float p;
  uint64_t seed, step;
};

const Draw kDraws[] = {{0.5f, 1, 0}, {0.5f, 1, 7}, {0.3f, 0xDEADBEEFCAFEull, 123456789012ull}, {0.f, 3, 1}};

}  // namespace

GPU_TEST("dropout forward draws the CPU's mask") {
  for (const Case& k : kCases) {
    for (const Draw& d : kDraws) {
      CAPTURE(k.name);
      CAPTURE(d.p);
      CAPTURE(d.step);
      PlacedTensor x(k.N, k.C, k.H, k.W, k.x_total, k.x_offset, 1), y(k.N, k.C, k.H, k.W, k.y_total, k.y_offset, 2);
      const DropoutShape s{k.N, k.C, k.H, k.W, d.p, d.seed, d.step, x.place(), y.place()};
      DeviceBuffer x_dev(gpu, x.buffer()), y_dev(gpu, y.buffer());
      GPU_CALL(gpu, dropout_forward, s, x_dev.get(), y_dev.get(), gpu.stream());
      kernels::ref::dropout_forward(s, x.data(), y.data());
      expect_close(y_dev.download(), y.buffer(), 0, 0, "dropout forward");
    }
  }
}

GPU_TEST("dropout backward redraws the same mask, accumulate") {
  for (const Case& k : kCases) {
    for (bool accumulate : {false, true}) {
      CAPTURE(k.name);
      CAPTURE(accumulate);
      PlacedTensor dx(k.N, k.C, k.H, k.W, k.x_total, k.x_offset, 3), dy(k.N, k.C, k.H, k.W, k.y_total, k.y_offset, 4);
      const DropoutShape s{k.N, k.C, k.H, k.W, 0.4f, 99, 5, dx.place(), dy.place()};
      DeviceBuffer dy_dev(gpu, dy.buffer()), dx_dev(gpu, dx.buffer());
      GPU_CALL(gpu, dropout_backward, s, dy_dev.get(), dx_dev.get(), accumulate, gpu.stream());
      kernels::ref::dropout_backward(s, dy.data(), dx.data(), accumulate);
      const float tolerance = accumulate ? 1e-6f : 0.f;
      expect_close(dx_dev.download(), dx.buffer(), tolerance / 10, tolerance, "dropout backward");
    }
  }
}

GPU_TEST("dropout on planes that are not packed keeps logical indices") {
  // Planes 3 floats apart beyond H*W: one row per plane, yet element (n, c, h, w) draws index ((n*C + c)*H + h)*W + w.
  const int N = 2, C = 3, H = 4, W = 4;
  const int64_t channel_stride = H * W + 3;
  const Placement place{C * channel_stride, channel_stride, 0};
  const DropoutShape s{N, C, H, W, 0.5f, 42, 3, place, kernels::Placement::dense(C, H, W)};
  std::vector<float> x = testing_support::random_vector(size_t(N) * place.batch_stride, 6);
  std::vector<float> y = testing_support::random_vector(size_t(N) * C * H * W, 7);
  DeviceBuffer x_dev(gpu, x), y_dev(gpu, y);
  GPU_CALL(gpu, dropout_forward, s, x_dev.get(), y_dev.get(), gpu.stream());
  kernels::ref::dropout_forward(s, x.data(), y.data());
  expect_close(y_dev.download(), y, 0, 0, "dropout forward, gapped planes");
}

GPU_TEST("dropout on more than 65535 rows: the grid strides over rows") {
  // 70000 images of one value, x a slice of a 2-channel buffer: one row per image, one float each.
  PlacedTensor x(70000, 1, 1, 1, 2, 1, 8), y(70000, 1, 1, 1, 9);
  const DropoutShape s{70000, 1, 1, 1, 0.5f, 11, 2, x.place(), y.place()};
  DeviceBuffer x_dev(gpu, x.buffer()), y_dev(gpu, y.buffer());
  GPU_CALL(gpu, dropout_forward, s, x_dev.get(), y_dev.get(), gpu.stream());
  kernels::ref::dropout_forward(s, x.data(), y.data());
  expect_close(y_dev.download(), y.buffer(), 0, 0, "dropout forward, 70000 rows");
}

GPU_TEST("dropout rejects a drop probability outside [0, 1)") {
  DropoutShape s{1, 2, 2, 2, 1.f, 1, 0, Placement::dense(2, 2, 2), Placement::dense(2, 2, 2)};
  DeviceBuffer buffer(gpu, 8);
  CHECK_THROWS_WITH_AS(GPU_CALL(gpu, dropout_forward, s, buffer.get(), buffer.get(), gpu.stream()),
                       doctest::Contains("dropout_forward"), std::invalid_argument);
  s.p = -0.1f;
  CHECK_THROWS_AS(GPU_CALL(gpu, dropout_backward, s, buffer.get(), buffer.get(), false, gpu.stream()),
                  std::invalid_argument);
}
