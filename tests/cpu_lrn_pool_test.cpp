// The fast CPU LRN and pooling (kernels/cpu/lrn_fast.cpp, pool_fast.cpp) against the plain-loop references, on every
// instruction set this CPU runs: batch 1, odd sizes, C below and above the LRN window, even window sizes, channel
// offsets into wider buffers (the rest untouched), accumulate on, pooling with stride 1-3, padding, partial CEIL
// windows, global windows, rectangular images, and ties; bit-identical for 1 and 2 threads.
//
// Tolerances: LRN sums in float where the reference sums in double: 2e-6 relative. Pool backward and max forward
// follow the reference's order, so they must match exactly; avg forward sums rows first: 1e-6 relative.
#include <doctest/doctest.h>
#include <omp.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_isa.h"
#include "kernels/lrn.h"
#include "kernels/pool.h"
#include "tests/support/check.h"
#include "tests/support/cpu_kernel_cases.h"
#include "tests/support/placed_tensor.h"

using kernels::LrnShape;
using kernels::PoolMethod;
using kernels::PoolShape;
using kernels::cpu::CpuIsa;
using testing_support::expect_close;
using testing_support::PlacedTensor;
using testing_support::supported_isas;

namespace {

// Runs f on every ISA with the switch restored afterwards, and the thread count restored.
template <typename F>
void on_every_isa(F f) {
  const CpuIsa saved = kernels::cpu::active_cpu_isa();
  const int threads = omp_get_max_threads();
  for (const CpuIsa isa : supported_isas()) {
    kernels::cpu::set_active_cpu_isa(isa);
    f(std::string(kernels::cpu::cpu_isa_name(isa)));
  }
  kernels::cpu::set_active_cpu_isa(saved);
  omp_set_num_threads(threads);
}

struct LrnCase {
  int N, C, H, W, size;
  float alpha, beta, k;
  int x_extra, y_extra;  // channels of the wider buffers around x (and dx) and y (and dy)
};

void check_lrn(const LrnCase& t, bool accumulate, const std::string& isa) {
  const std::string what = "lrn N" + std::to_string(t.N) + " C" + std::to_string(t.C) + " " + std::to_string(t.H) +
                           "x" + std::to_string(t.W) + " size " + std::to_string(t.size) + " beta " +
                           std::to_string(t.beta) + (accumulate ? " accumulate" : "") + " on " + isa;
  INFO(what);
  PlacedTensor x(t.N, t.C, t.H, t.W, t.C + t.x_extra, t.x_extra / 2, 1);
  PlacedTensor y_ref(t.N, t.C, t.H, t.W, t.C + t.y_extra, t.y_extra, 2);
  PlacedTensor y(t.N, t.C, t.H, t.W, t.C + t.y_extra, t.y_extra, 2);
  PlacedTensor dy(t.N, t.C, t.H, t.W, t.C + t.y_extra, t.y_extra, 3);
  PlacedTensor dx_ref(t.N, t.C, t.H, t.W, t.C + t.x_extra, t.x_extra / 2, 4);
  PlacedTensor dx(t.N, t.C, t.H, t.W, t.C + t.x_extra, t.x_extra / 2, 4);
  LrnShape s;
  s.N = t.N, s.C = t.C, s.H = t.H, s.W = t.W, s.size = t.size, s.alpha = t.alpha, s.beta = t.beta, s.k = t.k;
  s.x = x.place();
  s.y = y.place();
  const auto y_before = y.buffer(), dx_before = dx.buffer();

  kernels::ref::lrn_forward(s, x.data(), y_ref.data());
  omp_set_num_threads(1);
  kernels::cpu::lrn_forward(s, x.data(), y.data());
  expect_close(y.logical(), y_ref.logical(), 1e-7f, 2e-6f, what + " forward");
  y.expect_outside_unchanged(y_before, what + " forward");
  const auto y_one = y.buffer();
  omp_set_num_threads(2);
  kernels::cpu::lrn_forward(s, x.data(), y.data());
  CHECK_MESSAGE(y.buffer() == y_one, what << ": forward differs between 1 and 2 threads");

  // Backward at the reference's y, so both see the same inputs.
  kernels::ref::lrn_backward(s, x.data(), y_ref.data(), dy.data(), dx_ref.data(), accumulate);
  omp_set_num_threads(1);
  kernels::cpu::lrn_backward(s, x.data(), y_ref.data(), dy.data(), dx.data(), accumulate);
  expect_close(dx.logical(), dx_ref.logical(), 1e-6f, 2e-6f, what + " backward");
  dx.expect_outside_unchanged(dx_before, what + " backward");
  const auto dx_one = dx.buffer();
  if (!accumulate) {
    omp_set_num_threads(2);
    kernels::cpu::lrn_backward(s, x.data(), y_ref.data(), dy.data(), dx.data(), accumulate);
    CHECK_MESSAGE(dx.buffer() == dx_one, what << ": backward differs between 1 and 2 threads");
  }
}

struct PoolCase {
  int N, C, H, W, kernel, stride, pad;
  bool global;
  int x_extra, y_extra;
};

void check_pool(const PoolCase& t, PoolMethod method, bool accumulate, bool ties, const std::string& isa) {
  PoolShape s = kernels::pool_shape(t.N, t.C, t.H, t.W, method, t.kernel, t.stride, t.pad, t.global);
  const std::string what = std::string(method == PoolMethod::max ? "max" : "avg") + " pool N" + std::to_string(t.N) +
                           " C" + std::to_string(t.C) + " " + std::to_string(t.H) + "x" + std::to_string(t.W) + " k" +
                           std::to_string(s.R) + "x" + std::to_string(s.S) + " s" + std::to_string(t.stride) + " p" +
                           std::to_string(t.pad) + (accumulate ? " accumulate" : "") + (ties ? " ties" : "") + " on " +
                           isa;
  INFO(what);
  PlacedTensor x(t.N, t.C, t.H, t.W, t.C + t.x_extra, t.x_extra, 5);
  if (ties) {  // few distinct values: the first maximum in row-major order must win
    auto v = x.logical();
    for (auto& e : v) e = float(int((e + 1.f) * 2.f)) * 0.5f;
    x.set_logical(v);
  }
  PlacedTensor y_ref(t.N, t.C, s.P, s.Q, t.C + t.y_extra, t.y_extra / 2, 6);
  PlacedTensor y(t.N, t.C, s.P, s.Q, t.C + t.y_extra, t.y_extra / 2, 6);
  PlacedTensor dy(t.N, t.C, s.P, s.Q, t.C + t.y_extra, t.y_extra / 2, 7);
  PlacedTensor dx_ref(t.N, t.C, t.H, t.W, t.C + t.x_extra, t.x_extra, 8);
  PlacedTensor dx(t.N, t.C, t.H, t.W, t.C + t.x_extra, t.x_extra, 8);
  s.x = x.place();
  s.y = y.place();
  const auto y_before = y.buffer(), dx_before = dx.buffer();

  kernels::ref::pool_forward(s, x.data(), y_ref.data());
  omp_set_num_threads(1);
  kernels::cpu::pool_forward(s, x.data(), y.data());
  if (method == PoolMethod::max) {
    CHECK_MESSAGE(y.logical() == y_ref.logical(), what << ": max forward differs from the reference");
  } else {
    expect_close(y.logical(), y_ref.logical(), 1e-7f, 1e-6f, what + " forward");
  }
  y.expect_outside_unchanged(y_before, what + " forward");
  const auto y_one = y.buffer();
  omp_set_num_threads(2);
  kernels::cpu::pool_forward(s, x.data(), y.data());
  CHECK_MESSAGE(y.buffer() == y_one, what << ": forward differs between 1 and 2 threads");

  kernels::ref::pool_backward(s, x.data(), dy.data(), dx_ref.data(), accumulate);
  omp_set_num_threads(1);
  kernels::cpu::pool_backward(s, x.data(), dy.data(), dx.data(), accumulate);
  CHECK_MESSAGE(dx.logical() == dx_ref.logical(), what << ": backward differs from the reference");
  dx.expect_outside_unchanged(dx_before, what + " backward");
  if (!accumulate) {
    const auto dx_one = dx.buffer();
    omp_set_num_threads(2);
    kernels::cpu::pool_backward(s, x.data(), dy.data(), dx.data(), accumulate);
    CHECK_MESSAGE(dx.buffer() == dx_one, what << ": backward differs between 1 and 2 threads");
  }
}

}  // namespace

TEST_CASE("fast LRN matches the reference on awkward shapes, every ISA, 1 and 2 threads") {
  const LrnCase cases[] = {
      {1, 1, 1, 1, 5, 1e-4f, 0.75f, 1.f, 0, 0},    // one channel: the window is clipped on both sides
      {2, 3, 5, 7, 5, 1e-4f, 0.75f, 1.f, 2, 1},    // C < size
      {1, 13, 11, 13, 5, 0.5f, 0.75f, 2.f, 3, 2},  // large alpha: the cross term matters; 143 pixels (2 runs)
      {3, 9, 17, 19, 4, 0.3f, 0.6f, 1.5f, 0, 4},   // even size (asymmetric window), beta != 0.75: the pow path
      {2, 6, 3, 45, 3, 1e-2f, 0.75f, 1.f, 1, 0},   // runs ending mid-row
  };
  on_every_isa([&](const std::string& isa) {
    for (const LrnCase& t : cases)
      for (const bool accumulate : {false, true}) check_lrn(t, accumulate, isa);
  });
}

TEST_CASE("fast pooling matches the reference on awkward shapes, every ISA, 1 and 2 threads") {
  const PoolCase cases[] = {
      {1, 1, 1, 1, 1, 1, 0, false, 0, 0},    // one cell
      {2, 3, 13, 13, 3, 2, 0, false, 2, 1},  // AlexNet pool5 geometry: the last window is partial (CEIL)
      {1, 4, 9, 7, 2, 2, 0, false, 0, 3},    // rectangular, last column alone
      {3, 2, 11, 10, 3, 1, 1, false, 1, 1},  // stride 1, pad 1 (inception's pool branch)
      {1, 5, 12, 17, 4, 3, 2, false, 0, 0},  // stride 3, pad 2: windows in the left and right padding
      {2, 3, 7, 5, 0, 1, 0, true, 1, 2},     // global
      {2, 3, 9, 43, 3, 2, 0, false, 0, 0},   // mapnet_bn_fine's pool1 rows: 21 windows inside each row
      {1, 2, 5, 40, 3, 1, 1, false, 1, 0},   // stride 1 pad 1 on wide rows: padded windows at both ends
      {1, 2, 7, 50, 3, 3, 1, false, 0, 1},   // stride 3 on wide rows
      {2, 3, 9, 9, 0, 1, 0, true, 0, 1},     // global over 81 cells
      {1, 2, 6, 2, 3, 2, 1, false, 0, 0},    // narrower than the window: no window lies wholly inside a row
  };
  on_every_isa([&](const std::string& isa) {
    for (const PoolCase& t : cases)
      for (const PoolMethod method : {PoolMethod::max, PoolMethod::avg})
        for (const bool accumulate : {false, true}) {
          check_pool(t, method, accumulate, false, isa);
          if (method == PoolMethod::max && !accumulate) check_pool(t, method, accumulate, true, isa);
        }
  });
}

TEST_CASE("fast max pooling's backward matches the reference where windows hold NaNs") {
  // With a NaN in a window the maximum depends on the order of the compares: the cell that gets dy must be the one the
  // reference's scan picks (it replaces only on a strictly greater value, so a NaN wins only as a window's first cell).
  const PoolCase cases[] = {{2, 3, 9, 43, 3, 2, 0, false, 0, 0}, {1, 2, 11, 10, 3, 1, 1, false, 1, 1}};
  for (const PoolCase& t : cases) {
    PoolShape s = kernels::pool_shape(t.N, t.C, t.H, t.W, PoolMethod::max, t.kernel, t.stride, t.pad, t.global);
    PlacedTensor x(t.N, t.C, t.H, t.W, t.C + t.x_extra, t.x_extra, 11);
    auto v = x.logical();
    for (size_t i = 0; i < v.size(); i += 7) v[i] = std::numeric_limits<float>::quiet_NaN();  // one cell in 7
    x.set_logical(v);
    PlacedTensor dy(t.N, t.C, s.P, s.Q, t.C + t.y_extra, t.y_extra / 2, 12);
    PlacedTensor dx_ref(t.N, t.C, t.H, t.W, t.C + t.x_extra, t.x_extra, 13);
    PlacedTensor dx(t.N, t.C, t.H, t.W, t.C + t.x_extra, t.x_extra, 13);
    s.x = x.place();
    s.y = dy.place();
    kernels::ref::pool_backward(s, x.data(), dy.data(), dx_ref.data(), false);
    kernels::cpu::pool_backward(s, x.data(), dy.data(), dx.data(), false);
    CHECK_MESSAGE(dx.logical() == dx_ref.logical(),
                  "max pool backward with NaNs differs from the reference, " << t.H << "x" << t.W);
  }
}
