// GPU local response normalisation against kernels::ref: windows clipped at both channel ends, fewer channels than
// the window, an even window, channel slices, accumulate, on simt (every schedule) and cuda. alpha is large so the
// cross-channel term of the gradient matters. Whole buffers are compared: entries outside a slice must survive.
// Tolerances: forward 1e-6 + 1e-5 |ref|, backward 1e-5 + 1e-5 |ref| (float sums and powf against the reference's
// double).
#include <doctest/doctest.h>

#include <stdexcept>
#include <vector>

#include "kernels/gpu.h"
#include "kernels/lrn.h"
#include "tests/support/check.h"
#include "tests/support/gpu.h"
#include "tests/support/placed_tensor.h"

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
