// Convolution kernels: the reference against hand-computed numbers and an independent direct formula, gradient
// checks of the reference on awkward shapes, and the fast CPU path (on every instruction set this CPU runs) against
// the reference.
//
// GPU convolution kernels (kernels/cuda/conv_*.cu) against the CPU reference: every version (naive, tiled,
// register-blocked, best) of every pass on awkward shapes: batch 1, odd spatial sizes, channels % 4 != 0, groups 2,
// stride 2, padding, a rectangular filter, x and y as channel slices of wider buffers (the rest must stay
// untouched), accumulate on, bias null and not, fused ReLU, the 1x1 path, the single-channel conv1 path, a
// misaligned weight pointer (no 16-byte loads), and backward-filter's split-K, which must give the same bits twice.
//
// Tolerance (every pass): |gpu - ref| <= atol + rtol * |ref| with atol = 1e-5 * sqrt(L) + 1e-6, rtol = 1e-5, L the
// length of the sum (forward Cg*R*S, backward data Kg*R*S, backward filter N*P*Q). Values are in [-1, 1]; a float
// sum is typically off by ~1e-7 * sqrt(L), so the margin is ~100x and a missing tap (>= ~1e-3) still fails.
#include "kernels/conv.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/conv_phase_bwd_data.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/elementwise.h"
#include "kernels/gpu.h"
#include "tests/support/check.h"
#include "tests/support/cpu_kernel_cases.h"
#include "tests/support/gpu.h"

using kernels::ConvShape;
using kernels::Placement;
using kernels::cpu::CpuIsa;
using testing_support::check_gradient;
using testing_support::expect_close;
using testing_support::random_vector;
using testing_support::supported_isas;
using testing_support::weighted_sum;

namespace {

using Buffer = std::vector<float>;

// A convolution to test: the shape (with placements) and a name for messages.
struct Case {
  std::string name;
  ConvShape s;
};

// x as channels [x_offset, x_offset + C) of an x_total-channel buffer, y as [y_offset, y_offset + K) of y_total.
ConvShape placed(ConvShape s, int x_offset, int x_total, int y_offset, int y_total) {
  const int64_t x_plane = int64_t(s.H) * s.W, y_plane = int64_t(s.P) * s.Q;
  s.x = {x_total * x_plane, x_plane, x_offset};
  s.y = {y_total * y_plane, y_plane, y_offset};
  return s;
}

size_t buffer_size(const Placement& p, int N, int C, int64_t plane) {
  return size_t(std::max<int64_t>(N * p.batch_stride, (N - 1) * p.batch_stride + p.plane(0, C - 1) + plane));
}
size_t x_size(const ConvShape& s) {
  return buffer_size(s.x, s.N, s.C, int64_t(s.H) * s.W);
}
size_t y_size(const ConvShape& s) {
  return buffer_size(s.y, s.N, s.K, int64_t(s.P) * s.Q);
}
size_t w_size(const ConvShape& s) {
  return size_t(s.K) * (s.C / s.groups) * s.R * s.S;
}

// Whether buffer index i belongs to the (N, C, plane) tensor placed by p.
bool inside(const Placement& p, int N, int C, int64_t plane, size_t i) {
  for (int n = 0; n < N; ++n) {
    for (int c = 0; c < C; ++c) {
      if (int64_t(i) >= p.plane(n, c) && int64_t(i) < p.plane(n, c) + plane) return true;
    }
  }
  return false;
}

// The placed tensor copied out densely: (N, C, plane).
Buffer to_dense(const Buffer& buffer, const Placement& p, int N, int C, int64_t plane) {
  Buffer dense;
  for (int n = 0; n < N; ++n) {
    for (int c = 0; c < C; ++c) dense.insert(dense.end(), &buffer[p.plane(n, c)], &buffer[p.plane(n, c)] + plane);
  }
  return dense;
}

// Checks that every entry of buffer outside the placed tensor still equals before.
void expect_untouched(const Buffer& buffer, const Buffer& before, const Placement& p, int N, int C, int64_t plane,
                      const std::string& what) {
  size_t changed = 0;
  for (size_t i = 0; i < buffer.size(); ++i) {
    if (!inside(p, N, C, plane, i) && buffer[i] != before[i]) ++changed;
  }
  CHECK_MESSAGE(changed == 0, what << ": " << changed << " entries outside the slice changed");
}

// An independent forward: x (N, C, H, W) dense is first copied into a zero-padded (N, C, H+2ph, W+2pw) image, then
// each output is the dot product of the flattened filter with the flattened window, group by group.
Buffer direct_forward(const ConvShape& s, const Buffer& x, const Buffer& w, const Buffer& b) {
  const int Hp = s.H + 2 * s.pad_h, Wp = s.W + 2 * s.pad_w;
  Buffer padded(size_t(s.N) * s.C * Hp * Wp, 0.f);  // (N, C, Hp, Wp)
  for (int n = 0; n < s.N; ++n)
    for (int c = 0; c < s.C; ++c)
      for (int h = 0; h < s.H; ++h)
        for (int v = 0; v < s.W; ++v)
          padded[((size_t(n) * s.C + c) * Hp + h + s.pad_h) * Wp + v + s.pad_w] =
              x[((size_t(n) * s.C + c) * s.H + h) * s.W + v];
  const int Cg = s.C / s.groups, Kg = s.K / s.groups;
  Buffer y(size_t(s.N) * s.K * s.P * s.Q);  // (N, K, P, Q)
  for (int n = 0; n < s.N; ++n) {
    for (int g = 0; g < s.groups; ++g) {
      for (int kk = 0; kk < Kg; ++kk) {
        const int k = g * Kg + kk;
        for (int p = 0; p < s.P; ++p) {
          for (int q = 0; q < s.Q; ++q) {
            std::vector<double> window, filter;  // both flattened as (Cg, R, S)
            for (int c = 0; c < Cg; ++c)
              for (int r = 0; r < s.R; ++r)
                for (int t = 0; t < s.S; ++t) {
                  window.push_back(
                      padded[((size_t(n) * s.C + g * Cg + c) * Hp + p * s.stride_h + r) * Wp + q * s.stride_w + t]);
                  filter.push_back(w[((size_t(k) * Cg + c) * s.R + r) * s.S + t]);
                }
            double dot = b.empty() ? 0.0 : b[k];
            for (size_t i = 0; i < window.size(); ++i) dot += window[i] * filter[i];
            y[((size_t(n) * s.K + k) * s.P + p) * s.Q + q] = float(dot);
          }
        }
      }
    }
  }
  return y;
}

double dot(const Buffer& a, const Buffer& b) {
  return weighted_sum(a, b);
}

// Awkward shapes: batch 1, odd sizes, stride > 1, padding 1 and 2, groups, channels % 4 != 0, channel slices,
// unequal strides and paddings, 1x1, a single input channel with an 11x11 filter at stride 4.
std::vector<Case> awkward_cases() {
  std::vector<Case> cases;
  cases.push_back({"batch 1, 7x5, C3 K6, 3x3 stride 2 pad 1", kernels::conv_shape(1, 3, 7, 5, 6, 3, 3, 2, 1)});
  cases.push_back({"groups 2, C6 K4, 3x2 filter, pad 2", kernels::conv_shape(2, 6, 7, 5, 4, 3, 2, 1, 2, 2)});
  cases.push_back({"x at channel 2 of 7, y at channel 1 of 6, stride 2 pad 1",
                   placed(kernels::conv_shape(2, 3, 6, 7, 4, 3, 3, 2, 1), 2, 7, 1, 6)});
  {
    ConvShape s = kernels::conv_shape(2, 4, 7, 6, 6, 3, 3, 1, 0, 2);
    s.stride_h = 2, s.pad_w = 1;
    s.P = (7 - 3) / 2 + 1, s.Q = (6 + 2 - 3) + 1;
    cases.push_back({"groups 2, stride 2x1, pad 0x1, slices", placed(s, 3, 9, 2, 8)});
  }
  cases.push_back({"1x1, slices", placed(kernels::conv_shape(2, 5, 4, 3, 7, 1, 1, 1, 0), 1, 7, 0, 9)});
  cases.push_back({"1x1, groups 2, y slice", placed(kernels::conv_shape(3, 6, 5, 5, 4, 1, 1, 1, 0, 2), 0, 6, 3, 7)});
  cases.push_back({"1x1 stride 2", kernels::conv_shape(2, 3, 5, 6, 4, 1, 1, 2, 0)});
  // Few outputs per group: on AVX-512 the forward pass reads x in place and backward filter streams x's rows.
  cases.push_back({"1x1, 16 outputs read in place: C45 29x31, slices",
                   placed(kernels::conv_shape(2, 45, 29, 31, 16, 1, 1, 1, 0), 1, 47, 2, 19)});
  cases.push_back({"1x1, C400 (two KC blocks) K24, 5x7", kernels::conv_shape(1, 400, 5, 7, 24, 1, 1, 1, 0)});
  cases.push_back({"1x1, groups 2 of 35 outputs, 13x11", kernels::conv_shape(3, 70, 13, 11, 70, 1, 1, 1, 0, 2)});
  {
    ConvShape s = kernels::conv_shape(2, 3, 5, 6, 4, 1, 1, 1, 0);
    s.stride_w = 2, s.Q = 3;
    s.y = Placement::dense(s.K, s.P, s.Q);
    cases.push_back({"1x1 stride 1x2", s});
  }
  {
    // Planes need not be contiguous with each other: gaps of 3 after every x plane and 2 after every y plane.
    ConvShape s = kernels::conv_shape(2, 3, 5, 4, 5, 3, 3, 1, 1);
    s.x = {3 * (5 * 4 + 3), 5 * 4 + 3, 0};
    s.y = {5 * (5 * 4 + 2), 5 * 4 + 2, 0};
    cases.push_back({"planes with gaps (channel_stride > H*W)", s});
  }
  // Strided layers with 16 dx channels per group: backward data by phases on AVX-512 and portable.
  cases.push_back({"C16 K12 3x3 stride 2, 13x11, batch 3: four phases, every row reached",
                   kernels::conv_shape(3, 16, 13, 11, 12, 3, 3, 2, 0)});
  cases.push_back({"C16 K12 3x3 stride 2, 14x12: the last row and column reached by no dy row",
                   kernels::conv_shape(2, 16, 14, 12, 12, 3, 3, 2, 0)});
  cases.push_back({"groups 2, C32 K20 5x5 stride 2 pad 2, 12x15, slices",
                   placed(kernels::conv_shape(2, 32, 12, 15, 20, 5, 5, 2, 2, 2), 3, 37, 1, 23)});
  cases.push_back({"batch 1, C16 K24 3x3 stride 2 pad 1, 9x10", kernels::conv_shape(1, 16, 9, 10, 24, 3, 3, 2, 1)});
  {
    // Stride 3 rows over a filter of 2 rows: phase 2 of the rows gets no tap at all.
    ConvShape s = kernels::conv_shape(2, 16, 11, 9, 12, 2, 3, 1, 0);
    s.stride_h = 3, s.P = (11 - 2) / 3 + 1;
    s.y = Placement::dense(s.K, s.P, s.Q);
    cases.push_back({"C16 K12 2x3 stride 3x1: a phase without taps", s});
  }
  cases.push_back({"conv1-like: C1, 11x11 stride 4", kernels::conv_shape(2, 1, 23, 21, 5, 11, 11, 4, 0)});
  cases.push_back(
      {"C3, 11x11 stride 4 pad 2, slices", placed(kernels::conv_shape(1, 3, 19, 19, 4, 11, 11, 4, 2), 1, 5, 2, 6)});
  return cases;
}

// Larger cases whose output positions span several column blocks of the fast path (block starts mid-row), and
// whose backward passes cut channels (backward data) or col rows (backward filter) into blocks. With the fast
// path's constants at the time of writing: the first case cuts backward data into 4 blocks of 8 channels and
// backward filter into 4 row blocks; the third gives backward data channel blocks of 3, 3, 3 and 1; the fourth
// (4 groups) has 2592-row col blocks, so every pass, backward ones included, runs 2 column blocks of 111 and 110
// positions (starting mid-row). Backward filter cuts images into blocks with partial dW where dW is at most 1 MB
// (the batch-2 cases with one group), col rows otherwise (the first case, and the last, whose dW is 1.3 MB).
std::vector<Case> block_cases() {
  return {{"C32 9x9 pad 4, 16x15: two column blocks", kernels::conv_shape(1, 32, 16, 15, 3, 9, 9, 1, 4)},
          {"groups 2, C32, 9x9, slices: two column blocks",
           placed(kernels::conv_shape(2, 32, 17, 13, 6, 9, 9, 1, 4, 2), 2, 35, 1, 8)},
          {"batch 1, C10 5x5 pad 2, 9x7: uneven channel blocks", kernels::conv_shape(1, 10, 9, 7, 5, 5, 5, 1, 2)},
          {"groups 4, C128 9x9 pad 4, 17x13, slices: column blocks in every pass",
           placed(kernels::conv_shape(2, 128, 17, 13, 8, 9, 9, 1, 4, 4), 3, 133, 2, 11)},
          {"C512 K72 3x3 pad 1, 3x4, batch 2: dW over 1 MB, so backward filter cuts col rows, each over both images",
           kernels::conv_shape(2, 512, 3, 4, 72, 3, 3, 1, 1)}};
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no std::invalid_argument thrown)";
}

}  // namespace

TEST_CASE("conv_shape computes the output size and check_conv_shape names bad values") {
  const ConvShape alexnet = kernels::conv_shape(2, 3, 227, 227, 96, 11, 11, 4, 0);
  CHECK(alexnet.P == 55);
  CHECK(alexnet.Q == 55);
  CHECK(alexnet.y.batch_stride == 96 * 55 * 55);
  const ConvShape odd = kernels::conv_shape(1, 3, 7, 5, 6, 3, 3, 2, 1);
  CHECK(odd.P == 4);
  CHECK(odd.Q == 3);

  CHECK(error_of([] { kernels::conv_shape(1, 6, 5, 5, 4, 3, 3, 1, 0, 4); }).find("groups 4 does not divide C 6") !=
        std::string::npos);
  CHECK(error_of([] { kernels::conv_shape(1, 4, 5, 5, 6, 3, 3, 1, 0, 4); }).find("groups 4 does not divide K 6") !=
        std::string::npos);
  CHECK(error_of([] { kernels::conv_shape(1, 1, 3, 3, 1, 5, 5, 1, 0); }).find("filter 5x5 larger") !=
        std::string::npos);
  CHECK(error_of([] { kernels::conv_shape(1, 1, 3, 3, 1, 2, 2, 0, 0); }).find("stride 0x0") != std::string::npos);
  ConvShape wrong_p = kernels::conv_shape(1, 1, 5, 5, 1, 3, 3, 1, 0);
  wrong_p.P = 4;
  CHECK(error_of([&] { kernels::check_conv_shape(wrong_p); }).find("output 4x3 should be 3x3") != std::string::npos);
  ConvShape no_placement = kernels::conv_shape(1, 1, 5, 5, 1, 3, 3, 1, 0);
  no_placement.x = Placement{};
  CHECK(error_of([&] { kernels::check_conv_shape(no_placement); }).find("x placement channel_stride 0") !=
        std::string::npos);
  // The kernels check too, before touching memory.
  CHECK_THROWS_AS(kernels::ref::conv_forward(wrong_p, nullptr, nullptr, nullptr, nullptr), std::invalid_argument);
  CHECK_THROWS_AS(kernels::cpu::conv_forward(wrong_p, nullptr, nullptr, nullptr, nullptr), std::invalid_argument);
}

TEST_CASE("ref conv matches a hand-computed 3x3 image with a 2x2 filter") {
  const Buffer x = {1, 2, 3, 4, 5, 6, 7, 8, 9};  // (1, 1, 3, 3)
  const Buffer w = {1, 2, 3, 4};                 // (1, 1, 2, 2)
  const Buffer b = {0.5f};

  SUBCASE("stride 1, no padding") {
    const ConvShape s = kernels::conv_shape(1, 1, 3, 3, 1, 2, 2, 1, 0);
    Buffer y(4);  // (1, 1, 2, 2)
    kernels::ref::conv_forward(s, x.data(), w.data(), b.data(), y.data());
    // y[p,q] = x[p,q] + 2 x[p,q+1] + 3 x[p+1,q] + 4 x[p+1,q+1] + 0.5
    CHECK(y == Buffer{37.5f, 47.5f, 67.5f, 77.5f});

    const Buffer ones(4, 1.f);  // dy (1, 1, 2, 2)
    Buffer dx(9);
    kernels::ref::conv_backward_data(s, ones.data(), w.data(), dx.data(), false);
    // Each pixel collects the filter taps whose window covers it.
    CHECK(dx == Buffer{1, 3, 2, 4, 10, 6, 3, 7, 4});
    Buffer dw(4);
    kernels::ref::conv_backward_filter(s, x.data(), ones.data(), dw.data(), false);
    // dw[r,s] = sum of the 2x2 block of x starting at (r, s).
    CHECK(dw == Buffer{12, 16, 24, 28});
  }
  SUBCASE("stride 2, padding 1") {
    const ConvShape s = kernels::conv_shape(1, 1, 3, 3, 1, 2, 2, 2, 1);
    REQUIRE(s.P == 2);
    Buffer y(4);
    kernels::ref::conv_forward(s, x.data(), w.data(), nullptr, y.data());
    // Windows start at (-1,-1), (-1,1), (1,-1), (1,1): y00 = 4*1, y01 = 3*2 + 4*3, y10 = 2*4 + 4*7,
    // y11 = 1*5 + 2*6 + 3*8 + 4*9.
    CHECK(y == Buffer{4, 18, 36, 77});
  }
}

TEST_CASE("ref conv agrees with an independent direct formula, forward and (by adjointness) backward") {
  for (const Case& c : awkward_cases()) {
    INFO(c.name);
    const ConvShape& s = c.s;
    const int64_t x_plane = int64_t(s.H) * s.W, y_plane = int64_t(s.P) * s.Q;
    const Buffer x = random_vector(x_size(s), 11), w = random_vector(w_size(s), 12), b = random_vector(s.K, 13);
    Buffer y = random_vector(y_size(s), 14);
    kernels::ref::conv_forward(s, x.data(), w.data(), b.data(), y.data());
    const Buffer x_dense = to_dense(x, s.x, s.N, s.C, x_plane);
    const Buffer y_direct = direct_forward(s, x_dense, w, b);
    expect_close(to_dense(y, s.y, s.N, s.K, y_plane), y_direct, 1e-5f, 1e-5f, c.name + " forward");

    // <A x, dy> = <x, A^T dy> for the linear map A: x -> conv(x, w), and likewise for w -> conv(x, w).
    const Buffer dy = random_vector(y_size(s), 15);
    const Buffer dy_dense = to_dense(dy, s.y, s.N, s.K, y_plane);
    const double forward_dot = dot(direct_forward(s, x_dense, w, {}), dy_dense);
    Buffer dx(x_size(s), 0.f), dw(w_size(s));
    kernels::ref::conv_backward_data(s, dy.data(), w.data(), dx.data(), false);
    kernels::ref::conv_backward_filter(s, x.data(), dy.data(), dw.data(), false);
    CHECK(dot(x_dense, to_dense(dx, s.x, s.N, s.C, x_plane)) == doctest::Approx(forward_dot).epsilon(1e-5));
    CHECK(dot(w, dw) == doctest::Approx(forward_dot).epsilon(1e-5));
  }
}

TEST_CASE("ref conv gradients match central differences on awkward shapes") {
  std::vector<Case> cases = awkward_cases();
  for (const bool accumulate : {false, true}) {
    for (const Case& c : cases) {
      const std::string name = c.name + (accumulate ? " (accumulate)" : "");
      INFO(name);
      const ConvShape& s = c.s;
      const int64_t x_plane = int64_t(s.H) * s.W, y_plane = int64_t(s.P) * s.Q;
      Buffer x = random_vector(x_size(s), 21), w = random_vector(w_size(s), 22), b = random_vector(s.K, 23);
      const Buffer r = random_vector(y_size(s), 24);         // dL/dy, also read outside the slice if a kernel errs
      const Buffer y_before = random_vector(y_size(s), 25);  // entries outside the y slice must survive
      Buffer y = y_before;
      auto loss = [&] {
        kernels::ref::conv_forward(s, x.data(), w.data(), b.data(), y.data());
        return weighted_sum(y, r);
      };
      loss();
      expect_untouched(y, y_before, s.y, s.N, s.K, y_plane, name + " y");

      // Gradient buffers start with random contents: overwritten (accumulate off) or added to (accumulate on).
      const Buffer dx_before = random_vector(x_size(s), 26);
      Buffer dx = dx_before;
      kernels::ref::conv_backward_data(s, r.data(), w.data(), dx.data(), accumulate);
      expect_untouched(dx, dx_before, s.x, s.N, s.C, x_plane, name + " dx");
      Buffer dx_analytic(dx.size(), 0.f);
      for (size_t i = 0; i < dx.size(); ++i) {
        if (inside(s.x, s.N, s.C, x_plane, i)) dx_analytic[i] = accumulate ? dx[i] - dx_before[i] : dx[i];
      }
      check_gradient(x, dx_analytic, loss, name + " dx");

      const Buffer dw_before = random_vector(w_size(s), 27);
      Buffer dw = dw_before;
      kernels::ref::conv_backward_filter(s, x.data(), r.data(), dw.data(), accumulate);
      Buffer dw_analytic(dw.size());
      for (size_t i = 0; i < dw.size(); ++i) dw_analytic[i] = accumulate ? dw[i] - dw_before[i] : dw[i];
      check_gradient(w, dw_analytic, loss, name + " dw");

      // The conv's bias gradient is bias_backward over dy placed like y.
      const kernels::ActShape act{s.N, s.K, s.P, s.Q, s.y, s.y};
      const Buffer db_before = random_vector(s.K, 28);
      Buffer db = db_before;
      kernels::ref::bias_backward(act, r.data(), db.data(), accumulate);
      Buffer db_analytic(db.size());
      for (size_t i = 0; i < db.size(); ++i) db_analytic[i] = accumulate ? db[i] - db_before[i] : db[i];
      check_gradient(b, db_analytic, loss, name + " db");
    }
  }
}

TEST_CASE(
    "fast conv matches the reference on every ISA: forward, backward data and filter, bias, accumulate, "
    "placements") {
  std::vector<Case> cases = awkward_cases();
  for (const Case& c : block_cases()) cases.push_back(c);
  const float atol = 1e-4f, rtol = 1e-4f;
  const CpuIsa saved = kernels::cpu::active_cpu_isa();
  for (const CpuIsa isa : supported_isas()) {
    kernels::cpu::set_active_cpu_isa(isa);
    for (const bool accumulate : {false, true}) {
      for (const Case& c : cases) {
        const std::string name =
            c.name + (accumulate ? " (accumulate / bias)" : "") + " on " + kernels::cpu::cpu_isa_name(isa);
        INFO(name);
        const ConvShape& s = c.s;
        const int64_t x_plane = int64_t(s.H) * s.W, y_plane = int64_t(s.P) * s.Q;
        const Buffer x = random_vector(x_size(s), 31), w = random_vector(w_size(s), 32), b = random_vector(s.K, 33);
        const float* bias = accumulate ? b.data() : nullptr;  // bias on in the accumulate pass, off in the other

        const Buffer y_before = random_vector(y_size(s), 34);
        Buffer y_ref = y_before, y_fast = y_before;
        kernels::ref::conv_forward(s, x.data(), w.data(), bias, y_ref.data());
        kernels::cpu::conv_forward(s, x.data(), w.data(), bias, y_fast.data());
        expect_close(y_fast, y_ref, atol, rtol, name + " forward");
        expect_untouched(y_fast, y_before, s.y, s.N, s.K, y_plane, name + " fast y");
        // The fused epilogue (issue 7's conv + bias + ReLU): the unfused result through the ReLU, bit for bit.
        Buffer y_fused = y_before, y_relu = y_fast;
        kernels::cpu::conv_forward(s, x.data(), w.data(), bias, y_fused.data(), kernels::ConvEpilogue{true});
        for (int n = 0; n < s.N; ++n)
          for (int k = 0; k < s.K; ++k)
            for (int64_t i = 0; i < y_plane; ++i) {
              float& v = y_relu[size_t(s.y.plane(n, k) + i)];
              v = v < 0.f ? 0.f : v;
            }
        CHECK_MESSAGE(y_fused == y_relu, name << ": fused bias + ReLU differs from conv then ReLU");

        const Buffer dy = random_vector(y_size(s), 35);
        const Buffer dx_before = random_vector(x_size(s), 36);
        Buffer dx_ref = dx_before, dx_fast = dx_before;
        kernels::ref::conv_backward_data(s, dy.data(), w.data(), dx_ref.data(), accumulate);
        kernels::cpu::conv_backward_data(s, dy.data(), w.data(), dx_fast.data(), accumulate);
        expect_close(dx_fast, dx_ref, atol, rtol, name + " backward data");
        expect_untouched(dx_fast, dx_before, s.x, s.N, s.C, x_plane, name + " fast dx");

        const Buffer dw_before = random_vector(w_size(s), 37);
        Buffer dw_ref = dw_before, dw_fast = dw_before;
        kernels::ref::conv_backward_filter(s, x.data(), dy.data(), dw_ref.data(), accumulate);
        kernels::cpu::conv_backward_filter(s, x.data(), dy.data(), dw_fast.data(), accumulate);
        expect_close(dw_fast, dw_ref, atol, rtol, name + " backward filter");
      }
    }
  }
  kernels::cpu::set_active_cpu_isa(saved);
}

TEST_CASE("backward data by phases matches the reference on every strided case and ISA, whatever the rule says") {
  // The phases' arithmetic for any stride up to 4, padding, groups and placement, also where the rule keeps col.
  std::vector<Case> cases;
  for (const Case& c : awkward_cases())
    if (c.s.stride_h > 1 || c.s.stride_w > 1) cases.push_back(c);
  cases.push_back({"3x3 stride 4x3 pad 1, C5 K7 on 13x11 (phases of 1 and 0 taps)", [] {
                     ConvShape s = kernels::conv_shape(2, 5, 13, 11, 7, 3, 3, 1, 1);
                     s.stride_h = 4, s.stride_w = 3, s.P = (13 + 2 - 3) / 4 + 1, s.Q = (11 + 2 - 3) / 3 + 1;
                     s.y = Placement::dense(s.K, s.P, s.Q);
                     return s;
                   }()});
  REQUIRE(cases.size() >= 10);
  const CpuIsa saved = kernels::cpu::active_cpu_isa();
  for (const CpuIsa isa : supported_isas()) {
    kernels::cpu::set_active_cpu_isa(isa);
    for (const bool accumulate : {false, true})
      for (const Case& c : cases) {
        const std::string name =
            c.name + (accumulate ? " (accumulate)" : "") + " on " + std::string(kernels::cpu::cpu_isa_name(isa));
        INFO(name);
        const ConvShape& s = c.s;
        const Buffer dy = random_vector(y_size(s), 51), w = random_vector(w_size(s), 52);
        const Buffer dx_before = random_vector(x_size(s), 53);
        Buffer dx_ref = dx_before, dx_phases = dx_before;
        kernels::ref::conv_backward_data(s, dy.data(), w.data(), dx_ref.data(), accumulate);
        kernels::cpu::conv_backward_data_by_phases(s, dy.data(), w.data(), dx_phases.data(), accumulate);
        expect_close(dx_phases, dx_ref, 1e-4f, 1e-4f, name);
        expect_untouched(dx_phases, dx_before, s.x, s.N, s.C, int64_t(s.H) * s.W, name + " dx");
      }
  }
  kernels::cpu::set_active_cpu_isa(saved);
  ConvShape too_far = kernels::conv_shape(1, 16, 20, 20, 12, 3, 3, 5, 0);
  const Buffer dy = random_vector(y_size(too_far), 1), w = random_vector(w_size(too_far), 2);
  Buffer dx(x_size(too_far));
  CHECK(error_of([&] {
          kernels::cpu::conv_backward_data_by_phases(too_far, dy.data(), w.data(), dx.data(), false);
        }).find("stride 5x5 beyond 4") != std::string::npos);
}

TEST_CASE("fast conv is deterministic on every ISA: same bits run to run and for any thread count") {
  // Batch 5 with groups 2 and padding takes the im2col path with many (image, group) items; batch 1 with C10 5x5
  // has backward data cut into channel blocks and backward filter into row blocks, more items than threads.
  const std::vector<Case> cases = {
      {"batch 5, groups 2, slices", placed(kernels::conv_shape(5, 6, 9, 8, 8, 3, 3, 1, 1, 2), 1, 8, 0, 8)},
      {"batch 1, C10 5x5: channel and row blocks", kernels::conv_shape(1, 10, 9, 7, 5, 5, 5, 1, 2)},
      {"batch 5, C16 3x3 stride 2: backward data by phases, an image per item",
       kernels::conv_shape(5, 16, 15, 13, 12, 3, 3, 2, 0)}};
  const CpuIsa saved = kernels::cpu::active_cpu_isa();
  for (const CpuIsa isa : supported_isas()) {
    kernels::cpu::set_active_cpu_isa(isa);
    for (const Case& c : cases) {
      INFO(c.name << " on " << std::string(kernels::cpu::cpu_isa_name(isa)));
      const ConvShape& s = c.s;
      const Buffer x = random_vector(x_size(s), 41), w = random_vector(w_size(s), 42), b = random_vector(s.K, 43);
      const Buffer dy = random_vector(y_size(s), 44);
      struct Outputs {
        Buffer y, dx, dw;
      };
      auto run = [&](int threads) {
        const int saved = omp_get_max_threads();
        omp_set_num_threads(threads);
        Outputs out{Buffer(y_size(s), 0.f), Buffer(x_size(s), 0.f), Buffer(w_size(s), 0.f)};
        kernels::cpu::conv_forward(s, x.data(), w.data(), b.data(), out.y.data());
        kernels::cpu::conv_backward_data(s, dy.data(), w.data(), out.dx.data(), false);
        kernels::cpu::conv_backward_filter(s, x.data(), dy.data(), out.dw.data(), false);
        omp_set_num_threads(saved);
        return out;
      };
      auto same_bits = [](const Buffer& a, const Buffer& b) {
        return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
      };
      const Outputs first = run(2), again = run(2), one_thread = run(1), three_threads = run(3);
      CHECK(same_bits(first.dw, again.dw));
      CHECK(same_bits(first.dw, one_thread.dw));
      CHECK(same_bits(first.dw, three_threads.dw));
      CHECK(same_bits(first.y, one_thread.y));
      CHECK(same_bits(first.dx, three_threads.dx));
      CHECK(same_bits(first.dx, one_thread.dx));
      // And the bits are the right ones.
      Buffer dw_ref(w_size(s));
      kernels::ref::conv_backward_filter(s, x.data(), dy.data(), dw_ref.data(), false);
      expect_close(first.dw, dw_ref, 1e-4f, 1e-4f, c.name + " deterministic backward filter");
    }
  }
  kernels::cpu::set_active_cpu_isa(saved);
}

// ---- GPU kernels ----
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
struct GpuCase {
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

std::vector<GpuCase> cases() {
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
  for (const GpuCase& cs : cases()) {
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
  for (const GpuCase& cs : cases()) {
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
  for (const GpuCase& cs : cases()) {
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
