// The fast CPU convolution's direct kernels on many-channel layers (kernels/cpu/conv_direct_fwd.h): the
// channel-vectorised forward (AlexNet conv2-5, VGG-16), the position-vectorised forward with several channel blocks,
// and the stride-1 backward-data through the channel-vectorised kernel (the position-vectorised one where dx has at
// most 16 channels per group on AVX-512), against the reference loops, called directly
// and through conv_forward / conv_backward_data, on every instruction set this CPU runs: batch 1 and 3, odd sizes,
// channel counts that are multiples of no block or tile (C 19, 24, 30, 37, 38; K 13, 37, 38, 130, 470: 470 makes the
// threads take chunks of k blocks), strides 1 and 2,
// padding 0, 1 and 2 (pad 2 on a 3x3 filter turns into pad 0 for backward-data), 3x3, 5x5 and 3x5 filters, groups 2,
// several channel blocks and several runs of positions per image, channel slices of wider buffers and planes with gaps
// (entries outside y or dx checked untouched), bias null and not, ReLU fused == unfused then ReLU bit for bit,
// accumulate on and off; the same bits for 1, 2 and 3 threads.
//
// Tolerance: |fast - ref| <= 1e-5 * sqrt(terms) + 1e-6 + 1e-5 |ref| (values in [-1, 1]), so one missing tap (~1e-3 on
// average) fails.
#include <omp.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "kernels/conv.h"
#include "kernels/cpu/conv_direct_fwd.h"
#include "kernels/cpu/cpu_isa.h"
#include "tests/support/check.h"
#include "tests/support/cpu_kernel_cases.h"

using kernels::ConvShape;
using kernels::cpu::CpuIsa;
using testing_support::changed_outside;
using testing_support::conv_shape_hw;
using testing_support::expect_sum_close;
using testing_support::gapped;
using testing_support::in_x;
using testing_support::in_y;
using testing_support::placed;
using testing_support::random_vector;
using testing_support::same_bits;
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

// Many-channel forward shapes. On AVX-512 a k block is 64 channels and a channel block about 128 taps (14 channels of
// a 3x3 filter, 5 of a 5x5); C 24 and 30 make 2 blocks, K 130 three k blocks and 20x20 two runs of positions per
// image. K 470 over 64 channels of 3x3: a group's packed weights exceed a chunk (1 MB) on every ISA, so the threads
// get chunks of several k blocks each.
std::vector<Case> forward_cases() {
  return {
      {"batch 1, C19 K37, 11x9, 3x3 pad 1", kernels::conv_shape(1, 19, 11, 9, 37, 3, 3, 1, 1)},
      {"batch 3, C24 K38 groups 2, 7x13, 5x5 pad 2", kernels::conv_shape(3, 24, 7, 13, 38, 5, 5, 1, 2, 2)},
      {"C70 K130, 20x20, 3x3 pad 1: channel blocks, k blocks, runs",
       kernels::conv_shape(1, 70, 20, 20, 130, 3, 3, 1, 1)},
      {"stride 2: C17 K20, 12x11, 3x3 pad 1", kernels::conv_shape(2, 17, 12, 11, 20, 3, 3, 2, 1)},
      {"pad 0: C12 K13, 9x10, 3x3", kernels::conv_shape(1, 12, 9, 10, 13, 3, 3, 1, 0)},
      {"stride 2 pad 0 (read in place): C18 K33, 13x12, 3x3", kernels::conv_shape(2, 18, 13, 12, 33, 3, 3, 2, 0)},
      {"stride 3 pad 0, 5x5: C10 K20, 17x19", kernels::conv_shape(1, 10, 17, 19, 20, 5, 5, 3, 0)},
      {"pad 0 in place, slices: C18 K26 groups 2, 9x8, 3x3",
       placed(kernels::conv_shape(2, 18, 9, 8, 26, 3, 3, 1, 0, 2), 3, 24, 5, 33)},
      {"pad 0 in place, gaps: C10 K32 stride 2, 11x9", gapped(kernels::conv_shape(2, 10, 11, 9, 32, 3, 3, 2, 0))},
      {"pad 2 on 3x3: C9 K16, 6x7", kernels::conv_shape(2, 9, 6, 7, 16, 3, 3, 1, 2)},
      {"3x5 pad 1x2: C11 K14, 8x9", conv_shape_hw(1, 11, 8, 9, 14, 3, 5, 1, 1, 1, 2, 1)},
      {"slices: C18 K26 groups 2, 9x8, 3x3 pad 1",
       placed(kernels::conv_shape(2, 18, 9, 8, 26, 3, 3, 1, 1, 2), 3, 24, 5, 33)},
      {"gaps: C10 K7, 5x6, 3x3 pad 1", gapped(kernels::conv_shape(2, 10, 5, 6, 7, 3, 3, 1, 1))},
      {"C64 K470, 6x7, 3x3 pad 1: weights past a chunk, partial last k block",
       kernels::conv_shape(2, 64, 6, 7, 470, 3, 3, 1, 1)},
  };
}

// Stride-1 shapes for backward-data (its forward has dy's K channels in and C out).
std::vector<Case> backward_cases() {
  return {
      {"batch 1, C37 K19, 11x9, 3x3 pad 1", kernels::conv_shape(1, 37, 11, 9, 19, 3, 3, 1, 1)},
      {"batch 3, C38 K24 groups 2, 7x13, 5x5 pad 2", kernels::conv_shape(3, 38, 7, 13, 24, 5, 5, 1, 2, 2)},
      {"C130 K30, 20x20, 3x3 pad 1", kernels::conv_shape(1, 130, 20, 20, 30, 3, 3, 1, 1)},
      {"pad 0 (turned pad 2): C13 K12, 9x10, 3x3", kernels::conv_shape(1, 13, 9, 10, 12, 3, 3, 1, 0)},
      {"pad 2 on 3x3 (turned pad 0): C16 K9, 6x7", kernels::conv_shape(2, 16, 6, 7, 9, 3, 3, 1, 2)},
      {"3x5 pad 0x2: C14 K11, 8x9", conv_shape_hw(1, 14, 8, 9, 11, 3, 5, 1, 1, 0, 2, 1)},
      {"slices: C26 K18 groups 2, 9x8, 3x3 pad 1",
       placed(kernels::conv_shape(2, 26, 9, 8, 18, 3, 3, 1, 1, 2), 5, 33, 3, 24)},
      {"gaps: C7 K10, 5x6, 3x3 pad 1", gapped(kernels::conv_shape(2, 7, 5, 6, 10, 3, 3, 1, 1))},
      {"C470 K64, 6x7, 3x3 pad 1: turned weights past a chunk", kernels::conv_shape(2, 470, 6, 7, 64, 3, 3, 1, 1)},
      {"16 dx channels (position-vectorised on AVX-512): C16 K33, 13x11, 5x5 pad 2",
       kernels::conv_shape(3, 16, 13, 11, 33, 5, 5, 1, 2)},
  };
}

using Forward = void (*)(const ConvShape&, const float*, const float*, const float*, float*, kernels::ConvEpilogue);

}  // namespace

TEST_CASE("the many-channel rules: filters of several taps, more than 8 channels in, 16-512 out per group") {
  using kernels::conv_shape;
  using kernels::cpu::conv_direct_bwd_data_applies;
  using kernels::cpu::conv_direct_kvec_applies;
  CHECK(conv_direct_kvec_applies(conv_shape(4, 96, 27, 27, 256, 5, 5, 1, 2, 2)));        // AlexNet conv2
  CHECK(conv_direct_kvec_applies(conv_shape(4, 512, 14, 14, 512, 3, 3, 1, 1)));          // VGG-16 conv5_2
  CHECK_FALSE(conv_direct_kvec_applies(conv_shape(4, 3, 227, 227, 96, 11, 11, 4, 0)));   // conv1: few channels
  CHECK_FALSE(conv_direct_kvec_applies(conv_shape(1, 64, 28, 28, 32, 1, 1, 1, 0)));      // 1x1: not measured
  CHECK(conv_direct_kvec_applies(conv_shape(1, 64, 28, 28, 32, 3, 3, 2, 1)));            // strided
  CHECK(conv_direct_kvec_applies(conv_shape(64, 16, 91, 91, 32, 3, 3, 2, 0)));           // mapnet_bn_fine conv1
  CHECK(conv_direct_kvec_applies(conv_shape(64, 32, 45, 45, 32, 3, 3, 1, 0)));           // mapnet_bn_fine conv2
  CHECK_FALSE(conv_direct_kvec_applies(conv_shape(1, 32, 28, 28, 15, 3, 3, 1, 1)));      // 15 outputs per group
  CHECK_FALSE(conv_direct_kvec_applies(conv_shape(1, 256, 20, 20, 4096, 6, 6, 1, 0)));   // convolutionalised fc6
  CHECK_FALSE(conv_direct_kvec_applies(conv_shape(1, 64, 28, 28, 24, 3, 3, 1, 1, 2)));   // 12 outputs per group
  CHECK(conv_direct_bwd_data_applies(conv_shape(1, 64, 224, 224, 64, 3, 3, 1, 1)));      // VGG-16 conv1_2
  CHECK(conv_direct_bwd_data_applies(conv_shape(4, 96, 27, 27, 256, 5, 5, 1, 2, 2)));    // AlexNet conv2
  CHECK(conv_direct_bwd_data_applies(conv_shape(4, 256, 13, 13, 384, 3, 3, 1, 1)));      // AlexNet conv3
  CHECK(conv_direct_bwd_data_applies(conv_shape(8, 16, 28, 28, 32, 5, 5, 1, 2)));        // 16 dx channels
  CHECK_FALSE(conv_direct_bwd_data_applies(conv_shape(8, 15, 28, 28, 32, 5, 5, 1, 2)));  // 15 dx channels
  CHECK_FALSE(conv_direct_bwd_data_applies(conv_shape(1, 64, 56, 56, 8, 3, 3, 1, 1)));   // 8 dy channels
  CHECK_FALSE(conv_direct_bwd_data_applies(conv_shape(1, 64, 56, 56, 64, 3, 3, 2, 1)));  // strided
  CHECK_FALSE(conv_direct_bwd_data_applies(conv_shape(1, 64, 56, 56, 64, 3, 3, 1, 3)));  // pad >= R
}

TEST_CASE("many-channel direct forward matches the reference on every ISA: bias null and not, ReLU on and off") {
  const CpuIsa saved = kernels::cpu::active_cpu_isa();
  const std::pair<const char*, Forward> kernels_under_test[] = {
      {"channel-vectorised", kernels::cpu::conv_forward_direct_kvec},
      {"position-vectorised", kernels::cpu::conv_forward_direct}};
  for (const Case& c : forward_cases()) {
    const ConvShape& s = c.s;
    const int terms = s.C / s.groups * s.R * s.S;
    const Buffer x = random_vector(x_size(s), 1), w = random_vector(w_size(s), 2), b = random_vector(s.K, 3);
    const Buffer y_before = random_vector(y_size(s), 4);
    for (const bool with_bias : {false, true}) {
      const float* bias = with_bias ? b.data() : nullptr;
      Buffer y_ref = y_before;
      kernels::ref::conv_forward(s, x.data(), w.data(), bias, y_ref.data());
      Buffer y_relu_ref = y_ref;
      for (size_t i = 0; i < y_relu_ref.size(); ++i)
        if (in_y(s, i)) y_relu_ref[i] = y_relu_ref[i] < 0.f ? 0.f : y_relu_ref[i];
      for (const CpuIsa isa : supported_isas()) {
        kernels::cpu::set_active_cpu_isa(isa);
        for (const auto& [kernel_name, forward] : kernels_under_test) {
          const std::string name =
              c.name + (with_bias ? ", bias, " : ", no bias, ") + kernel_name + " on " + cpu_isa_name(isa);
          INFO(name);
          Buffer y_fast = y_before, y_fused = y_before;
          forward(s, x.data(), w.data(), bias, y_fast.data(), {});
          expect_sum_close(y_fast, y_ref, terms, name + " forward");
          const size_t changed = changed_outside(y_fast, y_before, [&](size_t i) { return in_y(s, i); });
          CHECK_MESSAGE(changed == 0, name << ": " << changed << " entries outside y changed");
          // The fused ReLU: bit for bit the unfused result through the ReLU.
          forward(s, x.data(), w.data(), bias, y_fused.data(), kernels::ConvEpilogue{true});
          Buffer y_relu = y_fast;
          for (size_t i = 0; i < y_relu.size(); ++i)
            if (in_y(s, i)) y_relu[i] = y_relu[i] < 0.f ? 0.f : y_relu[i];
          expect_sum_close(y_fused, y_relu_ref, terms, name + " fused ReLU");
          CHECK_MESSAGE(same_bits(y_fused, y_relu), name << ": fused bias + ReLU differs from conv then ReLU");
        }
        // The public entry point, whichever path it takes.
        Buffer y_public = y_before;
        kernels::cpu::conv_forward(s, x.data(), w.data(), bias, y_public.data());
        expect_sum_close(y_public, y_ref, terms, c.name + " conv_forward on " + cpu_isa_name(isa));
      }
    }
  }
  kernels::cpu::set_active_cpu_isa(saved);
}

TEST_CASE("stride-1 direct backward-data matches the reference on every ISA, accumulate on and off") {
  const CpuIsa saved = kernels::cpu::active_cpu_isa();
  for (const Case& c : backward_cases()) {
    const ConvShape& s = c.s;
    const int terms = s.K / s.groups * s.R * s.S + 1;
    const Buffer dy = random_vector(y_size(s), 5), w = random_vector(w_size(s), 6);
    const Buffer dx_before = random_vector(x_size(s), 7);
    for (const bool accumulate : {false, true}) {
      Buffer dx_ref = dx_before;
      kernels::ref::conv_backward_data(s, dy.data(), w.data(), dx_ref.data(), accumulate);
      for (const CpuIsa isa : supported_isas()) {
        kernels::cpu::set_active_cpu_isa(isa);
        const std::string name = c.name + (accumulate ? ", accumulate" : "") + " on " + cpu_isa_name(isa);
        INFO(name);
        Buffer dx_fast = dx_before, dx_public = dx_before;
        kernels::cpu::conv_backward_data_direct(s, dy.data(), w.data(), dx_fast.data(), accumulate);
        expect_sum_close(dx_fast, dx_ref, terms, name + " direct");
        const size_t changed = changed_outside(dx_fast, dx_before, [&](size_t i) { return in_x(s, i); });
        CHECK_MESSAGE(changed == 0, name << ": " << changed << " entries outside dx changed");
        kernels::cpu::conv_backward_data(s, dy.data(), w.data(), dx_public.data(), accumulate);
        expect_sum_close(dx_public, dx_ref, terms, name + " conv_backward_data");
      }
    }
  }
  kernels::cpu::set_active_cpu_isa(saved);
}

TEST_CASE("many-channel direct kernels give the same bits for 1, 2 and 3 threads on every ISA") {
  // Batch 3: the items (image, group, run or band) are cut by the thread count.
  const ConvShape fwd = kernels::conv_shape(3, 40, 17, 15, 70, 5, 5, 1, 2, 2);
  const ConvShape bwd = kernels::conv_shape(3, 70, 17, 15, 40, 3, 3, 1, 1, 2);
  // Chunks of k blocks, cut by the thread count (on AVX-512: 2 of 4 k blocks for 1 thread, 3 of 3 for 2, 4 of 2 for 3).
  const ConvShape fwd_chunks = kernels::conv_shape(3, 64, 6, 7, 470, 3, 3, 1, 1);
  const ConvShape bwd_chunks = kernels::conv_shape(3, 470, 6, 7, 64, 3, 3, 1, 1);
  // Read in place (unpadded, stride 2), 32 channels: tiles of two vectors.
  const ConvShape fwd_in_place = kernels::conv_shape(3, 16, 31, 29, 32, 3, 3, 2, 0);
  // 16 dx channels per group: the position-vectorised kernel on the turned shape (AVX-512), with turned weights.
  const ConvShape bwd_positions = kernels::conv_shape(3, 32, 13, 11, 24, 5, 5, 1, 2, 2);
  const CpuIsa saved = kernels::cpu::active_cpu_isa();
  for (const CpuIsa isa : supported_isas()) {
    kernels::cpu::set_active_cpu_isa(isa);
    INFO(cpu_isa_name(isa));
    const Buffer x = random_vector(x_size(fwd), 11), w = random_vector(w_size(fwd), 12), b = random_vector(fwd.K, 13);
    const Buffer dy = random_vector(y_size(bwd), 14), wb = random_vector(w_size(bwd), 15);
    const Buffer dx0 = random_vector(x_size(bwd), 16);
    const Buffer xc = random_vector(x_size(fwd_chunks), 17), wc = random_vector(w_size(fwd_chunks), 18);
    const Buffer dyc = random_vector(y_size(bwd_chunks), 19), wbc = random_vector(w_size(bwd_chunks), 20);
    const Buffer xp = random_vector(x_size(fwd_in_place), 21), wp = random_vector(w_size(fwd_in_place), 22);
    const Buffer dyq = random_vector(y_size(bwd_positions), 23), wq = random_vector(w_size(bwd_positions), 24);
    const Buffer dxq = random_vector(x_size(bwd_positions), 25);
    auto run = [&](int threads, int which) {
      const int saved_threads = omp_get_max_threads();
      omp_set_num_threads(threads);
      Buffer out;
      if (which == 0) {
        out.assign(y_size(fwd), 0.f);
        kernels::cpu::conv_forward_direct_kvec(fwd, x.data(), w.data(), b.data(), out.data(),
                                               kernels::ConvEpilogue{true});
      } else if (which == 1) {
        out.assign(y_size(fwd), 0.f);
        kernels::cpu::conv_forward_direct(fwd, x.data(), w.data(), b.data(), out.data(), kernels::ConvEpilogue{true});
      } else if (which == 2) {
        out = dx0;
        kernels::cpu::conv_backward_data_direct(bwd, dy.data(), wb.data(), out.data(), true);
      } else if (which == 3) {
        out.assign(y_size(fwd_chunks), 0.f);
        kernels::cpu::conv_forward_direct_kvec(fwd_chunks, xc.data(), wc.data(), nullptr, out.data(), {});
      } else if (which == 4) {
        out.assign(x_size(bwd_chunks), 0.f);
        kernels::cpu::conv_backward_data_direct(bwd_chunks, dyc.data(), wbc.data(), out.data(), false);
      } else if (which == 5) {
        out.assign(y_size(fwd_in_place), 0.f);
        kernels::cpu::conv_forward_direct_kvec(fwd_in_place, xp.data(), wp.data(), nullptr, out.data(), {});
      } else {
        out = dxq;
        kernels::cpu::conv_backward_data_direct(bwd_positions, dyq.data(), wq.data(), out.data(), true);
      }
      omp_set_num_threads(saved_threads);
      return out;
    };
    const char* const names[] = {"channel-vectorised",         "position-vectorised",   "backward-data",
                                 "channel-vectorised, chunks", "backward-data, chunks", "channel-vectorised, in place",
                                 "backward-data, 16 channels"};
    for (int which = 0; which < 7; ++which) {
      INFO(names[which]);
      const Buffer one = run(1, which), two = run(2, which), three = run(3, which);
      CHECK(same_bits(one, two));
      CHECK(same_bits(one, three));
    }
  }
  kernels::cpu::set_active_cpu_isa(saved);
}
