// Fully connected and bias kernels: the reference against hand-computed numbers and its convolution twin,
// gradient checks, the fast path (on every instruction set this CPU runs) against the reference with strided rows,
// misaligned pointers and accumulate, and bias add / reduce.
#include "kernels/linear.h"

#include <omp.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/conv.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/elementwise.h"
#include "tests/support/check.h"
#include "tests/support/cpu_kernel_cases.h"

using kernels::LinearShape;
using kernels::Placement;
using kernels::cpu::CpuIsa;
using testing_support::check_gradient;
using testing_support::expect_close;
using testing_support::random_vector;
using testing_support::supported_isas;
using testing_support::weighted_sum;

namespace {

using Buffer = std::vector<float>;

// A linear layer whose x rows live at column x_column of x_row_stride-wide rows (likewise y): a column slice.
struct Case {
  std::string name;
  LinearShape s;
  int x_column = 0, y_column = 0;
};

LinearShape strided(int N, int I, int O, int64_t x_row_stride, int64_t y_row_stride) {
  return {N, I, O, x_row_stride, y_row_stride};
}

size_t x_size(const Case& c) {
  return size_t(c.s.N * c.s.x_row_stride);
}
size_t y_size(const Case& c) {
  return size_t(c.s.N * c.s.y_row_stride);
}
size_t w_size(const Case& c) {
  return size_t(c.s.O) * c.s.I;
}

// Whether buffer index i is one of the `width` entries at `column` of a row `stride` wide.
bool inside(size_t i, int64_t stride, int column, int width) {
  const int64_t at = int64_t(i) % stride;
  return at >= column && at < column + width;
}

void expect_untouched(const Buffer& buffer, const Buffer& before, int64_t stride, int column, int width,
                      const std::string& what) {
  size_t changed = 0;
  for (size_t i = 0; i < buffer.size(); ++i) {
    if (!inside(i, stride, column, width) && buffer[i] != before[i]) ++changed;
  }
  CHECK_MESSAGE(changed == 0, what << ": " << changed << " entries outside the rows changed");
}

std::vector<Case> cases() {
  return {{"1x1x1", kernels::linear_shape(1, 1, 1)},
          {"batch 1, I7 O5", kernels::linear_shape(1, 7, 5)},
          {"strided rows: x at column 2 of 10, y at column 1 of 9", strided(3, 7, 5, 10, 9), 2, 1},
          {"I150 O70: several blocks", kernels::linear_shape(4, 150, 70)},
          {"I300 O130, strided", strided(2, 300, 130, 311, 133), 5, 3},
          {"batch 1, I301 O53, rows at odd columns (misaligned)", strided(1, 301, 53, 303, 57), 1, 3},
          {"batch 67, I33 O500: many row tiles and column panels", kernels::linear_shape(67, 33, 500)}};
}

}  // namespace

TEST_CASE("ref linear matches a hand-computed example") {
  const LinearShape s = kernels::linear_shape(2, 3, 2);
  const Buffer x = {1, 2, 3, -1, 0, 2};  // (2, 3)
  const Buffer w = {1, 0, -1, 2, 1, 0};  // (2, 3)
  const Buffer b = {0.5f, -1};
  Buffer y(4);  // (2, 2)
  kernels::ref::linear_forward(s, x.data(), w.data(), b.data(), y.data());
  // y[n,o] = b[o] + w[o,:] . x[n,:]
  CHECK(y == Buffer{1 - 3 + 0.5f, 2 + 2 - 1, -1 - 2 + 0.5f, -2 + 0 - 1});

  const Buffer dy = {1, 2, 0, -1};  // (2, 2)
  Buffer dx(6), dw(6);
  kernels::ref::linear_backward_data(s, dy.data(), w.data(), dx.data(), false);
  // dx[n,:] = sum_o dy[n,o] w[o,:]
  CHECK(dx == Buffer{1 + 4, 0 + 2, -1 + 0, -2, -1, 0});
  kernels::ref::linear_backward_weight(s, x.data(), dy.data(), dw.data(), false);
  // dw[o,:] = sum_n dy[n,o] x[n,:]
  CHECK(dw == Buffer{1, 2, 3, 2 + 1, 4, 6 - 2});

  CHECK_THROWS_AS(kernels::cpu::linear_forward(strided(2, 3, 2, 2, 2), x.data(), w.data(), b.data(), y.data()),
                  std::invalid_argument);
}

TEST_CASE("linear equals its convolution twin (same weight memory, filter as large as the input)") {
  // x (N, C, H, W) = (2, 3, 4, 5) flattened is (N, I = 60); w (O, C, H, W) = (6, 60).
  const kernels::ConvShape conv = kernels::conv_shape(2, 3, 4, 5, 6, 4, 5, 1, 0);
  REQUIRE(conv.P == 1);
  REQUIRE(conv.Q == 1);
  const LinearShape s = kernels::linear_shape(2, 60, 6);
  const Buffer x = random_vector(120, 1), w = random_vector(360, 2), b = random_vector(6, 3), dy = random_vector(12, 4);
  Buffer y_conv(12), y_linear(12), dx_conv(120), dx_linear(120), dw_conv(360), dw_linear(360);
  kernels::ref::conv_forward(conv, x.data(), w.data(), b.data(), y_conv.data());
  kernels::cpu::linear_forward(s, x.data(), w.data(), b.data(), y_linear.data());
  expect_close(y_linear, y_conv, 1e-5f, 1e-5f, "forward");
  kernels::ref::conv_backward_data(conv, dy.data(), w.data(), dx_conv.data(), false);
  kernels::cpu::linear_backward_data(s, dy.data(), w.data(), dx_linear.data(), false);
  expect_close(dx_linear, dx_conv, 1e-5f, 1e-5f, "backward data");
  kernels::ref::conv_backward_filter(conv, x.data(), dy.data(), dw_conv.data(), false);
  kernels::cpu::linear_backward_weight(s, x.data(), dy.data(), dw_linear.data(), false);
  expect_close(dw_linear, dw_conv, 1e-5f, 1e-5f, "backward weight");
}

TEST_CASE("ref linear gradients match central differences, strided rows, accumulate") {
  for (const bool accumulate : {false, true}) {
    for (const Case& c : cases()) {
      if (c.s.I > 100) continue;  // small shapes only: each checked entry costs two forward passes
      const std::string name = c.name + (accumulate ? " (accumulate)" : "");
      INFO(name);
      const LinearShape& s = c.s;
      Buffer x_buffer = random_vector(x_size(c), 1), w = random_vector(w_size(c), 2), b = random_vector(s.O, 3);
      const Buffer r = random_vector(y_size(c), 4);
      const Buffer y_before = random_vector(y_size(c), 5);
      Buffer y = y_before;
      auto loss = [&] {
        kernels::ref::linear_forward(s, x_buffer.data() + c.x_column, w.data(), b.data(), y.data() + c.y_column);
        return weighted_sum(y, r);
      };
      loss();
      expect_untouched(y, y_before, s.y_row_stride, c.y_column, s.O, name + " y");

      const Buffer dx_before = random_vector(x_size(c), 6);
      Buffer dx = dx_before;
      kernels::ref::linear_backward_data(s, r.data() + c.y_column, w.data(), dx.data() + c.x_column, accumulate);
      expect_untouched(dx, dx_before, s.x_row_stride, c.x_column, s.I, name + " dx");
      Buffer dx_analytic(dx.size(), 0.f);
      for (size_t i = 0; i < dx.size(); ++i) {
        if (inside(i, s.x_row_stride, c.x_column, s.I)) dx_analytic[i] = accumulate ? dx[i] - dx_before[i] : dx[i];
      }
      check_gradient(x_buffer, dx_analytic, loss, name + " dx");

      const Buffer dw_before = random_vector(w_size(c), 7);
      Buffer dw = dw_before;
      kernels::ref::linear_backward_weight(s, x_buffer.data() + c.x_column, r.data() + c.y_column, dw.data(),
                                           accumulate);
      Buffer dw_analytic(dw.size());
      for (size_t i = 0; i < dw.size(); ++i) dw_analytic[i] = accumulate ? dw[i] - dw_before[i] : dw[i];
      check_gradient(w, dw_analytic, loss, name + " dw");

      // db is bias_backward over dy seen as (N, O, 1, 1) with rows y_row_stride apart.
      const Placement rows{s.y_row_stride, 1, c.y_column};
      const kernels::ActShape act{s.N, s.O, 1, 1, rows, rows};
      const Buffer db_before = random_vector(s.O, 8);
      Buffer db = db_before;
      kernels::ref::bias_backward(act, r.data(), db.data(), accumulate);
      Buffer db_analytic(db.size());
      for (size_t i = 0; i < db.size(); ++i) db_analytic[i] = accumulate ? db[i] - db_before[i] : db[i];
      check_gradient(b, db_analytic, loss, name + " db");
    }
  }
}

TEST_CASE("fast linear matches the reference on every ISA: bias, strided rows, misaligned, accumulate") {
  const float atol = 1e-4f, rtol = 1e-4f;
  const CpuIsa saved = kernels::cpu::active_cpu_isa();
  for (const CpuIsa isa : supported_isas()) {
    kernels::cpu::set_active_cpu_isa(isa);
    for (const bool accumulate : {false, true}) {
      for (const Case& c : cases()) {
        const std::string name =
            c.name + (accumulate ? " (accumulate / bias)" : "") + " on " + kernels::cpu::cpu_isa_name(isa);
        INFO(name);
        const LinearShape& s = c.s;
        const Buffer x = random_vector(x_size(c), 11), w = random_vector(w_size(c), 12), b = random_vector(s.O, 13);
        const float* bias = accumulate ? b.data() : nullptr;
        const float* x_rows = x.data() + c.x_column;

        const Buffer y_before = random_vector(y_size(c), 14);
        Buffer y_ref = y_before, y_fast = y_before;
        kernels::ref::linear_forward(s, x_rows, w.data(), bias, y_ref.data() + c.y_column);
        kernels::cpu::linear_forward(s, x_rows, w.data(), bias, y_fast.data() + c.y_column);
        expect_close(y_fast, y_ref, atol, rtol, name + " forward");
        expect_untouched(y_fast, y_before, s.y_row_stride, c.y_column, s.O, name + " fast y");

        const Buffer dy = random_vector(y_size(c), 15);
        const float* dy_rows = dy.data() + c.y_column;
        const Buffer dx_before = random_vector(x_size(c), 16);
        Buffer dx_ref = dx_before, dx_fast = dx_before;
        kernels::ref::linear_backward_data(s, dy_rows, w.data(), dx_ref.data() + c.x_column, accumulate);
        kernels::cpu::linear_backward_data(s, dy_rows, w.data(), dx_fast.data() + c.x_column, accumulate);
        expect_close(dx_fast, dx_ref, atol, rtol, name + " backward data");
        expect_untouched(dx_fast, dx_before, s.x_row_stride, c.x_column, s.I, name + " fast dx");

        const Buffer dw_before = random_vector(w_size(c), 17);
        Buffer dw_ref = dw_before, dw_fast = dw_before;
        kernels::ref::linear_backward_weight(s, x_rows, dy_rows, dw_ref.data(), accumulate);
        kernels::cpu::linear_backward_weight(s, x_rows, dy_rows, dw_fast.data(), accumulate);
        expect_close(dw_fast, dw_ref, atol, rtol, name + " backward weight");
      }
    }
  }
  kernels::cpu::set_active_cpu_isa(saved);
}

TEST_CASE("fast linear gives the same bits for any thread count, on every ISA") {
  const LinearShape s = kernels::linear_shape(9, 200, 150);
  const Buffer x = random_vector(9 * 200, 21), w = random_vector(150 * 200, 22), dy = random_vector(9 * 150, 23);
  auto run = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    Buffer out(9 * 150 + 9 * 200 + 150 * 200);  // y (9, 150), dx (9, 200), dw (150, 200) back to back
    kernels::cpu::linear_forward(s, x.data(), w.data(), nullptr, out.data());
    kernels::cpu::linear_backward_data(s, dy.data(), w.data(), out.data() + 9 * 150, false);
    kernels::cpu::linear_backward_weight(s, x.data(), dy.data(), out.data() + 9 * 150 + 9 * 200, false);
    omp_set_num_threads(saved);
    return out;
  };
  const CpuIsa saved = kernels::cpu::active_cpu_isa();
  for (const CpuIsa isa : supported_isas()) {
    INFO(kernels::cpu::cpu_isa_name(isa));
    kernels::cpu::set_active_cpu_isa(isa);
    const Buffer one = run(1), two = run(2), three = run(3), again = run(3);
    CHECK(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(one.data(), three.data(), one.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(three.data(), again.data(), one.size() * sizeof(float)) == 0);
  }
  kernels::cpu::set_active_cpu_isa(saved);
}

TEST_CASE("ref bias: forward in place and into a slice, backward closed form and gradient check") {
  // x (2, 3, 5, 3) at channel 1 of a 5-channel buffer; y at channel 2 of a 6-channel buffer.
  const int N = 2, C = 3, H = 5, W = 3, plane = H * W;
  const Placement x_place{5 * plane, plane, 1}, y_place{6 * plane, plane, 2};
  const kernels::ActShape s{N, C, H, W, x_place, y_place};
  Buffer x = random_vector(N * 5 * plane, 1), b = random_vector(C, 2);

  SUBCASE("forward into a slice: y = x + b[c], nothing else touched") {
    const Buffer y_before = random_vector(N * 6 * plane, 3);
    Buffer y = y_before;
    kernels::ref::bias_forward(s, x.data(), b.data(), y.data());
    size_t wrong = 0, touched = 0;
    for (int n = 0; n < N; ++n)
      for (int c = 0; c < C; ++c)
        for (int i = 0; i < plane; ++i) {
          if (y[y_place.plane(n, c) + i] != x[x_place.plane(n, c) + i] + b[c]) ++wrong;
        }
    for (size_t i = 0; i < y.size(); ++i) {
      const int64_t channel = int64_t(i) % (6 * plane) / plane;
      if ((channel < 2 || channel >= 2 + C) && y[i] != y_before[i]) ++touched;
    }
    CHECK(wrong == 0);
    CHECK(touched == 0);
  }
  SUBCASE("forward in place (x == y)") {
    const kernels::ActShape in_place{N, C, H, W, x_place, x_place};
    const Buffer x_before = x;
    kernels::ref::bias_forward(in_place, x.data(), b.data(), x.data());
    for (size_t i = 0; i < x.size(); ++i) {
      const int64_t channel = int64_t(i) % (5 * plane) / plane;
      const bool in_slice = channel >= 1 && channel < 1 + C;
      REQUIRE(x[i] == (in_slice ? x_before[i] + b[channel - 1] : x_before[i]));
    }
  }
  SUBCASE("backward: all-ones dy sums to N*H*W per channel; accumulate adds") {
    const Buffer ones(N * 6 * plane, 1.f);
    Buffer db = {10, 20, 30};
    kernels::ref::bias_backward(s, ones.data(), db.data(), true);
    CHECK(db == Buffer{10 + N * plane, 20 + N * plane, 30 + N * plane});
    kernels::ref::bias_backward(s, ones.data(), db.data(), false);
    CHECK(db == Buffer(3, float(N * plane)));
  }
  SUBCASE("backward matches central differences") {
    const Buffer r = random_vector(N * 6 * plane, 4);
    Buffer y = random_vector(N * 6 * plane, 5);
    auto loss = [&] {
      kernels::ref::bias_forward(s, x.data(), b.data(), y.data());
      return weighted_sum(y, r);
    };
    Buffer db(C);
    kernels::ref::bias_backward(s, r.data(), db.data(), false);
    check_gradient(b, db, loss, "db");
  }
}
