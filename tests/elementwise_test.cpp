// ReLU, elementwise add and copy references: exact values, gradient checks (add's through the executor, whose
// backward rule hands one gradient to both inputs), placements and accumulate.
//
// GPU elementwise kernels (bias, ReLU, add, copy) against kernels::ref on awkward shapes and placements, on simt
// (every schedule) and cuda. Each check compares the whole device buffer with the reference's whole buffer, so
// entries outside a channel slice must come back untouched too.
// Tolerances: exact for everything but the bias gradient (one float operation per element, the same in both);
// the bias gradient is a float tree against the reference's double sum: |err| <= 1e-5 + 1e-5 |ref|.
#include "kernels/elementwise.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/executor.h"
#include "engine/ops/elementwise.h"
#include "kernels/gpu.h"
#include "nets/layers.h"
#include "tests/support/check.h"
#include "tests/support/gpu.h"
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
  const ValueId sum = g.add(ops::add, "sum", {b.linear("fc_a", x, 4), b.linear("fc_b", x, 4)});
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

// ---- GPU kernels ----
using kernels::ActShape;
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

// Odd sizes take the scalar path; H*W % 4 == 0 with aligned slices takes the float4 path.
const Case kCases[] = {
    {"batch 1, odd sizes", 1, 5, 3, 7, 5, 0, 5, 0},
    {"dense, float4", 2, 3, 4, 4, 3, 0, 3, 0},
    {"channel slices, float4", 2, 3, 4, 4, 8, 5, 6, 1},
    {"channel slices, odd sizes", 3, 6, 5, 5, 9, 2, 7, 1},
    {"1x1 planes, channels % 4 == 3", 2, 7, 1, 1, 7, 0, 10, 3},
};

struct Tensors {
  PlacedTensor x, y;
  ActShape s;
};

Tensors tensors_for(const Case& k, uint64_t seed) {
  PlacedTensor x(k.N, k.C, k.H, k.W, k.x_total, k.x_offset, seed);
  PlacedTensor y(k.N, k.C, k.H, k.W, k.y_total, k.y_offset, seed + 1);
  const ActShape s{k.N, k.C, k.H, k.W, x.place(), y.place()};
  return {x, y, s};
}

// A placement whose planes are `gap` floats apart beyond H*W: not packed, so the kernels take one row per plane.
Placement gapped(int C, int H, int W, int gap) {
  const int64_t channel_stride = int64_t(H) * W + gap;
  return {C * channel_stride, channel_stride, 0};
}

}  // namespace

GPU_TEST("relu forward, out of place and in place") {
  for (const Case& k : kCases) {
    CAPTURE(k.name);
    Tensors t = tensors_for(k, 1);
    DeviceBuffer x(gpu, t.x.buffer()), y(gpu, t.y.buffer());
    GPU_CALL(gpu, relu_forward, t.s, x.get(), y.get(), gpu.stream());
    kernels::ref::relu_forward(t.s, t.x.data(), t.y.data());
    expect_close(y.download(), t.y.buffer(), 0, 0, "relu forward");

    ActShape in_place = t.s;
    in_place.y = in_place.x;
    GPU_CALL(gpu, relu_forward, in_place, x.get(), x.get(), gpu.stream());
    kernels::ref::relu_forward(in_place, t.x.data(), t.x.data());
    expect_close(x.download(), t.x.buffer(), 0, 0, "relu forward in place");
  }
}

GPU_TEST("relu backward, accumulate, in place") {
  for (const Case& k : kCases) {
    for (bool accumulate : {false, true}) {
      CAPTURE(k.name);
      CAPTURE(accumulate);
      Tensors t = tensors_for(k, 2);
      PlacedTensor dx(k.N, k.C, k.H, k.W, k.x_total, k.x_offset, 5);
      PlacedTensor dy(k.N, k.C, k.H, k.W, k.y_total, k.y_offset, 6);
      DeviceBuffer y(gpu, t.y.buffer()), dy_dev(gpu, dy.buffer()), dx_dev(gpu, dx.buffer());
      GPU_CALL(gpu, relu_backward, t.s, y.get(), dy_dev.get(), dx_dev.get(), accumulate, gpu.stream());
      kernels::ref::relu_backward(t.s, t.y.data(), dy.data(), dx.data(), accumulate);
      expect_close(dx_dev.download(), dx.buffer(), 0, 0, "relu backward");

      // dx written over dy (the executor's in-place ReLU): both placed as y.
      ActShape in_place = t.s;
      in_place.x = in_place.y;
      GPU_CALL(gpu, relu_backward, in_place, y.get(), dy_dev.get(), dy_dev.get(), accumulate, gpu.stream());
      kernels::ref::relu_backward(in_place, t.y.data(), dy.data(), dy.data(), accumulate);
      expect_close(dy_dev.download(), dy.buffer(), 0, 0, "relu backward in place");
    }
  }
}

GPU_TEST("relu on planes that are not packed") {
  const int N = 2, C = 3, H = 4, W = 4;
  const Placement x_place = gapped(C, H, W, 4), y_place = gapped(C, H, W, 3);
  const ActShape s{N, C, H, W, x_place, y_place};
  std::vector<float> x_host = testing_support::random_vector(size_t(N) * x_place.batch_stride, 7);
  std::vector<float> y_host = testing_support::random_vector(size_t(N) * y_place.batch_stride, 8);
  DeviceBuffer x(gpu, x_host), y(gpu, y_host);
  GPU_CALL(gpu, relu_forward, s, x.get(), y.get(), gpu.stream());
  kernels::ref::relu_forward(s, x_host.data(), y_host.data());
  expect_close(y.download(), y_host, 0, 0, "relu forward, gapped planes");
}

GPU_TEST("bias forward and backward") {
  for (const Case& k : kCases) {
    for (bool accumulate : {false, true}) {
      CAPTURE(k.name);
      CAPTURE(accumulate);
      Tensors t = tensors_for(k, 3);
      std::vector<float> b = testing_support::random_vector(size_t(k.C), 9);
      std::vector<float> db = testing_support::random_vector(size_t(k.C), 10);
      DeviceBuffer x(gpu, t.x.buffer()), y(gpu, t.y.buffer()), b_dev(gpu, b), db_dev(gpu, db);
      GPU_CALL(gpu, bias_forward, t.s, x.get(), b_dev.get(), y.get(), gpu.stream());
      kernels::ref::bias_forward(t.s, t.x.data(), b.data(), t.y.data());
      expect_close(y.download(), t.y.buffer(), 0, 0, "bias forward");

      GPU_CALL(gpu, bias_backward, t.s, y.get(), db_dev.get(), accumulate, gpu.stream());
      kernels::ref::bias_backward(t.s, t.y.data(), db.data(), accumulate);
      expect_close(db_dev.download(), db, 1e-5f, 1e-5f, "bias backward");
    }
  }
}

GPU_TEST("bias backward sums many entries per channel") {
  // More entries per channel than a block has threads: every thread adds several, crossing image boundaries, on
  // the scalar path (37 x 29) and the float4 path (20 x 20).
  for (const ActShape& s : {kernels::act_shape(2, 3, 37, 29), kernels::act_shape(3, 2, 20, 20)}) {
    CAPTURE(s.H);
    const size_t count = size_t(s.N) * s.C * s.H * s.W;
    const std::vector<float> dy = testing_support::random_vector(count, 11);
    std::vector<float> db(size_t(s.C), 0.f);
    DeviceBuffer dy_dev(gpu, dy), db_dev(gpu, db);
    GPU_CALL(gpu, bias_backward, s, dy_dev.get(), db_dev.get(), false, gpu.stream());
    kernels::ref::bias_backward(s, dy.data(), db.data(), false);
    expect_close(db_dev.download(), db, 1e-4f, 1e-5f, "bias backward, many entries per channel");
  }
}

GPU_TEST("add forward with three placements") {
  for (const Case& k : kCases) {
    CAPTURE(k.name);
    Tensors t = tensors_for(k, 4);
    PlacedTensor b(k.N, k.C, k.H, k.W, k.C + 2, 1, 12);  // b in a slice of its own
    DeviceBuffer a(gpu, t.x.buffer()), b_dev(gpu, b.buffer()), y(gpu, t.y.buffer());
    GPU_CALL(gpu, add_forward, t.s, a.get(), b.place(), b_dev.get(), y.get(), gpu.stream());
    kernels::ref::add_forward(t.s, t.x.data(), b.place(), b.data(), t.y.data());
    expect_close(y.download(), t.y.buffer(), 0, 0, "add forward");
  }
}

GPU_TEST("copy into a channel slice, accumulate") {
  for (const Case& k : kCases) {
    for (bool accumulate : {false, true}) {
      CAPTURE(k.name);
      CAPTURE(accumulate);
      Tensors t = tensors_for(k, 5);
      DeviceBuffer x(gpu, t.x.buffer()), y(gpu, t.y.buffer());
      GPU_CALL(gpu, copy, t.s, x.get(), y.get(), accumulate, gpu.stream());
      kernels::ref::copy(t.s, t.x.data(), t.y.data(), accumulate);
      expect_close(y.download(), t.y.buffer(), 0, 0, "copy");
    }
  }
}

GPU_TEST("elementwise launchers reject bad shapes") {
  const ActShape s = kernels::act_shape(2, 0, 3, 3);
  DeviceBuffer buffer(gpu, 16);
  CHECK_THROWS_WITH_AS(GPU_CALL(gpu, relu_forward, s, buffer.get(), buffer.get(), gpu.stream()),
                       doctest::Contains("relu_forward"), std::invalid_argument);
  CHECK_THROWS_AS(GPU_CALL(gpu, bias_backward, s, buffer.get(), buffer.get(), false, gpu.stream()),
                  std::invalid_argument);
}

GPU_TEST("more than 65535 rows: the grid strides over rows") {
  // 70000 images of one value, y a slice of a 2-channel buffer: one row per image, more rows than a grid's y
  // dimension holds, one float each.
  PlacedTensor x(70000, 1, 1, 1, 13), y(70000, 1, 1, 1, 2, 1, 14);
  const ActShape s{70000, 1, 1, 1, x.place(), y.place()};
  DeviceBuffer x_dev(gpu, x.buffer()), y_dev(gpu, y.buffer());
  GPU_CALL(gpu, copy, s, x_dev.get(), y_dev.get(), true, gpu.stream());
  kernels::ref::copy(s, x.data(), y.data(), true);
  expect_close(y_dev.download(), y.buffer(), 0, 0, "copy, 70000 rows");
}

GPU_TEST("the bias gradient has the same bits on every run and schedule") {
  const ActShape s = kernels::act_shape(3, 5, 17, 19);
  const std::vector<float> dy = testing_support::random_vector(size_t(3) * 5 * 17 * 19, 15);
  DeviceBuffer dy_dev(gpu, dy), db(gpu, 5);
  GPU_CALL(gpu, bias_backward, s, dy_dev.get(), db.get(), false, gpu.stream());
  static std::map<std::string, std::vector<float>> first_run;  // per backend: simt and cuda may differ
  const auto [it, inserted] = first_run.emplace(gpu.name(), db.download());
  if (!inserted) CHECK(std::memcmp(it->second.data(), db.download().data(), 5 * sizeof(float)) == 0);
  GPU_CALL(gpu, bias_backward, s, dy_dev.get(), db.get(), false, gpu.stream());
  CHECK(std::memcmp(it->second.data(), db.download().data(), 5 * sizeof(float)) == 0);
}
