// ReLU, elementwise add and copy references: exact values, gradient checks (add's through the executor, whose
// backward rule hands one gradient to both inputs), placements and accumulate.
#include "kernels/elementwise.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/executor.h"
#include "nets/layers.h"
#include "tests/support/check.h"
#include "tests/support/placed_tensor.h"

using kernels::ActShape;
using testing_support::PlacedTensor;

namespace {

// Where x and y sit: channel offsets into wider buffers (C_total == C and offset 0 for dense).
struct Layout {
  int x_total, x_offset, y_total, y_offset;
};

ActShape shape_for(const PlacedTensor& x, const PlacedTensor& y, int N, int C, int H, int W) {
  ActShape s{N, C, H, W, x.place(), y.place()};
  return s;
}

void check_relu(int N, int C, int H, int W, Layout layout, bool accumulate) {
  PlacedTensor x(N, C, H, W, layout.x_total, layout.x_offset, 1), y(N, C, H, W, layout.y_total, layout.y_offset, 2);
  PlacedTensor dx(N, C, H, W, layout.x_total, layout.x_offset, 3), dy(N, C, H, W, layout.y_total, layout.y_offset, 4);
  const ActShape s = shape_for(x, y, N, C, H, W);
  std::vector<float> x_values = testing_support::random_vector(x.size(), 5);
  const std::vector<float> r = testing_support::random_vector(y.size(), 6);
  x.set_logical(x_values);

  const std::vector<float> y_before = y.buffer();
  kernels::ref::relu_forward(s, x.data(), y.data());
  y.expect_outside_unchanged(y_before, "relu forward");
  std::vector<float> expected(x.size());
  for (size_t i = 0; i < expected.size(); ++i) expected[i] = std::fmax(x_values[i], 0.f);
  testing_support::expect_close(y.logical(), expected, 0, 0, "relu forward");

  dy.set_logical(r);
  const std::vector<float> dx_before = dx.buffer(), dx_old = dx.logical();
  kernels::ref::relu_backward(s, y.data(), dy.data(), dx.data(), accumulate);
  dx.expect_outside_unchanged(dx_before, "relu backward");
  const std::vector<float> analytic = accumulate ? testing_support::difference(dx.logical(), dx_old) : dx.logical();

  testing_support::GradCheckOptions opt;
  auto loss = [&] {
    x.set_logical(x_values);
    kernels::ref::relu_forward(s, x.data(), y.data());
    return testing_support::weighted_sum(y.logical(), r);
  };
  auto at_kink = [&](size_t i) { return std::fabs(x_values[i]) < opt.eps; };
  testing_support::check_gradient(x_values, analytic, loss, "relu dx", opt, at_kink);
}

}  // namespace

TEST_CASE("relu forward on hand values, out of place and in place") {
  PlacedTensor x(1, 1, 1, 5, 0);
  const std::vector<float> values = {-2.f, -0.5f, 0.f, 0.25f, 3.f};
  const std::vector<float> expected = {0.f, 0.f, 0.f, 0.25f, 3.f};
  x.set_logical(values);
  const ActShape s = kernels::act_shape(1, 1, 1, 5);
  std::vector<float> y(5, 7.f);
  kernels::ref::relu_forward(s, x.data(), y.data());
  testing_support::expect_close(y, expected, 0, 0, "relu out of place");
  kernels::ref::relu_forward(s, x.data(), x.data());
  testing_support::expect_close(x.logical(), expected, 0, 0, "relu in place");

  // Backward after the in-place forward reads y (which is now x's memory).
  const std::vector<float> dy = {1.f, 2.f, 3.f, 4.f, 5.f};
  std::vector<float> dx(5, 9.f);
  kernels::ref::relu_backward(s, x.data(), dy.data(), dx.data(), false);
  testing_support::expect_close(dx, {0.f, 0.f, 0.f, 4.f, 5.f}, 0, 0, "relu backward after in-place forward");
}

TEST_CASE("relu gradient check on awkward shapes") {
  SUBCASE("batch 1, 7x5, dense") {
    check_relu(1, 3, 7, 5, {3, 0, 3, 0}, false);
  }
  SUBCASE("odd channels, 9x9, dense, accumulate") {
    check_relu(2, 5, 9, 9, {5, 0, 5, 0}, true);
  }
  SUBCASE("channel slices of wider buffers") {
    check_relu(2, 3, 7, 5, {7, 2, 5, 1}, false);
  }
  SUBCASE("channel slices of wider buffers, accumulate") {
    check_relu(3, 3, 5, 7, {4, 1, 6, 3}, true);
  }
}

TEST_CASE("add_forward sums three differently placed tensors") {
  const int N = 2, C = 3, H = 5, W = 7;
  PlacedTensor a(N, C, H, W, 5, 2, 1), b(N, C, H, W, 4, 0, 2), y(N, C, H, W, 7, 3, 3);
  const ActShape s{N, C, H, W, a.place(), y.place()};
  const std::vector<float> y_before = y.buffer();
  kernels::ref::add_forward(s, a.data(), b.place(), b.data(), y.data());
  y.expect_outside_unchanged(y_before, "add");
  const std::vector<float> av = a.logical(), bv = b.logical();
  std::vector<float> expected(av.size());
  for (size_t i = 0; i < av.size(); ++i) expected[i] = av[i] + bv[i];
  testing_support::expect_close(y.logical(), expected, 0, 0, "add");

  // Gradient check of a weighted sum of y wrt a (the gradient of add is a copy of dy into each input).
  const std::vector<float> r = testing_support::random_vector(y.size(), 4);
  PlacedTensor dy(N, C, H, W, 7, 3, 5), da(N, C, H, W, 5, 2, 6);
  dy.set_logical(r);
  kernels::ref::copy({N, C, H, W, y.place(), a.place()}, dy.data(), da.data(), false);
  std::vector<float> a_values = av;
  auto loss = [&] {
    a.set_logical(a_values);
    kernels::ref::add_forward(s, a.data(), b.place(), b.data(), y.data());
    return testing_support::weighted_sum(y.logical(), r);
  };
  testing_support::check_gradient(a_values, da.logical(), loss, "add da");
}

TEST_CASE("add_forward in place into its first input") {
  const ActShape s = kernels::act_shape(1, 2, 3, 3);
  std::vector<float> a = testing_support::random_vector(18, 1), b = testing_support::random_vector(18, 2);
  std::vector<float> expected(18);
  for (int i = 0; i < 18; ++i) expected[i] = a[i] + b[i];
  kernels::ref::add_forward(s, a.data(), s.x, b.data(), a.data());
  testing_support::expect_close(a, expected, 0, 0, "in-place add");
}

TEST_CASE("copy overwrites or accumulates between placements") {
  const int N = 3, C = 5, H = 3, W = 7;
  for (bool accumulate : {false, true}) {
    CAPTURE(accumulate);
    PlacedTensor x(N, C, H, W, 6, 1, 1), y(N, C, H, W, 9, 4, 2);
    const std::vector<float> y_before = y.buffer(), y_old = y.logical(), xv = x.logical();
    kernels::ref::copy({N, C, H, W, x.place(), y.place()}, x.data(), y.data(), accumulate);
    y.expect_outside_unchanged(y_before, "copy");
    std::vector<float> expected(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) expected[i] = accumulate ? y_old[i] + xv[i] : xv[i];
    testing_support::expect_close(y.logical(), expected, 0, 0, "copy");
  }
}

TEST_CASE("add's gradient through the executor matches central differences") {
  // loss(fc_a(x) + fc_b(x)): the add's backward hands the same gradient to both of its inputs.
  using namespace massmap;
  Graph g;
  nets::LayerBuilder b(g);
  const ValueId x = g.add_input("data", {3, 5});
  const ValueId sum = g.add("add", "sum", {b.linear("fc_a", x, 4), b.linear("fc_b", x, 4)});
  b.softmax_loss("loss", sum, g.add_input("label", {3}));
  ExecutorOptions eo;
  eo.training = true;
  eo.input_grads = true;
  Executor ex(std::move(g), eo);
  ex.set_input("data", Tensor::from({3, 5}, testing_support::random_vector(15, 1)));
  ex.set_input("label", Tensor::from({3}, {0, 3, 1}));
  uint64_t seed = 2;
  for (ValueId p : ex.graph().params()) {
    Tensor t = ex.tensor(p);
    t.copy_from(Tensor::from(t.shape(), testing_support::random_vector(size_t(t.numel()), ++seed)));
  }
  RunContext run;
  ex.forward(run);
  ex.backward(run);
  for (const std::string name : {"data", "fc_a.weight", "fc_b.weight", "fc_b.bias"}) {
    Tensor value = ex.tensor(name);
    const std::vector<float> analytic = ex.tensor(gradient_name(name)).to_vector();
    std::vector<float> v = value.to_vector();
    auto loss = [&] {
      std::copy(v.begin(), v.end(), value.data());
      ex.forward(run);
      return ex.loss();
    };
    testing_support::GradCheckOptions gc;
    gc.eps = 1e-3f;
    testing_support::check_gradient(v, analytic, loss, "add: " + name, gc);
    std::copy(v.begin(), v.end(), value.data());
  }
}
