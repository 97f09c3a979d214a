// The fast CPU backward filter's channel-vectorised direct kernel (conv_backward_filter_direct_kvec,
// kernels/cpu/conv_direct_filter_kvec_body.h) against the reference loops, called directly (conv_backward_filter
// takes it only where the rule says so) and through conv_backward_filter, on every instruction set this CPU runs:
// batch 1 and 3, groups 2, output channel counts that fill 1-4 vectors partly (48, 50, 70, 96: k blocks of unequal
// widths), tap counts that are not multiples of a register tile's, stride 1 with padding and strides 2 and 4 (rows
// wide enough for the stride-4 planes' blocks of 16 columns, with and without padding), a single
// output column, maps long enough for several bands and for chunks that cross rows, channel slices of wider buffers
// (the rest of dw untouched), planes with gaps, accumulate on and off; and the same bits for 1, 2 and 3 threads.
//
// Tolerance as the few-channel kernel's test: |fast - ref| <= 1e-5 * sqrt(N*P*Q) + 1e-6 + 1e-5 |ref| (values in
// [-1, 1]), so one missing tap, position, image or band fails.

#include <cmath>
#include <string>
#include <vector>

#include "kernels/conv.h"
#include "kernels/cpu/conv_direct_filter.h"
#include "kernels/cpu/cpu_isa.h"
#include "tests/support/check.h"
#include "tests/support/conv_filter_check.h"
#include "tests/support/cpu_kernel_cases.h"

using kernels::ConvShape;
using kernels::cpu::CpuIsa;
using testing_support::conv_shape_hw;
using testing_support::expect_filter_close;
using testing_support::gapped;
using testing_support::placed;
using testing_support::random_vector;
using testing_support::supported_isas;
using testing_support::w_size;
using testing_support::x_size;
using testing_support::y_size;

namespace {

using Buffer = std::vector<float>;

using Case = testing_support::FilterCase;

std::vector<Case> cases() {
  return {
      {"batch 1, C16 9x11, K48, 3x3 pad 1", kernels::conv_shape(1, 16, 9, 11, 48, 3, 3, 1, 1)},
      {"groups 2 (C32, K100: 50 per group), 5x5 pad 2, 13x12, batch 3",
       kernels::conv_shape(3, 32, 13, 12, 100, 5, 5, 1, 2, 2)},
      {"K70 (unequal k blocks), C12 3x3 pad 1, slices",
       placed(kernels::conv_shape(2, 12, 10, 9, 70, 3, 3, 1, 1), 3, 17, 5, 80)},
      {"planes with gaps: C10 K64, 3x3 pad 1", gapped(kernels::conv_shape(2, 10, 8, 11, 64, 3, 3, 1, 1))},
      {"conv1-like: C3 K96, 11x11 stride 4 pad 1, batch 2", kernels::conv_shape(2, 3, 35, 33, 96, 11, 11, 4, 1)},
      {"one channel K33, 11x11 stride 4", kernels::conv_shape(1, 1, 27, 31, 33, 11, 11, 4, 0)},
      {"stride 4, pad 3, rows wide enough for blocks of 16 columns: C2 K48 11x11, 20x150",
       kernels::conv_shape(1, 2, 20, 150, 48, 11, 11, 4, 3)},
      {"stride 4 pad 1, a block of 16 columns ending on the row's last float: C5 K48 5x5, 30x66",
       kernels::conv_shape(2, 5, 30, 66, 48, 5, 5, 4, 1)},
      {"several bands and chunks across rows: C16 K64, 3x3 pad 1, 60x70, batch 2",
       kernels::conv_shape(2, 16, 60, 70, 64, 3, 3, 1, 1)},
      {"stride 2x1, pad 1x2, 3x5, C9 K33", conv_shape_hw(2, 9, 13, 17, 33, 3, 5, 2, 1, 1, 2, 1)},
      {"stride 2, two column phases built together: C16 K32 3x3, 23x21",
       kernels::conv_shape(2, 16, 23, 21, 32, 3, 3, 2, 0)},
      {"stride 2 pad 1, even width: C12 K20 3x3, 14x16", kernels::conv_shape(1, 12, 14, 16, 20, 3, 3, 2, 1)},
      {"27 taps (C3 3x3), K20", kernels::conv_shape(2, 3, 12, 14, 20, 3, 3, 1, 1)},
      {"1x1, C20 K40", kernels::conv_shape(1, 20, 7, 9, 40, 1, 1, 1, 0)},
      {"one output column: C10 20x3, K20, 3x3", kernels::conv_shape(1, 10, 20, 3, 20, 3, 3, 1, 0)},
      {"pad 2 > half the 3x3 filter: C9 K17", kernels::conv_shape(2, 9, 7, 6, 17, 3, 3, 1, 2)},
  };
}

}  // namespace

TEST_CASE("channel-vectorised backward filter matches the reference on every ISA, accumulate off and on") {
  testing_support::check_filter_kernel(cases(), kernels::cpu::conv_backward_filter_direct_kvec,
                                       kernels::cpu::conv_direct_filter_kvec_applies);
}

TEST_CASE("channel-vectorised backward filter through conv_backward_filter on the suite's shapes it takes") {
  // Small batches of the layers the rule was measured on (VGG-16 conv1_2 on a 60x64 crop, AlexNet conv2, conv4 and
  // conv1 on one and three channels): the public entry point takes the kernel there, and matches the reference.
  const std::vector<Case> shapes = {
      {"VGG conv1_2-like", kernels::conv_shape(1, 64, 60, 64, 64, 3, 3, 1, 1)},
      {"AlexNet conv2", kernels::conv_shape(1, 96, 27, 27, 256, 5, 5, 1, 2, 2)},
      {"AlexNet conv4 (13x13, groups 2)", kernels::conv_shape(1, 384, 13, 13, 384, 3, 3, 1, 1, 2)},
      {"AlexNet conv1 on 3 channels", kernels::conv_shape(1, 3, 227, 227, 96, 11, 11, 4, 0)},
      {"AlexNet conv1 on one channel", kernels::conv_shape(2, 1, 227, 227, 96, 11, 11, 4, 0)},
  };
  const CpuIsa saved = kernels::cpu::active_cpu_isa();
  for (const CpuIsa isa : supported_isas()) {
    kernels::cpu::set_active_cpu_isa(isa);
    for (const Case& c : shapes) {
      INFO(c.name << " on " << cpu_isa_name(isa));
      if (isa == CpuIsa::portable && c.s.C / c.s.groups <= 8) continue;  // the few-channel kernel there
      const ConvShape& s = c.s;
      CHECK(kernels::cpu::conv_direct_filter_kvec_applies(s));
      CHECK_FALSE(kernels::cpu::conv_direct_filter_applies(s));
      const Buffer x = random_vector(x_size(s), 21), dy = random_vector(y_size(s), 22);
      Buffer dw_ref(w_size(s)), dw(w_size(s));
      kernels::ref::conv_backward_filter(s, x.data(), dy.data(), dw_ref.data(), false);
      kernels::cpu::conv_backward_filter(s, x.data(), dy.data(), dw.data(), false);
      expect_filter_close(dw, dw_ref, s, c.name);
    }
  }
  kernels::cpu::set_active_cpu_isa(saved);
}

TEST_CASE("channel-vectorised backward filter gives the same bits for 1, 2 and 3 threads on every ISA") {
  // Several bands per image (built by all threads, double-buffered), items that follow the thread count.
  const std::vector<Case> shapes = {
      {"C16 K64 3x3 pad 1, 60x70, batch 2", kernels::conv_shape(2, 16, 60, 70, 64, 3, 3, 1, 1)},
      {"groups 2, C32 K96 5x5 pad 2, 27x27, batch 3", kernels::conv_shape(3, 32, 27, 27, 96, 5, 5, 1, 2, 2)},
      {"C3 K96 11x11 stride 4, batch 2", kernels::conv_shape(2, 3, 67, 71, 96, 11, 11, 4, 0)},
      {"C16 K32 3x3 stride 2, 41x39, batch 3", kernels::conv_shape(3, 16, 41, 39, 32, 3, 3, 2, 0)},
  };
  testing_support::check_filter_kernel_threads(shapes, kernels::cpu::conv_backward_filter_direct_kvec);
}

TEST_CASE("the channel-vectorised backward filter's rule") {
  const CpuIsa saved = kernels::cpu::active_cpu_isa();
  for (const CpuIsa isa : supported_isas()) {
    kernels::cpu::set_active_cpu_isa(isa);
    INFO(cpu_isa_name(isa));
    auto applies = [](const ConvShape& s) { return kernels::cpu::conv_direct_filter_kvec_applies(s); };
    const bool fast_isa = isa != CpuIsa::portable;
    CHECK(applies(kernels::conv_shape(1, 64, 224, 224, 64, 3, 3, 1, 1)));               // VGG-16 conv1_2
    CHECK(applies(kernels::conv_shape(1, 256, 56, 56, 256, 3, 3, 1, 1)));               // VGG-16 conv3_2
    CHECK(applies(kernels::conv_shape(4, 96, 27, 27, 256, 5, 5, 1, 2, 2)));             // AlexNet conv2
    CHECK(applies(kernels::conv_shape(4, 3, 227, 227, 96, 11, 11, 4, 0)) == fast_isa);  // conv1, 3 channels
    CHECK(applies(kernels::conv_shape(4, 1, 227, 227, 96, 11, 11, 4, 0)) == fast_isa);  // conv1, 121 taps
    CHECK_FALSE(applies(kernels::conv_shape(1, 3, 224, 224, 64, 3, 3, 1, 1)));          // 27 taps
    CHECK(applies(kernels::conv_shape(4, 256, 13, 13, 384, 3, 3, 1, 1)));               // AlexNet conv3
    CHECK(applies(kernels::conv_shape(4, 512, 14, 14, 512, 3, 3, 1, 1)));               // VGG-16 conv5_2
    CHECK_FALSE(applies(kernels::conv_shape(1, 1024, 14, 14, 512, 3, 3, 1, 1)));        // 4.7M sums per group
    CHECK_FALSE(applies(kernels::conv_shape(1, 256, 56, 56, 256, 1, 1, 1, 0)));         // 1x1
    CHECK(applies(kernels::conv_shape(1, 64, 112, 112, 128, 3, 3, 2, 1)));              // strided, many channels
    CHECK(applies(kernels::conv_shape(64, 16, 91, 91, 32, 3, 3, 2, 0)));                // mapnet_bn_fine conv1
    CHECK_FALSE(applies(kernels::conv_shape(1, 256, 56, 56, 1024, 3, 3, 1, 1)));        // 1024 per group
    CHECK(applies(kernels::conv_shape(1, 64, 56, 56, 32, 3, 3, 1, 1)));                 // 32 per group
    CHECK_FALSE(applies(kernels::conv_shape(1, 64, 56, 56, 15, 3, 3, 1, 1)));           // 15 per group
    CHECK_FALSE(applies(kernels::conv_shape(4, 1, 227, 227, 32, 11, 11, 4, 0)));        // few channels, 32 out
  }
  kernels::cpu::set_active_cpu_isa(saved);
}
