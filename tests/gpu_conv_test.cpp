// GPU convolution kernels (kernels/cuda/conv_*.cu) against the CPU reference: every version (naive, tiled,
// register-blocked, best) of every pass on awkward shapes: batch 1, odd spatial sizes, channels % 4 != 0, groups 2,
// stride 2, padding, a rectangular filter, x and y as channel slices of wider buffers (the rest must stay
// untouched), accumulate on, bias null and not, fused ReLU, the 1x1 path, the single-channel conv1 path, a
// misaligned weight pointer (no 16-byte loads), and backward-filter's split-K, which must give the same bits twice.
//
// Tolerance (every pass): |gpu - ref| <= atol + rtol * |ref| with atol = 1e-5 * sqrt(L) + 1e-6, rtol = 1e-5, L the
// length of the sum (forward Cg*R*S, backward data Kg*R*S, backward filter N*P*Q). Values are in [-1, 1]; a float
// sum is typically off by ~1e-7 * sqrt(L), so the margin is ~100x and a missing tap (>= ~1e-3) still fails.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/conv.h"
#include "kernels/gpu.h"
#include "tests/support/check.h"
#include "tests/support/gpu.h"

using kernels::ConvShape;
using kernels::GpuKernelVersion;
using kernels::Placement;
using testing_support::DeviceBuffer;
using testing_support::expect_close;
using testing_support::GpuBackend;
using testing_support::random_vector;

namespace {

using Buffer = std::vector<float>;

// A convolution to test, with x and y possibly channel slices of wider buffers.
struct Case {
  std::string name;
  ConvShape s;
  int w_shift = 0;  // floats between the weight buffer's start and w (1: not 16-byte aligned)
};

// Stride and padding per dimension; x as channels [x_offset, x_offset + C) of x_total, y likewise.
ConvShape make_shape(int N, int C, int H, int W, int K, int R, int S, int stride_h, int stride_w, int pad_h, int pad_w,
                     int groups, int x_offset = 0, int x_total = 0, int y_offset = 0, int y_total = 0) {
  ConvShape s;
  s.N = N, s.C = C, s.H = H, s.W = W, s.K = K, s.R = R, s.S = S;
  s.stride_h = stride_h, s.stride_w = stride_w, s.pad_h = pad_h, s.pad_w = pad_w, s.groups = groups;
  s.P = (H + 2 * pad_h - R) / stride_h + 1, s.Q = (W + 2 * pad_w - S) / stride_w + 1;
  const int64_t x_plane = int64_t(H) * W, y_plane = int64_t(s.P) * s.Q;
  s.x = {(x_total ? x_total : C) * x_plane, x_plane, x_offset};
  s.y = {(y_total ? y_total : K) * y_plane, y_plane, y_offset};
  kernels::check_conv_shape(s);
  return s;
}

size_t x_buffer_size(const ConvShape& s) {
  return size_t(s.N) * s.x.batch_stride;
}
size_t y_buffer_size(const ConvShape& s) {
  return size_t(s.N) * s.y.batch_stride;
}
size_t w_count(const ConvShape& s) {
  return size_t(s.K) * (s.C / s.groups) * s.R * s.S;
}

// Whether buffer entry i belongs to the (N, channels, plane) tensor placed by p.
bool inside(const Placement& p, int channels, int64_t plane, size_t i) {
  const int64_t in_image = int64_t(i) % p.batch_stride - p.channel_offset * p.channel_stride;
  return in_image >= 0 && in_image < channels * p.channel_stride && in_image % p.channel_stride < plane;
}

// Entries of `after` outside the placed tensor must equal `before` bit for bit.
void expect_outside_untouched(const Buffer& after, const Buffer& before, const Placement& p, int channels,
                              int64_t plane, const std::string& what) {
  size_t changed = 0;
  for (size_t i = 0; i < after.size(); ++i) {
    if (!inside(p, channels, plane, i) && std::memcmp(&after[i], &before[i], sizeof(float)) != 0) ++changed;
  }
  CHECK_MESSAGE(changed == 0, what << ": " << changed << " entries outside the slice changed");
}

std::vector<Case> cases() {
  return {
      // batch 1, odd sizes, C*R*S = 27 (no 16-byte weight rows), padding 1
      {"batch 1 odd 3x3 pad 1", make_shape(1, 3, 7, 9, 5, 3, 3, 1, 1, 1, 1, 1)},
      // groups 2, stride 2, padding, channels % 4 != 0 per group (3)
      {"groups 2 stride 2 pad 1", make_shape(2, 6, 9, 8, 10, 3, 3, 2, 2, 1, 1, 2)},
      // a rectangular filter, different strides and pads per dimension, x and y as slices of wider buffers
      {"placed slices 2x3 filter", make_shape(2, 5, 6, 11, 7, 2, 3, 1, 2, 1, 0, 1, 2, 9, 1, 10)},
      // stride 3 with a 2x2 filter: dx positions no window covers (backward data must write 0 there)
      {"stride 3 gaps", make_shape(2, 4, 8, 7, 6, 2, 2, 3, 3, 0, 0, 1)},
      // 1x1: best takes the batched-GEMM path (H*W = 72 >= 64); groups 2 and slices on the second
      {"1x1", make_shape(2, 12, 8, 9, 20, 1, 1, 1, 1, 0, 0, 1)},
      {"1x1 groups 2 placed", make_shape(2, 8, 9, 8, 6, 1, 1, 1, 1, 0, 0, 2, 3, 12, 2, 9)},
      // conv1 of a grey image: best takes the single-channel path; 33 channels = a full and a partial 32-chunk,
      // P = 9 spans two 8-row tiles
      {"single channel 11x11 stride 4", make_shape(1, 1, 39, 11, 33, 11, 11, 4, 4, 2, 2, 1)},
      // more than 64 channels per group: 128-row tiles in every pass; weights one float off 16 bytes
      {"wide 128-row tiles", make_shape(1, 72, 5, 6, 80, 3, 3, 1, 1, 1, 1, 1)},
      {"misaligned weights", make_shape(2, 4, 6, 5, 9, 3, 1, 1, 1, 1, 0, 1), 1},
  };
}

}  // namespace

GPU_TEST("conv forward, every version, bias and fused ReLU") {
  for (const Case& cs : cases()) {
    const ConvShape& s = cs.s;
    const Buffer x = random_vector(x_buffer_size(s), 1), w = random_vector(cs.w_shift + w_count(s), 2);
    const Buffer b = random_vector(s.K, 3), y0 = random_vector(y_buffer_size(s), 4);
    const int Cg = s.C / s.groups;
    for (int variant = 0; variant < 3; ++variant) {  // no bias; bias; bias + ReLU
      const bool with_bias = variant > 0, relu = variant == 2;
      Buffer expected = y0;
      kernels::ref::conv_forward(s, x.data(), w.data() + cs.w_shift, with_bias ? b.data() : nullptr, expected.data());
      if (relu) {
        for (size_t i = 0; i < expected.size(); ++i) {
          if (inside(s.y, s.K, int64_t(s.P) * s.Q, i) && expected[i] < 0.f) expected[i] = 0.f;
        }
      }
      for (GpuKernelVersion v : testing_support::kGpuKernelVersions) {
        const std::string what = "conv_forward " + cs.name + " " + testing_support::version_name(v) +
                                 (with_bias ? (relu ? " bias+relu" : " bias") : " no bias");
        DeviceBuffer x_dev(gpu, x), w_dev(gpu, w), b_dev(gpu, b), y_dev(gpu, y0);
        kernels::ConvEpilogue epilogue;
        epilogue.relu = relu;
        GPU_CALL(gpu, conv_forward, s, x_dev.get(), w_dev.get() + cs.w_shift, with_bias ? b_dev.get() : nullptr,
                 y_dev.get(), gpu.stream(), epilogue, v);
        const Buffer y = y_dev.download();
        expect_close(y, expected, testing_support::gemm_atol(int64_t(Cg) * s.R * s.S), testing_support::kGemmRtol,
                     what);
        expect_outside_untouched(y, y0, s.y, s.K, int64_t(s.P) * s.Q, what);
      }
    }
  }
}

GPU_TEST("conv backward data, every version, accumulate on and off") {
  for (const Case& cs : cases()) {
    const ConvShape& s = cs.s;
    const Buffer dy = random_vector(y_buffer_size(s), 5), w = random_vector(cs.w_shift + w_count(s), 6);
    const Buffer dx0 = random_vector(x_buffer_size(s), 7);
    const int Kg = s.K / s.groups;
    for (bool accumulate : {false, true}) {
      Buffer expected = dx0;
      kernels::ref::conv_backward_data(s, dy.data(), w.data() + cs.w_shift, expected.data(), accumulate);
      for (GpuKernelVersion v : testing_support::kGpuKernelVersions) {
        const std::string what = "conv_backward_data " + cs.name + " " + testing_support::version_name(v) +
                                 (accumulate ? " accumulate" : " overwrite");
        DeviceBuffer dy_dev(gpu, dy), w_dev(gpu, w), dx_dev(gpu, dx0);
        GPU_CALL(gpu, conv_backward_data, s, dy_dev.get(), w_dev.get() + cs.w_shift, dx_dev.get(), accumulate,
                 gpu.stream(), v);
        const Buffer dx = dx_dev.download();
        expect_close(dx, expected, testing_support::gemm_atol(int64_t(Kg) * s.R * s.S), testing_support::kGemmRtol,
                     what);
        expect_outside_untouched(dx, dx0, s.x, s.C, int64_t(s.H) * s.W, what);
      }
    }
  }
}

GPU_TEST("conv backward filter, every version, accumulate on and off") {
  for (const Case& cs : cases()) {
    const ConvShape& s = cs.s;
    const Buffer x = random_vector(x_buffer_size(s), 8), dy = random_vector(y_buffer_size(s), 9);
    const Buffer dw0 = random_vector(w_count(s), 10);
    for (bool accumulate : {false, true}) {
      Buffer expected = dw0;
      kernels::ref::conv_backward_filter(s, x.data(), dy.data(), expected.data(), accumulate);
      for (GpuKernelVersion v : testing_support::kGpuKernelVersions) {
        const std::string what = "conv_backward_filter " + cs.name + " " + testing_support::version_name(v) +
                                 (accumulate ? " accumulate" : " overwrite");
        DeviceBuffer x_dev(gpu, x), dy_dev(gpu, dy), dw_dev(gpu, dw0);
        GPU_CALL(gpu, conv_backward_filter, s, x_dev.get(), dy_dev.get(), dw_dev.get(), accumulate, gpu.stream(), v);
        expect_close(dw_dev.download(), expected, testing_support::gemm_atol(int64_t(s.N) * s.P * s.Q),
                     testing_support::kGemmRtol, what);
      }
    }
  }
}

GPU_TEST("conv backward filter split-K: matches the reference, same bits twice") {
  // dw is 4 x 18 (one tile) while N*P*Q = 2*32*32 = 2048: best splits the sum into chunks when given a workspace.
  const ConvShape s = make_shape(2, 2, 32, 32, 4, 3, 3, 1, 1, 1, 1, 1);
  const size_t workspace_floats = GPU_CALL(gpu, conv_backward_filter_workspace_floats, s);
  REQUIRE_MESSAGE(workspace_floats > 0, "this shape should split");
  const Buffer x = random_vector(x_buffer_size(s), 14), dy = random_vector(y_buffer_size(s), 15);
  const Buffer dw0 = random_vector(w_count(s), 16);
  DeviceBuffer x_dev(gpu, x), dy_dev(gpu, dy), workspace(gpu, workspace_floats);
  for (bool accumulate : {false, true}) {
    Buffer expected = dw0;
    kernels::ref::conv_backward_filter(s, x.data(), dy.data(), expected.data(), accumulate);
    Buffer runs[2];
    for (Buffer& run : runs) {
      DeviceBuffer dw_dev(gpu, dw0);
      GPU_CALL(gpu, conv_backward_filter, s, x_dev.get(), dy_dev.get(), dw_dev.get(), accumulate, workspace.get(),
               workspace_floats, gpu.stream(), GpuKernelVersion::best);
      run = dw_dev.download();
    }
    const std::string what = std::string("split-K backward filter") + (accumulate ? " accumulate" : " overwrite");
    expect_close(runs[0], expected, testing_support::gemm_atol(int64_t(s.N) * s.P * s.Q), testing_support::kGemmRtol,
                 what);
    CHECK_MESSAGE(std::memcmp(runs[0].data(), runs[1].data(), runs[0].size() * sizeof(float)) == 0,
                  what << ": two runs differ");
  }
}

GPU_TEST("conv bad shapes throw naming the kernel") {
  ConvShape s = make_shape(1, 4, 5, 5, 4, 3, 3, 1, 1, 0, 0, 1);
  s.groups = 3;  // does not divide C
  DeviceBuffer buffer(gpu, 256);
  CHECK_THROWS_WITH_AS(GPU_CALL(gpu, conv_forward, s, buffer.get(), buffer.get(), nullptr, buffer.get(), gpu.stream(),
                                kernels::ConvEpilogue{}, GpuKernelVersion::best),
                       doctest::Contains("conv_forward"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(GPU_CALL(gpu, conv_backward_filter, s, buffer.get(), buffer.get(), buffer.get(), false,
                                gpu.stream(), GpuKernelVersion::naive),
                       doctest::Contains("conv_backward_filter"), std::invalid_argument);
}
