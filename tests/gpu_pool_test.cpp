// GPU max and average pooling against kernels::ref: Caffe CEIL windows, padding, stride 2, global pooling, ties,
// channel slices in and out, accumulate, on simt (every schedule) and cuda. Whole buffers are compared, so entries
// outside a slice must come back untouched.
// Tolerances: max pooling exact (the same comparisons pick the same element; the gradient adds the same dy values
// in the same order); average pooling 1e-6 + 1e-6 |ref| (the same float sums and divisions in the same order,
// exact on simt; a GPU may contract differently).
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "kernels/gpu.h"
#include "kernels/pool.h"
#include "tests/support/check.h"
#include "tests/support/gpu.h"
#include "tests/support/placed_tensor.h"

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
