// The GPU's fused SGD update against kernels::ref::sgd_update: the float4 body and its scalar tail (counts that are
// not multiples of 4), a misaligned start (the scalar kernel), zero momentum and decay, a count of zero; on simt
// (every schedule) and cuda.
// Tolerance: 1e-7 + 1e-6 |ref| for w and history (the same three operations; a GPU may fuse them into FMAs).
#include <doctest/doctest.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "kernels/gpu.h"
#include "kernels/sgd.h"
#include "tests/support/check.h"
#include "tests/support/gpu.h"

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
