// The fast CPU backward filter's direct kernel for few input channels per group (kernels/cpu/conv_direct_filter.h)
// against the reference loops, called directly (conv_backward_filter keeps im2col + GEMM where the rule says so) and
// through conv_backward_filter, on every instruction set this CPU runs: batch 1 and 3, 1, 2, 3 and 8 input channels
// per group, odd sizes, strides 1, 2 and 4 (and 1x3, 2x1), padding 0, 1, 2 and 5, 11x11, 3x3, 5x3 and 1x1 filters,
// groups and depthwise, output channel counts that are not multiples of the register tile's, position counts that
// are not multiples of the vector width, channel slices of wider buffers, planes with gaps, accumulate on and off;
// and the same bits for 1, 2 and 3 threads.
//
// Tolerance: |fast - ref| <= 1e-5 * sqrt(N*P*Q) + 1e-6 + 1e-5 |ref| (values in [-1, 1]; a float sum of T terms is
// off by ~1e-7 sqrt(T)), so one missing tap, image or row (>= ~0.3 sqrt(terms) on average) fails.
#include "kernels/cpu/conv_direct_filter.h"

#include <cmath>
#include <string>
#include <vector>

#include "kernels/conv.h"
#include "kernels/cpu/cpu_isa.h"
#include "tests/support/check.h"
#include "tests/support/conv_filter_check.h"
#include "tests/support/cpu_kernel_cases.h"

using kernels::ConvShape;
using kernels::cpu::CpuIsa;
using testing_support::conv_shape_hw;
using testing_support::gapped;
using testing_support::placed;
using testing_support::random_vector;
using testing_support::supported_isas;
using testing_support::w_size;
using testing_support::x_size;
using testing_support::y_size;

namespace {

using Case = testing_support::FilterCase;

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
      {"1x1 stride 1, C2 K5, batch 3", kernels::conv_shape(3, 2, 7, 9, 5, 1, 1, 1, 0)},
      {"filter wider than the stride's phases: C1 K4 2x2 stride 3 pad 1",
       kernels::conv_shape(1, 1, 10, 11, 4, 2, 2, 3, 1)},
      {"C3 (RGB conv1-like), K7, 11x11 stride 4 pad 1, batch 3", kernels::conv_shape(3, 3, 25, 22, 7, 11, 11, 4, 1)},
      {"C2 K5, 5x3 stride 2x1, pad 1x2", conv_shape_hw(1, 2, 10, 9, 5, 5, 3, 2, 1, 1, 2, 1)},
      {"groups 2 with 3 channels each (C6 K10), 3x3 pad 1, slices",
       placed(kernels::conv_shape(3, 6, 9, 11, 10, 3, 3, 1, 1, 2), 2, 9, 1, 12)},
      {"8 channels per group (C16 G2 K6), 3x3 stride 2", kernels::conv_shape(1, 16, 11, 10, 6, 3, 3, 2, 0, 2)},
      {"8 channels, K11, 5x3 stride 1 pad 2, batch 3", conv_shape_hw(3, 8, 9, 8, 11, 5, 3, 1, 1, 2, 2, 1)},
      {"planes with gaps: C3 K5, 3x3 pad 1", gapped(kernels::conv_shape(2, 3, 7, 8, 5, 3, 3, 1, 1))},
      {"many positions: C1 61x59, K9, 11x11 stride 4 pad 2, batch 3",
       kernels::conv_shape(3, 1, 61, 59, 9, 11, 11, 4, 2)},
  };
}

}  // namespace

TEST_CASE("direct backward filter matches the reference on every ISA, accumulate off and on") {
  testing_support::check_filter_kernel(cases(), kernels::cpu::conv_backward_filter_direct,
                                       kernels::cpu::conv_direct_filter_applies);
}

TEST_CASE("direct backward filter gives the same bits for 1, 2 and 3 threads on every ISA") {
  // Batch 3 of conv1-like images: 2 groups of one channel, and 3 channels; the items (channel tiles x tap blocks)
  // follow the thread count.
  const std::vector<Case> shapes = {{"C2 groups 2", kernels::conv_shape(3, 2, 61, 59, 20, 11, 11, 4, 2, 2)},
                                    {"C3", kernels::conv_shape(3, 3, 61, 59, 7, 11, 11, 4, 2)}};
  testing_support::check_filter_kernel_threads(shapes, kernels::cpu::conv_backward_filter_direct);
}

TEST_CASE(
    "the direct backward filter runs up to 8 input channels per group on every ISA, but for the channel-vectorised "
    "kernel's shapes") {
  const CpuIsa saved = kernels::cpu::active_cpu_isa();
  for (const CpuIsa isa : supported_isas()) {
    kernels::cpu::set_active_cpu_isa(isa);
    INFO(cpu_isa_name(isa));
    auto applies = [](const ConvShape& s) { return kernels::cpu::conv_direct_filter_applies(s); };
    // AlexNet conv1 goes to the channel-vectorised kernel but on the portable build (conv_direct_filter.cpp).
    CHECK(applies(kernels::conv_shape(4, 1, 227, 227, 96, 11, 11, 4, 0)) == (isa == CpuIsa::portable));
    CHECK(applies(kernels::conv_shape(4, 3, 227, 227, 96, 11, 11, 4, 0)) == (isa == CpuIsa::portable));
    CHECK(applies(kernels::conv_shape(4, 1, 227, 227, 32, 11, 11, 4, 0)));  // 32 output channels
    CHECK(applies(kernels::conv_shape(1, 32, 9, 9, 32, 3, 3, 1, 1, 32)));   // depthwise
    CHECK(applies(kernels::conv_shape(1, 16, 9, 9, 8, 3, 3, 1, 1, 2)));     // 8 per group
    CHECK_FALSE(applies(kernels::conv_shape(1, 9, 9, 9, 8, 3, 3, 1, 1)));
    CHECK_FALSE(applies(kernels::conv_shape(1, 96, 27, 27, 256, 5, 5, 1, 2, 2)));  // AlexNet conv2: 48 per group
  }
  kernels::cpu::set_active_cpu_isa(saved);
}
