// The bfloat16 convolution (kernels/cpu/conv_bf16.h), on each engine this CPU has (tiles, dot products), against the
// reference loops fed the same operands rounded to bfloat16, so that only the summation order differs: forward (bias
// null and not, ReLU on and off), backward data and backward filter (accumulate on and off), on batch 1 and more, odd
// sizes, channel counts that are multiples of no tile (C 3, 19, 24, 70; K 5, 13, 37, 38, 130: odd numbers of 16-channel
// blocks), 1x1, 3x3, 3x5 and 5x5 filters, padding 0, 1 and 2, strides 2, 2x3 and 4 (forward and backward filter),
// groups 2, channel slices of wider buffers and planes with gaps (entries outside the output checked untouched), images
// cut into blocks of rows, and image blocks with a partial last one; the same bits for 1 and 3 threads; the rounding
// itself, ties and NaN included; and the errors: a stride the kernels do not take, an engine the CPU lacks, and a CPU
// with neither engine (where every pass must throw, which is what this test checks there).
//
// Tolerance: |fast - ref| <= 1e-5 * sqrt(terms) + 1e-6 + 1e-5 |ref| on values in [-1, 1], as the float32 kernels'
// tests: a wrongly rounded operand (2^-9 relative) or one missing tap fails.
#include "kernels/cpu/conv_bf16.h"

#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/conv.h"
#include "tests/support/check.h"
#include "tests/support/cpu_kernel_cases.h"

using kernels::ConvShape;
using kernels::cpu::round_to_bf16;
using testing_support::changed_outside;
using testing_support::conv_shape_hw;
using testing_support::expect_sum_close;
using testing_support::gapped;
using testing_support::in_x;
using testing_support::in_y;
using testing_support::placed;
using testing_support::random_vector;
using testing_support::same_bits;
using testing_support::w_size;
using testing_support::x_size;
using testing_support::y_size;

namespace {

using Buffer = std::vector<float>;

struct Case {
  std::string name;
  ConvShape s;
};

std::vector<Case> cases() {
  return {
      {"batch 1, C19 K37, 11x9, 3x3 pad 1", kernels::conv_shape(1, 19, 11, 9, 37, 3, 3, 1, 1)},
      {"batch 3, C24 K38 groups 2, 7x13, 5x5 pad 2", kernels::conv_shape(3, 24, 7, 13, 38, 5, 5, 1, 2, 2)},
      {"C70 K130, 20x20, 3x3 pad 1: 3 chunks, 9 output blocks", kernels::conv_shape(1, 70, 20, 20, 130, 3, 3, 1, 1)},
      {"pad 0: C12 K13, 9x10, 3x3", kernels::conv_shape(2, 12, 9, 10, 13, 3, 3, 1, 0)},
      {"3x5 pad 1x2: C11 K14, 8x9", conv_shape_hw(1, 11, 8, 9, 14, 3, 5, 1, 1, 1, 2, 1)},
      {"1x1: C40 K20, 7x5", kernels::conv_shape(2, 40, 7, 5, 20, 1, 1, 1, 0)},
      {"slices: C18 K26 groups 2, 9x8, 3x3 pad 1",
       placed(kernels::conv_shape(2, 18, 9, 8, 26, 3, 3, 1, 1, 2), 3, 24, 5, 33)},
      {"gaps: C10 K7, 5x6, 3x3 pad 1", gapped(kernels::conv_shape(2, 10, 5, 6, 7, 3, 3, 1, 1))},
      {"mapnet_bn_fine conv2: C32 K32, 45x45, batch 9 (a partial image block)",
       kernels::conv_shape(9, 32, 45, 45, 32, 3, 3, 1, 0)},
      {"wide rows cut into blocks: C3 K5, 90x700, 3x3 pad 1", kernels::conv_shape(1, 3, 90, 700, 5, 3, 3, 1, 1)},
      {"small maps, images summed in passes: C40 K36, 5x5, 3x3, batch 29 (items of 3 images, the last of 2)",
       kernels::conv_shape(29, 40, 5, 5, 36, 3, 3, 1, 0)},
      // Sums over 1 MB an item: the backward filter holds the accumulators over the batch (odd tile counts: 11 x 12).
      {"many channels: C170 K180, 6x7, 3x3 pad 1, batch 3", kernels::conv_shape(3, 170, 6, 7, 180, 3, 3, 1, 1)},
      {"many channels, stride 2: C170 K180, 9x9, 3x3, batch 17 (items of 2 images, the last of 1)",
       kernels::conv_shape(17, 170, 9, 9, 180, 3, 3, 2, 0)},
      {"many channels, groups 2: C352 K352, 5x5, 3x3, batch 2", kernels::conv_shape(2, 352, 5, 5, 352, 3, 3, 1, 0, 2)},
      // Strided (forward and backward filter only): phase planes, stride 2 by permutation, others by gathers.
      {"mapnet_bn_fine conv1: stride 2, C16 K32, 15x13, 3x3", kernels::conv_shape(2, 16, 15, 13, 32, 3, 3, 2, 0)},
      {"stride 2x3, 3x5 pad 1x2: C20 K17, 11x14", conv_shape_hw(3, 20, 11, 14, 17, 3, 5, 2, 3, 1, 2, 1)},
      {"stride 4, 5x5 pad 2: C17 K18, 19x21", kernels::conv_shape(1, 17, 19, 21, 18, 5, 5, 4, 2)},
      {"stride 2, slices: C18 K26 groups 2, 9x8, 3x3 pad 1",
       placed(kernels::conv_shape(2, 18, 9, 8, 26, 3, 3, 2, 1, 2), 3, 24, 5, 33)},
      {"stride 2, wide rows cut into blocks: C5 K3, 160x1300, 3x3 pad 1",
       kernels::conv_shape(1, 5, 160, 1300, 3, 3, 3, 2, 1)},
  };
}

Buffer rounded(Buffer values) {
  for (float& v : values) v = round_to_bf16(v);
  return values;
}

float relu(float v) {
  return v < 0.f ? 0.f : v;
}

using kernels::cpu::Bf16Engine;

// Runs body() once on each engine this CPU has, that engine active (restored after).
template <typename Body>
void on_each_engine(Body body) {
  const Bf16Engine saved = kernels::cpu::active_bf16_engine();
  for (const Bf16Engine engine : {Bf16Engine::tiles, Bf16Engine::dot_products}) {
    if (!kernels::cpu::bf16_engine_available(engine)) continue;
    kernels::cpu::set_bf16_engine(engine);
    INFO("engine " << kernels::cpu::bf16_engine_name(engine));
    body(engine);
  }
  if (kernels::cpu::bf16_engine_available(saved)) kernels::cpu::set_bf16_engine(saved);
}

}  // namespace

TEST_CASE("bfloat16 rounding: nearest, ties to even, NaN stays NaN") {
  CHECK(round_to_bf16(1.f) == 1.f);
  CHECK(round_to_bf16(1.f + std::ldexp(1.f, -8)) == 1.f);                             // a tie: to the even mantissa
  CHECK(round_to_bf16(1.f + 3 * std::ldexp(1.f, -8)) == 1.f + std::ldexp(1.f, -6));   // a tie: up to the even one
  CHECK(round_to_bf16(1.f + 5 * std::ldexp(1.f, -10)) == 1.f + std::ldexp(1.f, -7));  // above half: up
  CHECK(round_to_bf16(-3.f - std::ldexp(1.f, -9)) == -3.f);                           // below half: down
  CHECK(std::isnan(round_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  CHECK(round_to_bf16(std::numeric_limits<float>::infinity()) == std::numeric_limits<float>::infinity());
  CHECK(round_to_bf16(std::numeric_limits<float>::max()) == std::numeric_limits<float>::infinity());
}

TEST_CASE("bfloat16 backward data: only stride 1 with padding under the filter size; the rule for all passes") {
  using kernels::conv_shape;
  using kernels::cpu::conv_bf16_backward_data_supports;
  CHECK(conv_bf16_backward_data_supports(conv_shape(1, 32, 45, 45, 32, 3, 3, 1, 0)));
  CHECK(conv_bf16_backward_data_supports(conv_shape(1, 32, 45, 45, 32, 5, 5, 1, 4)));
  CHECK_FALSE(conv_bf16_backward_data_supports(conv_shape(1, 16, 91, 91, 32, 3, 3, 2, 0)));
  CHECK_FALSE(conv_bf16_backward_data_supports(conv_shape(1, 16, 9, 9, 32, 3, 3, 1, 3)));
  const ConvShape strided = conv_shape(1, 16, 9, 9, 8, 3, 3, 2, 1);
  Buffer x(x_size(strided)), w(w_size(strided)), y(y_size(strided));
  try {
    kernels::cpu::conv_backward_data_bf16(strided, y.data(), w.data(), x.data(), false);
    FAIL("a stride-2 backward data was taken");
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    CHECK_MESSAGE(message.find("stride 2x2") != std::string::npos, message);
    CHECK_MESSAGE(message.find("backward data") != std::string::npos, message);
  } catch (const std::runtime_error& e) {
    CHECK_FALSE(kernels::cpu::bf16_available());  // neither engine: that error comes first
  }
  // The rule: float32 unless chosen; then 16 channels in and out per group at least.
  using kernels::cpu::ConvPrecision;
  const ConvPrecision saved = kernels::cpu::active_conv_precision();
  kernels::cpu::set_conv_precision(ConvPrecision::float32);
  CHECK_FALSE(kernels::cpu::conv_bf16_applies(conv_shape(1, 32, 45, 45, 32, 3, 3, 1, 0)));
  if (kernels::cpu::bf16_available()) {
    kernels::cpu::set_conv_precision(ConvPrecision::bfloat16);
    CHECK(kernels::cpu::conv_bf16_applies(conv_shape(1, 32, 45, 45, 32, 3, 3, 1, 0)));
    CHECK(kernels::cpu::conv_bf16_applies(conv_shape(1, 16, 91, 91, 32, 3, 3, 2, 0)));
    CHECK_FALSE(kernels::cpu::conv_bf16_backward_data_applies(conv_shape(1, 16, 91, 91, 32, 3, 3, 2, 0)));
    CHECK_FALSE(kernels::cpu::conv_bf16_applies(conv_shape(1, 1, 93, 93, 16, 3, 3, 1, 0)));      // grey first layer
    CHECK_FALSE(kernels::cpu::conv_bf16_applies(conv_shape(1, 32, 45, 45, 8, 3, 3, 1, 0)));      // 8 outputs
    CHECK_FALSE(kernels::cpu::conv_bf16_applies(conv_shape(1, 32, 45, 45, 32, 3, 3, 1, 0, 4)));  // 8 per group
  } else {
    CHECK_THROWS_AS(kernels::cpu::set_conv_precision(ConvPrecision::bfloat16), std::runtime_error);
  }
  CHECK(kernels::cpu::parse_conv_precision("bfloat16") == ConvPrecision::bfloat16);
  CHECK(kernels::cpu::parse_conv_precision("float32") == ConvPrecision::float32);
  CHECK_THROWS_WITH_AS(kernels::cpu::parse_conv_precision("fp16"),
                       "convolution precision 'fp16': expected float32 or bfloat16", std::invalid_argument);
  kernels::cpu::set_conv_precision(saved);
}

TEST_CASE("bfloat16 engines: chosen by name, tiles first where present, an absent one refused by name") {
  CHECK(kernels::cpu::parse_bf16_engine("tiles") == Bf16Engine::tiles);
  CHECK(kernels::cpu::parse_bf16_engine("dot_products") == Bf16Engine::dot_products);
  CHECK_THROWS_WITH_AS(kernels::cpu::parse_bf16_engine("vnni"),
                       "bfloat16 engine 'vnni': expected tiles or dot_products", std::invalid_argument);
  CHECK(kernels::cpu::bf16_available() ==
        (kernels::cpu::bf16_tiles_available() || kernels::cpu::bf16_dot_products_available()));
  if (kernels::cpu::bf16_tiles_available()) CHECK(kernels::cpu::active_bf16_engine() == Bf16Engine::tiles);
  for (const Bf16Engine engine : {Bf16Engine::tiles, Bf16Engine::dot_products}) {
    if (kernels::cpu::bf16_engine_available(engine)) continue;
    try {
      kernels::cpu::set_bf16_engine(engine);
      FAIL("an engine this CPU lacks was taken");
    } catch (const std::runtime_error& e) {
      const std::string message = e.what();
      CHECK_MESSAGE(message.find(kernels::cpu::bf16_engine_name(engine)) != std::string::npos, message);
    }
  }
}

TEST_CASE("bfloat16 convolution: every pass throws on a CPU with neither engine, and only there") {
  const ConvShape s = kernels::conv_shape(1, 4, 5, 5, 4, 3, 3, 1, 1);
  Buffer x(x_size(s), 1.f), w(w_size(s), 1.f), y(y_size(s));
  if (kernels::cpu::bf16_available()) {
    on_each_engine([&](Bf16Engine) {
      kernels::cpu::conv_forward_bf16(s, x.data(), w.data(), nullptr, y.data(), {});
      CHECK(y[2 * 5 + 2] == 36.f);  // the centre of 4 channels of ones under a 3x3 filter of ones
    });
  } else {
    CHECK_THROWS_AS(kernels::cpu::conv_forward_bf16(s, x.data(), w.data(), nullptr, y.data(), {}), std::runtime_error);
    CHECK_THROWS_AS(kernels::cpu::conv_backward_data_bf16(s, y.data(), w.data(), x.data(), false), std::runtime_error);
    CHECK_THROWS_AS(kernels::cpu::conv_backward_filter_bf16(s, x.data(), y.data(), w.data(), false),
                    std::runtime_error);
  }
}

// The remaining cases need an engine; on a CPU with neither the case above checked the error instead.
TEST_CASE("bfloat16 forward matches the reference on rounded operands: bias null and not, ReLU on and off") {
  if (!kernels::cpu::bf16_available()) return;
  on_each_engine([&](Bf16Engine) {
    // One product per output: y is x rounded, bit for bit, including ties and NaN.
    {
      const ConvShape s = kernels::conv_shape(1, 1, 1, 6, 1, 1, 1, 1, 0);
      const float nan = std::numeric_limits<float>::quiet_NaN();
      const Buffer x = {1.f + std::ldexp(1.f, -8), 1.f + 3 * std::ldexp(1.f, -8), -2.7182818f, 3.1415926f, nan, 1e30f};
      Buffer y(6), w = {1.f};
      kernels::cpu::conv_forward_bf16(s, x.data(), w.data(), nullptr, y.data(), {});
      for (int i = 0; i < 6; ++i) {
        if (std::isnan(x[i])) {
          CHECK(std::isnan(y[i]));
        } else {
          CHECK_MESSAGE(y[i] == round_to_bf16(x[i]),
                        "x " << x[i] << ": " << y[i] << " against " << round_to_bf16(x[i]));
        }
      }
    }
    for (const Case& c : cases()) {
      const ConvShape& s = c.s;
      const int terms = s.C / s.groups * s.R * s.S;
      const Buffer x = random_vector(x_size(s), 1), w = random_vector(w_size(s), 2), b = random_vector(s.K, 3);
      const Buffer y_before = random_vector(y_size(s), 4);
      const Buffer x_rounded = rounded(x), w_rounded = rounded(w);
      for (const bool with_bias : {false, true}) {
        const float* bias = with_bias ? b.data() : nullptr;
        const std::string name = c.name + (with_bias ? ", bias" : ", no bias");
        INFO(name);
        Buffer y_ref = y_before;
        kernels::ref::conv_forward(s, x_rounded.data(), w_rounded.data(), bias, y_ref.data());
        Buffer y_fast = y_before, y_relu = y_before;
        kernels::cpu::conv_forward_bf16(s, x.data(), w.data(), bias, y_fast.data(), {});
        expect_sum_close(y_fast, y_ref, terms, name + " forward");
        CHECK(changed_outside(y_fast, y_before, [&](size_t i) { return in_y(s, i); }) == 0);
        kernels::cpu::conv_forward_bf16(s, x.data(), w.data(), bias, y_relu.data(), kernels::ConvEpilogue{true});
        Buffer y_relu_expected = y_before;
        for (size_t i = 0; i < y_fast.size(); ++i) y_relu_expected[i] = in_y(s, i) ? relu(y_fast[i]) : y_before[i];
        CHECK_MESSAGE(same_bits(y_relu, y_relu_expected), name << ": fused ReLU differs from conv then ReLU");
      }
    }
  });
}

TEST_CASE("bfloat16 backward data matches the reference on rounded operands, accumulate on and off") {
  if (!kernels::cpu::bf16_available()) return;
  on_each_engine([&](Bf16Engine) {
    for (const Case& c : cases()) {
      const ConvShape& s = c.s;
      if (!kernels::cpu::conv_bf16_backward_data_supports(s)) continue;  // strided: the test above
      const int terms = s.K / s.groups * s.R * s.S;
      const Buffer dy = random_vector(y_size(s), 5), w = random_vector(w_size(s), 6);
      const Buffer dx_before = random_vector(x_size(s), 7);
      const Buffer dy_rounded = rounded(dy), w_rounded = rounded(w);
      for (const bool accumulate : {false, true}) {
        const std::string name = c.name + (accumulate ? ", accumulate" : ", overwrite");
        INFO(name);
        Buffer dx_ref = dx_before, dx_fast = dx_before;
        kernels::ref::conv_backward_data(s, dy_rounded.data(), w_rounded.data(), dx_ref.data(), accumulate);
        kernels::cpu::conv_backward_data_bf16(s, dy.data(), w.data(), dx_fast.data(), accumulate);
        expect_sum_close(dx_fast, dx_ref, terms, name + " backward data");
        CHECK(changed_outside(dx_fast, dx_before, [&](size_t i) { return in_x(s, i); }) == 0);
      }
    }
  });
}

TEST_CASE("bfloat16 backward filter matches the reference on rounded operands, accumulate on and off") {
  if (!kernels::cpu::bf16_available()) return;
  on_each_engine([&](Bf16Engine) {
    for (const Case& c : cases()) {
      const ConvShape& s = c.s;
      const int terms = s.N * s.P * s.Q;
      const Buffer x = random_vector(x_size(s), 8), dy = random_vector(y_size(s), 9);
      const Buffer dw_before = random_vector(w_size(s), 10);
      const Buffer x_rounded = rounded(x), dy_rounded = rounded(dy);
      for (const bool accumulate : {false, true}) {
        const std::string name = c.name + (accumulate ? ", accumulate" : ", overwrite");
        INFO(name);
        Buffer dw_ref = dw_before, dw_fast = dw_before;
        kernels::ref::conv_backward_filter(s, x_rounded.data(), dy_rounded.data(), dw_ref.data(), accumulate);
        kernels::cpu::conv_backward_filter_bf16(s, x.data(), dy.data(), dw_fast.data(), accumulate);
        expect_sum_close(dw_fast, dw_ref, terms, name + " backward filter");
      }
    }
  });
}

TEST_CASE("bfloat16 convolution: the same bits for 1 and 3 threads") {
  if (!kernels::cpu::bf16_available()) return;
  on_each_engine([&](Bf16Engine) {
    const int saved = omp_get_max_threads();
    for (const Case& c : cases()) {
      const ConvShape& s = c.s;
      INFO(c.name);
      const Buffer x = random_vector(x_size(s), 11), w = random_vector(w_size(s), 12),
                   dy = random_vector(y_size(s), 13);
      Buffer results[2][3];
      for (const int threads : {1, 3}) {
        omp_set_num_threads(threads);
        Buffer& y = results[threads == 3][0] = Buffer(y_size(s));
        Buffer& dx = results[threads == 3][1] = Buffer(x_size(s));
        Buffer& dw = results[threads == 3][2] = Buffer(w_size(s));
        kernels::cpu::conv_forward_bf16(s, x.data(), w.data(), nullptr, y.data(), {});
        if (kernels::cpu::conv_bf16_backward_data_supports(s))
          kernels::cpu::conv_backward_data_bf16(s, dy.data(), w.data(), dx.data(), false);
        kernels::cpu::conv_backward_filter_bf16(s, x.data(), dy.data(), dw.data(), false);
      }
      CHECK(same_bits(results[0][0], results[1][0]));
      CHECK(same_bits(results[0][1], results[1][1]));
      CHECK(same_bits(results[0][2], results[1][2]));
    }
    omp_set_num_threads(saved);
  });
}

TEST_CASE("bfloat16 backward filter: both loop orders give the same bits") {
  if (!kernels::cpu::bf16_available()) return;
  on_each_engine([&](Bf16Engine engine) {
    using kernels::cpu::bf16::FilterOrder;
    for (const Case& c : cases()) {
      const ConvShape& s = c.s;
      INFO(c.name);
      const Buffer x = random_vector(x_size(s), 21), dy = random_vector(y_size(s), 22);
      Buffer by_images = random_vector(w_size(s), 23), by_accumulators = by_images;  // accumulate onto the same values
      kernels::cpu::bf16::conv_backward_filter(engine, s, x.data(), dy.data(), by_images.data(), true,
                                               FilterOrder::images_outer);
      kernels::cpu::bf16::conv_backward_filter(engine, s, x.data(), dy.data(), by_accumulators.data(), true,
                                               FilterOrder::accumulators_outer);
      CHECK(same_bits(by_images, by_accumulators));
    }
  });
}
