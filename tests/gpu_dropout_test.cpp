// GPU dropout against kernels::ref: the mask must be the CPU's bit for bit (the same Philox draws at the same
// logical indices), on the float4 path, the scalar path, channel slices and planes that are not packed; on simt
// (every schedule) and cuda. Whole buffers are compared: entries outside a slice must survive.
// Tolerances: exact (one multiply by the same keep scale), except with accumulate: 1e-7 + 1e-6 |ref|, since a GPU
// may fuse the multiply and the add.
#include <doctest/doctest.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "kernels/dropout.h"
#include "kernels/gpu.h"
#include "tests/support/check.h"
#include "tests/support/gpu.h"
#include "tests/support/placed_tensor.h"

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
