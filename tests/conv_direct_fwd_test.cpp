// The fast CPU forward convolution's direct kernel for one or a few input channels per group
// (kernels/cpu/conv_direct_fwd.h: AlexNet conv1 on grey mammograms or RGB, depthwise and small-group layers) against
// the reference loops, called directly (conv_forward keeps im2col + GEMM for some shapes on the portable path) and
// through conv_forward, on every instruction set this CPU runs: batch 1 and 3, 1, 2, 3 and 8 input channels per group,
// odd sizes, strides 1, 2, 3 and 4, padding 0 to 5, 11x11, 3x3, 5x3 and 1x1 filters, groups, channel counts that are
// not multiples of the register tile's, rows that are not multiples of the vector width, a row of one output column,
// channel slices of wider buffers, planes with gaps, several bands per image, bias null and not, ReLU on and off; and
// the same bits for 1, 2 and 3 threads.
//
// Tolerance: |fast - ref| <= 1e-5 * sqrt(Cg*R*S) + 1e-6 + 1e-5 |ref| (values in [-1, 1]; a float sum of L terms is off
// by ~1e-7 sqrt(L)), so one missing tap (>= ~1e-3 on average) fails.
#include "kernels/cpu/conv_direct_fwd.h"

#include <omp.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/conv.h"
#include "kernels/cpu/cpu_isa.h"
#include "tests/support/check.h"
#include "tests/support/cpu_kernel_cases.h"

using kernels::ConvShape;
using kernels::cpu::CpuIsa;
using testing_support::conv_shape_hw;
using testing_support::expect_close;
using testing_support::gapped;
using testing_support::placed;
using testing_support::random_vector;
using testing_support::supported_isas;
using testing_support::w_size;
using testing_support::x_size;
using testing_support::y_size;

namespace {

using Buffer = std::vector<float>;

struct Case {
  std::string name;
  ConvShape s;
};

// Whether buffer index i is an element of y (placed by s.y).
bool in_y(const ConvShape& s, size_t i) {
  for (int n = 0; n < s.N; ++n)
    for (int k = 0; k < s.K; ++k)
      if (int64_t(i) >= s.y.plane(n, k) && int64_t(i) < s.y.plane(n, k) + int64_t(s.P) * s.Q) return true;
  return false;
}

std::vector<Case> cases() {
  return {
      {"conv1-like: batch 1, C1 23x21, K5, 11x11 stride 4", kernels::conv_shape(1, 1, 23, 21, 5, 11, 11, 4, 0)},
      {"batch 3, C1 17x19, K13, 3x3 stride 1 pad 1", kernels::conv_shape(3, 1, 17, 19, 13, 3, 3, 1, 1)},
      {"batch 1, C1 9x14, K7, 5x3 stride 2 pad 2", kernels::conv_shape(1, 1, 9, 14, 7, 5, 3, 2, 2)},
      {"groups 2 (C2, K10), batch 3, 25x30, 11x11 stride 4 pad 5",
       kernels::conv_shape(3, 2, 25, 30, 10, 11, 11, 4, 5, 2)},
      {"stride 1x3, pad 0x2, 5x3, C1 K9", conv_shape_hw(2, 1, 11, 13, 9, 5, 3, 1, 3, 0, 2, 1)},
      {"depthwise C4 K8 3x3 stride 2 pad 1, slices",
       placed(kernels::conv_shape(2, 4, 11, 9, 8, 3, 3, 2, 1, 4), 1, 6, 2, 11)},
      {"one output column: C1 20x3, K7, 3x3", kernels::conv_shape(1, 1, 20, 3, 7, 3, 3, 1, 0)},
      {"pad 2 > half the 3x3 filter: C1 7x6, K3", kernels::conv_shape(2, 1, 7, 6, 3, 3, 3, 1, 2)},
      {"1x1 stride 4, C1 K6", kernels::conv_shape(1, 1, 13, 10, 6, 1, 1, 4, 0)},
      {"filter wider than the stride's phases: C1 K4 2x2 stride 3 pad 1",
       kernels::conv_shape(1, 1, 10, 11, 4, 2, 2, 3, 1)},
      {"several bands per image: C1 300x300, K3, 3x3 pad 1", kernels::conv_shape(1, 1, 300, 300, 3, 3, 3, 1, 1)},
      {"C3 (RGB conv1-like), K7, 11x11 stride 4 pad 1", kernels::conv_shape(2, 3, 25, 22, 7, 11, 11, 4, 1)},
      {"C2 K5, 5x3 stride 2x1, pad 1x2", conv_shape_hw(1, 2, 10, 9, 5, 5, 3, 2, 1, 1, 2, 1)},
      {"groups 2 with 3 channels each (C6 K10), 3x3 pad 1, slices",
       placed(kernels::conv_shape(3, 6, 9, 11, 10, 3, 3, 1, 1, 2), 2, 9, 1, 12)},
      {"8 channels per group (C16 G2 K6), 3x3 stride 2", kernels::conv_shape(1, 16, 11, 10, 6, 3, 3, 2, 0, 2)},
      {"planes with gaps: C3 K5, 3x3 pad 1", gapped(kernels::conv_shape(2, 3, 7, 8, 5, 3, 3, 1, 1))},
  };
}

// Tolerance for a sum of `terms` products of values in [-1, 1].
void expect_forward_close(const Buffer& fast, const Buffer& ref, int terms, const std::string& what) {
  expect_close(fast, ref, 1e-5f * std::sqrt(float(terms)) + 1e-6f, 1e-5f, what);
}

}  // namespace

TEST_CASE("the direct path runs up to 8 input channels per group, on the portable path one and 8 output channels") {
  const CpuIsa saved = kernels::cpu::active_cpu_isa();
  for (const CpuIsa isa : supported_isas()) {
    kernels::cpu::set_active_cpu_isa(isa);
    INFO(cpu_isa_name(isa));
    const bool portable = isa == CpuIsa::portable;
    auto applies = [](const ConvShape& s) { return kernels::cpu::conv_direct_fwd_applies(s); };
    CHECK(applies(kernels::conv_shape(4, 1, 227, 227, 96, 11, 11, 4, 0)) == !portable);
    CHECK(applies(kernels::conv_shape(1, 4, 9, 9, 32, 3, 3, 1, 1, 4)));  // 1 input and 8 output channels per group
    CHECK(applies(kernels::conv_shape(1, 4, 9, 9, 36, 3, 3, 1, 1, 4)) == !portable);
    CHECK(applies(kernels::conv_shape(4, 3, 227, 227, 96, 11, 11, 4, 0)) == !portable);
    CHECK(applies(kernels::conv_shape(1, 16, 9, 9, 8, 3, 3, 1, 1, 2)) == !portable);  // 8 per group
    CHECK_FALSE(applies(kernels::conv_shape(1, 9, 9, 9, 8, 3, 3, 1, 1)));
    CHECK_FALSE(applies(kernels::conv_shape(1, 32, 9, 9, 8, 3, 3, 1, 1, 2)));
  }
  kernels::cpu::set_active_cpu_isa(saved);
}

TEST_CASE("direct forward matches the reference on every ISA: bias null and not, ReLU on and off") {
  const CpuIsa saved = kernels::cpu::active_cpu_isa();
  for (const CpuIsa isa : supported_isas()) {
    kernels::cpu::set_active_cpu_isa(isa);
    for (const Case& c : cases()) {
      const ConvShape& s = c.s;
      const Buffer x = random_vector(x_size(s), 1), w = random_vector(w_size(s), 2), b = random_vector(s.K, 3);
      const Buffer y_before = random_vector(y_size(s), 4);
      for (const bool with_bias : {false, true}) {
        const std::string name = c.name + (with_bias ? ", bias" : ", no bias") + " on " + cpu_isa_name(isa);
        INFO(name);
        const float* bias = with_bias ? b.data() : nullptr;
        Buffer y_ref = y_before, y_fast = y_before, y_fused = y_before, y_public = y_before;
        kernels::ref::conv_forward(s, x.data(), w.data(), bias, y_ref.data());
        kernels::cpu::conv_forward_direct(s, x.data(), w.data(), bias, y_fast.data(), {});
        expect_forward_close(y_fast, y_ref, s.C / s.groups * s.R * s.S, name + " forward");
        // The public entry point, whichever path it takes.
        kernels::cpu::conv_forward(s, x.data(), w.data(), bias, y_public.data());
        expect_forward_close(y_public, y_ref, s.C / s.groups * s.R * s.S, name + " conv_forward");
        size_t changed = 0;
        for (size_t i = 0; i < y_fast.size(); ++i)
          if (!in_y(s, i) && y_fast[i] != y_before[i]) ++changed;
        CHECK_MESSAGE(changed == 0, name << ": " << changed << " entries outside y changed");
        // The fused ReLU: the reference through a ReLU, and bit for bit the unfused result through the ReLU.
        kernels::cpu::conv_forward_direct(s, x.data(), w.data(), bias, y_fused.data(), kernels::ConvEpilogue{true});
        Buffer y_relu_ref = y_ref, y_relu = y_fast;
        for (size_t i = 0; i < y_relu.size(); ++i) {
          if (!in_y(s, i)) continue;
          y_relu_ref[i] = y_relu_ref[i] < 0.f ? 0.f : y_relu_ref[i];
          y_relu[i] = y_relu[i] < 0.f ? 0.f : y_relu[i];
        }
        expect_forward_close(y_fused, y_relu_ref, s.C / s.groups * s.R * s.S, name + " fused ReLU");
        CHECK_MESSAGE(y_fused == y_relu, name << ": fused bias + ReLU differs from conv then ReLU");
      }
    }
  }
  kernels::cpu::set_active_cpu_isa(saved);
}

TEST_CASE("direct forward gives the same bits for 1, 2 and 3 threads on every ISA") {
  // Batch 3 of conv1-like images, with 2 groups of one channel and with 3 channels: 6 and 3 (image, group) pairs, cut
  // into bands of rows by the thread count.
  const std::vector<Case> shapes = {{"C2 groups 2", kernels::conv_shape(3, 2, 61, 59, 20, 11, 11, 4, 2, 2)},
                                    {"C3", kernels::conv_shape(3, 3, 61, 59, 20, 11, 11, 4, 2)}};
  const CpuIsa saved = kernels::cpu::active_cpu_isa();
  for (const CpuIsa isa : supported_isas()) {
    kernels::cpu::set_active_cpu_isa(isa);
    for (const Case& c : shapes) {
      INFO(c.name << " on " << cpu_isa_name(isa));
      const ConvShape& s = c.s;
      const Buffer x = random_vector(x_size(s), 11), w = random_vector(w_size(s), 12), b = random_vector(s.K, 13);
      auto run = [&](int threads) {
        const int saved_threads = omp_get_max_threads();
        omp_set_num_threads(threads);
        Buffer y(y_size(s), 0.f);
        kernels::cpu::conv_forward_direct(s, x.data(), w.data(), b.data(), y.data(), kernels::ConvEpilogue{true});
        omp_set_num_threads(saved_threads);
        return y;
      };
      const Buffer one = run(1), two = run(2), three = run(3);
      auto same_bits = [](const Buffer& a, const Buffer& d) {
        return a.size() == d.size() && std::memcmp(a.data(), d.data(), a.size() * sizeof(float)) == 0;
      };
      CHECK(same_bits(one, two));
      CHECK(same_bits(one, three));
      Buffer y_ref(y_size(s));
      kernels::ref::conv_forward(s, x.data(), w.data(), b.data(), y_ref.data());
      for (float& v : y_ref) v = v < 0.f ? 0.f : v;
      expect_forward_close(one, y_ref, s.C / s.groups * s.R * s.S, c.name + " threads");
    }
  }
  kernels::cpu::set_active_cpu_isa(saved);
}
