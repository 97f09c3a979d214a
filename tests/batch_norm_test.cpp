// Batch normalisation reference: training forward against values computed by hand (statistics, saved and running
// statistics), inference as the per-channel affine map, backward against central differences of sum(y r) for dx,
// dgamma and dbeta, accumulate on and off, shape errors.
//
// GPU batch normalisation against kernels::ref: batch 1, channels with one value (M = 1: variance 0), sizes that
// are not powers of two, a channel with more values than a block has threads (each thread loops), more channels
// than the grid of a small GPU has blocks, a large mean (the two-pass variance), M = 0 and C = 0; forward training
// (y, saved and running statistics), inference, backward with accumulate on and off; on simt (every schedule) and
// cuda.
// Gradient check: step 1e-2, error <= 2e-4 max(1, |analytic|, |numeric|) (observed: under 5e-5).
// Tolerances (float sums on the GPU against the reference's double): |got - ref| <= 2e-5 max(1, max |ref|) + 2e-5
// |ref| for y, the statistics and dx; 1e-4 of the same scale for dgamma and dbeta (sums of M products). Observed
// errors are a few float ulps of the scale, 4e-6 of it where the mean is 50x the spread.
// The CPU fast path against the reference on the GPU cases and planes past a fold of its float lanes, with the same
// tolerances, and bit-identical on 1 and 3 threads.
// In graphs (engine/ops/batch_norm.cpp): gradients through autograd against central differences, the running
// statistics' update by hand, and at test time each image's answer independent of the batch (cpu and simt).
#include "kernels/batch_norm.h"

#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <tuple>
#include <vector>

#include "engine/autograd.h"
#include "engine/executor.h"
#include "kernels/gpu.h"
#include "nets/layers.h"
#include "tests/support/check.h"
#include "tests/support/gpu.h"

using namespace massmap;
using kernels::BatchNormShape;
using testing_support::expect_near_scaled;
using testing_support::random_vector;

namespace {

BatchNormShape shape(int N, int C, int H, int W) {
  BatchNormShape s;
  s.N = N, s.C = C, s.H = H, s.W = W;
  return s;
}

size_t count(const BatchNormShape& s) {
  return size_t(s.N) * s.C * s.H * s.W;
}

// The training-time output of the reference, with its own copies of the running statistics.
struct Forward {
  std::vector<float> y, saved_mean, saved_inv_std, running_mean, running_var;
};

Forward ref_forward(const BatchNormShape& s, const std::vector<float>& x, const std::vector<float>& gamma,
                    const std::vector<float>& beta, std::vector<float> running_mean, std::vector<float> running_var) {
  Forward f{std::vector<float>(count(s)), std::vector<float>(s.C), std::vector<float>(s.C), std::move(running_mean),
            std::move(running_var)};
  kernels::ref::batch_norm_forward_training(s, x.data(), gamma.data(), beta.data(), f.running_mean.data(),
                                            f.running_var.data(), f.y.data(), f.saved_mean.data(),
                                            f.saved_inv_std.data());
  return f;
}

}  // namespace

TEST_CASE("ref batch_norm training forward by hand") {
  // N 2, C 2, H 1, W 2. Channel 0 holds {1, 3} (n 0) and {5, 7} (n 1): mean 4, biased variance (9 + 1 + 1 + 9) / 4
  // = 5, unbiased 5 * 4 / 3 = 20 / 3. Channel 1 holds {-1, 1} and {1, -1}: mean 0, variance 1, unbiased 4 / 3.
  BatchNormShape s = shape(2, 2, 1, 2);
  s.eps = 0.25f, s.momentum = 0.5f;
  const std::vector<float> x = {1, 3, -1, 1, 5, 7, 1, -1};
  const std::vector<float> gamma = {2.f, -1.f}, beta = {0.5f, 3.f};
  const Forward f = ref_forward(s, x, gamma, beta, {1.f, -2.f}, {3.f, 0.f});
  // inv_std: 1 / sqrt(5 + 0.25) and 1 / sqrt(1 + 0.25).
  const double inv0 = 1.0 / std::sqrt(5.25), inv1 = 1.0 / std::sqrt(1.25);
  CHECK(f.saved_mean[0] == doctest::Approx(4.0));
  CHECK(f.saved_mean[1] == doctest::Approx(0.0));
  CHECK(f.saved_inv_std[0] == doctest::Approx(inv0).epsilon(1e-6));
  CHECK(f.saved_inv_std[1] == doctest::Approx(inv1).epsilon(1e-6));
  // Running: (1 - 0.5) old + 0.5 batch, with the unbiased batch variance.
  CHECK(f.running_mean[0] == doctest::Approx(0.5 * 1 + 0.5 * 4));
  CHECK(f.running_mean[1] == doctest::Approx(0.5 * -2 + 0.5 * 0));
  CHECK(f.running_var[0] == doctest::Approx(0.5 * 3 + 0.5 * 20.0 / 3).epsilon(1e-6));
  CHECK(f.running_var[1] == doctest::Approx(0.5 * 0 + 0.5 * 4.0 / 3).epsilon(1e-6));
  // y = gamma (x - mean) inv_std + beta.
  const std::vector<float> expected = {
      float(2 * -3 * inv0 + 0.5), float(2 * -1 * inv0 + 0.5), float(-1 * -1 * inv1 + 3), float(-1 * 1 * inv1 + 3),
      float(2 * 1 * inv0 + 0.5),  float(2 * 3 * inv0 + 0.5),  float(-1 * 1 * inv1 + 3),  float(-1 * -1 * inv1 + 3)};
  testing_support::expect_close(f.y, expected, 1e-6f, 1e-6f, "y");

  // A normalised channel has mean beta and (biased) variance gamma^2 var / (var + eps).
  for (int c = 0; c < 2; ++c) {
    double mean = 0, var = 0;
    for (int n = 0; n < 2; ++n)
      for (int i = 0; i < 2; ++i) mean += f.y[(n * 2 + c) * 2 + i] / 4.0;
    for (int n = 0; n < 2; ++n)
      for (int i = 0; i < 2; ++i) var += std::pow(f.y[(n * 2 + c) * 2 + i] - mean, 2) / 4.0;
    const double batch_var = c == 0 ? 5.0 : 1.0;
    CHECK(mean == doctest::Approx(beta[c]));
    CHECK(var == doctest::Approx(gamma[c] * gamma[c] * batch_var / (batch_var + 0.25)).epsilon(1e-6));
  }
}

TEST_CASE("ref batch_norm inference is the per-channel affine map of the running statistics") {
  const BatchNormShape s = shape(3, 4, 5, 2);
  const std::vector<float> x = random_vector(count(s), 1, -3.f, 3.f), gamma = random_vector(s.C, 2),
                           beta = random_vector(s.C, 3), mean = random_vector(s.C, 4),
                           var = random_vector(s.C, 5, 0.1f, 2.f);
  std::vector<float> y(count(s));
  kernels::ref::batch_norm_forward_inference(s, x.data(), gamma.data(), beta.data(), mean.data(), var.data(), y.data());
  std::vector<float> expected(count(s));
  for (int n = 0; n < s.N; ++n)
    for (int c = 0; c < s.C; ++c) {
      const double scale = gamma[c] / std::sqrt(double(var[c]) + s.eps), shift = beta[c] - scale * mean[c];
      for (int i = 0; i < s.H * s.W; ++i) {
        const size_t k = (size_t(n) * s.C + c) * s.H * s.W + i;
        expected[k] = float(scale * x[k] + shift);
      }
    }
  testing_support::expect_close(y, expected, 1e-6f, 1e-6f, "inference y");
}

TEST_CASE("ref batch_norm gradients match central differences") {
  // Loss sum(y r) for a fixed random r: dL/dy = r. Every argument of the training forward is perturbed in turn.
  // Shapes with M >= 2 (M = 1 has variance 0: y = beta, whatever x).
  struct Case {
    int N, C, H, W;
    bool accumulate;
  };
  for (const Case& k :
       {Case{3, 5, 7, 3, false}, Case{3, 5, 7, 3, true}, Case{2, 3, 1, 1, false}, Case{1, 2, 3, 4, true}}) {
    const BatchNormShape s = shape(k.N, k.C, k.H, k.W);
    CAPTURE(k.N);
    CAPTURE(k.C);
    CAPTURE(k.H);
    CAPTURE(k.W);
    CAPTURE(k.accumulate);
    std::vector<float> x = random_vector(count(s), 1, -2.f, 2.f), gamma = random_vector(s.C, 2, 0.5f, 1.5f),
                       beta = random_vector(s.C, 3);
    const std::vector<float> r = random_vector(count(s), 4), running(s.C, 0.f);
    const auto loss = [&] {
      return testing_support::weighted_sum(ref_forward(s, x, gamma, beta, running, running).y, r);
    };

    const Forward f = ref_forward(s, x, gamma, beta, running, running);
    // With accumulate, the buffers start at these values and must end at them plus the gradient.
    const std::vector<float> dx0 = random_vector(count(s), 5), dgamma0 = random_vector(s.C, 6),
                             dbeta0 = random_vector(s.C, 7);
    std::vector<float> dx = k.accumulate ? dx0 : std::vector<float>(count(s), NAN);
    std::vector<float> dgamma = k.accumulate ? dgamma0 : std::vector<float>(s.C, NAN);
    std::vector<float> dbeta = k.accumulate ? dbeta0 : std::vector<float>(s.C, NAN);
    kernels::ref::batch_norm_backward(s, x.data(), r.data(), gamma.data(), f.saved_mean.data(), f.saved_inv_std.data(),
                                      dx.data(), dgamma.data(), dbeta.data(), k.accumulate);
    if (k.accumulate) {
      for (size_t i = 0; i < dx.size(); ++i) dx[i] -= dx0[i];
      for (int c = 0; c < s.C; ++c) dgamma[c] -= dgamma0[c], dbeta[c] -= dbeta0[c];
    }
    // Step 1e-2 on a smooth function: the central difference and the float y err by a few 1e-5.
    testing_support::GradCheckOptions opt;
    opt.tolerance = 2e-4f;
    opt.max_entries = 400;
    testing_support::check_gradient(x, dx, loss, "batch_norm dx", opt);
    testing_support::check_gradient(gamma, dgamma, loss, "batch_norm dgamma", opt);
    testing_support::check_gradient(beta, dbeta, loss, "batch_norm dbeta", opt);
  }
}

TEST_CASE("ref batch_norm rejects bad shapes with a message") {
  BatchNormShape s = shape(1, 1, 1, 1);
  std::vector<float> v(4, 0.f);
  s.eps = 0.f;
  CHECK_THROWS_WITH_AS(kernels::ref::batch_norm_forward_training(s, v.data(), v.data(), v.data(), v.data(), v.data(),
                                                                 v.data(), v.data(), v.data()),
                       "batch_norm_forward_training: eps must be > 0", std::invalid_argument);
  s.eps = 1e-5f, s.momentum = 1.5f;
  CHECK_THROWS_WITH_AS(
      kernels::ref::batch_norm_forward_inference(s, v.data(), v.data(), v.data(), v.data(), v.data(), v.data()),
      "batch_norm_forward_inference: momentum must lie in [0, 1]", std::invalid_argument);
  s = shape(1, -1, 1, 1);
  CHECK_THROWS_WITH_AS(kernels::ref::batch_norm_backward(s, v.data(), v.data(), v.data(), v.data(), v.data(), v.data(),
                                                         v.data(), v.data(), false),
                       "batch_norm_backward: negative size", std::invalid_argument);
}

// ---- GPU kernels ----
using testing_support::DeviceBuffer;

namespace {

constexpr float kElementRel = 2e-5f, kSumRel = 1e-4f;

// Forward training, inference and backward (accumulate off, then on) of one shape against the reference.
// offset: added to x, so the mean dwarfs the spread where it is large.
void check_shape(const testing_support::GpuBackend& gpu, const BatchNormShape& s, float offset) {
  const size_t n = count(s);
  std::vector<float> x = random_vector(n, 1, -1.f, 1.f);
  for (float& v : x) v += offset;
  const std::vector<float> gamma = random_vector(s.C, 2, 0.5f, 1.5f), beta = random_vector(s.C, 3),
                           running_mean = random_vector(s.C, 4), running_var = random_vector(s.C, 5, 0.5f, 2.f),
                           dy = random_vector(n, 6);

  // Training forward. The outputs start NaN (simt poisons fresh device memory): every entry must be written.
  const Forward want = ref_forward(s, x, gamma, beta, running_mean, running_var);
  DeviceBuffer x_dev(gpu, x), gamma_dev(gpu, gamma), beta_dev(gpu, beta), rmean_dev(gpu, running_mean),
      rvar_dev(gpu, running_var), y_dev(gpu, n), smean_dev(gpu, s.C), sinv_dev(gpu, s.C);
  GPU_CALL(gpu, batch_norm_forward_training, s, x_dev.get(), gamma_dev.get(), beta_dev.get(), rmean_dev.get(),
           rvar_dev.get(), y_dev.get(), smean_dev.get(), sinv_dev.get(), gpu.stream());
  expect_near_scaled(y_dev.download(), want.y, kElementRel, "training y");
  expect_near_scaled(smean_dev.download(), want.saved_mean, kElementRel, "saved_mean");
  expect_near_scaled(sinv_dev.download(), want.saved_inv_std, kElementRel, "saved_inv_std");
  expect_near_scaled(rmean_dev.download(), want.running_mean, kElementRel, "running_mean");
  expect_near_scaled(rvar_dev.download(), want.running_var, kElementRel, "running_var");

  // Inference from the original running statistics.
  std::vector<float> want_inference(n);
  kernels::ref::batch_norm_forward_inference(s, x.data(), gamma.data(), beta.data(), running_mean.data(),
                                             running_var.data(), want_inference.data());
  rmean_dev.upload(running_mean);
  rvar_dev.upload(running_var);
  GPU_CALL(gpu, batch_norm_forward_inference, s, x_dev.get(), gamma_dev.get(), beta_dev.get(), rmean_dev.get(),
           rvar_dev.get(), y_dev.get(), gpu.stream());
  expect_near_scaled(y_dev.download(), want_inference, kElementRel, "inference y");

  // Backward from the reference's saved statistics (the same inputs on both sides), accumulate off then on.
  smean_dev.upload(want.saved_mean);
  sinv_dev.upload(want.saved_inv_std);
  DeviceBuffer dy_dev(gpu, dy), dx_dev(gpu, n), dgamma_dev(gpu, s.C), dbeta_dev(gpu, s.C);
  for (bool accumulate : {false, true}) {
    CAPTURE(accumulate);
    std::vector<float> dx = random_vector(n, 7), dgamma = random_vector(s.C, 8), dbeta = random_vector(s.C, 9);
    if (accumulate) {
      dx_dev.upload(dx), dgamma_dev.upload(dgamma), dbeta_dev.upload(dbeta);
    } else {  // NaN: must be overwritten, not added to
      dx_dev.upload(std::vector<float>(n, NAN));
      dgamma_dev.upload(std::vector<float>(s.C, NAN)), dbeta_dev.upload(std::vector<float>(s.C, NAN));
    }
    kernels::ref::batch_norm_backward(s, x.data(), dy.data(), gamma.data(), want.saved_mean.data(),
                                      want.saved_inv_std.data(), dx.data(), dgamma.data(), dbeta.data(), accumulate);
    GPU_CALL(gpu, batch_norm_backward, s, x_dev.get(), dy_dev.get(), gamma_dev.get(), smean_dev.get(), sinv_dev.get(),
             dx_dev.get(), dgamma_dev.get(), dbeta_dev.get(), accumulate, gpu.stream());
    expect_near_scaled(dx_dev.download(), dx, kElementRel, "dx");
    expect_near_scaled(dgamma_dev.download(), dgamma, kSumRel, "dgamma");
    expect_near_scaled(dbeta_dev.download(), dbeta, kSumRel, "dbeta");
  }
}

}  // namespace

GPU_TEST("batch_norm forward and backward") {
  struct Case {
    int N, C, H, W;
    float offset;
  };
  // (3,5,7,9): nothing a power of two; (1,3,1,1): M = 1; (2,3,25,27): M = 1350 > 1024 threads, each thread loops;
  // (2,300,1,3): 300 channels, 300 blocks; (4,2,5,5) around 50: the mean is 50x the spread.
  for (const Case& k : {Case{3, 5, 7, 9, 0.f}, Case{1, 3, 1, 1, 0.f}, Case{2, 3, 25, 27, 0.f}, Case{2, 300, 1, 3, 0.3f},
                        Case{4, 2, 5, 5, 50.f}, Case{1, 4, 6, 5, -2.f}}) {
    CAPTURE(k.N);
    CAPTURE(k.C);
    CAPTURE(k.H);
    CAPTURE(k.W);
    BatchNormShape s = shape(k.N, k.C, k.H, k.W);
    s.momentum = 0.3f;
    check_shape(gpu, s, k.offset);
  }
}

GPU_TEST("batch_norm with no values per channel or no channels") {
  // M = 0: training and inference write nothing (running statistics untouched); backward writes dgamma = dbeta = 0,
  // or leaves them as they were with accumulate, as the reference does.
  for (const BatchNormShape& s : {shape(0, 3, 4, 4), shape(2, 3, 0, 5), shape(2, 0, 3, 3)}) {
    CAPTURE(s.N);
    CAPTURE(s.C);
    CAPTURE(s.H);
    const std::vector<float> stats = random_vector(s.C, 1);
    DeviceBuffer x(gpu, 1), y(gpu, 1), gamma(gpu, stats), beta(gpu, stats), rmean(gpu, stats), rvar(gpu, stats),
        smean(gpu, stats), sinv(gpu, stats), dgamma(gpu, stats), dbeta(gpu, stats);
    GPU_CALL(gpu, batch_norm_forward_training, s, x.get(), gamma.get(), beta.get(), rmean.get(), rvar.get(), y.get(),
             smean.get(), sinv.get(), gpu.stream());
    GPU_CALL(gpu, batch_norm_forward_inference, s, x.get(), gamma.get(), beta.get(), rmean.get(), rvar.get(), y.get(),
             gpu.stream());
    testing_support::expect_close(rmean.download(), stats, 0, 0, "running_mean untouched");
    testing_support::expect_close(smean.download(), stats, 0, 0, "saved_mean untouched");
    GPU_CALL(gpu, batch_norm_backward, s, x.get(), x.get(), gamma.get(), smean.get(), sinv.get(), x.get(), dgamma.get(),
             dbeta.get(), true, gpu.stream());
    testing_support::expect_close(dgamma.download(), stats, 0, 0, "dgamma accumulates nothing");
    GPU_CALL(gpu, batch_norm_backward, s, x.get(), x.get(), gamma.get(), smean.get(), sinv.get(), x.get(), dgamma.get(),
             dbeta.get(), false, gpu.stream());
    testing_support::expect_close(dgamma.download(), std::vector<float>(s.C, 0.f), 0, 0, "dgamma = 0");
    testing_support::expect_close(dbeta.download(), std::vector<float>(s.C, 0.f), 0, 0, "dbeta = 0");
  }
}

GPU_TEST("batch_norm launchers reject a bad shape with the reference's words") {
  DeviceBuffer b(gpu, 4);
  BatchNormShape s = shape(1, 1, 2, 2);
  s.eps = -1.f;
  CHECK_THROWS_WITH_AS(GPU_CALL(gpu, batch_norm_forward_training, s, b.get(), b.get(), b.get(), b.get(), b.get(),
                                b.get(), b.get(), b.get(), gpu.stream()),
                       "batch_norm_forward_training: eps must be > 0", std::invalid_argument);
  s.eps = 1e-5f, s.momentum = -0.1f;
  CHECK_THROWS_WITH_AS(GPU_CALL(gpu, batch_norm_forward_inference, s, b.get(), b.get(), b.get(), b.get(), b.get(),
                                b.get(), gpu.stream()),
                       "batch_norm_forward_inference: momentum must lie in [0, 1]", std::invalid_argument);
  s = shape(1, 1, -2, 2);
  CHECK_THROWS_WITH_AS(GPU_CALL(gpu, batch_norm_backward, s, b.get(), b.get(), b.get(), b.get(), b.get(), b.get(),
                                b.get(), b.get(), false, gpu.stream()),
                       "batch_norm_backward: negative size", std::invalid_argument);
}

// ---- the CPU fast path against the reference ----------------------------------------------------------------

namespace {

// The cpu fast path's outputs for one shape: training forward, inference, backward with accumulate off and on.
struct CpuResults {
  Forward forward;
  std::vector<float> inference, dx, dgamma, dbeta, dx_acc, dgamma_acc, dbeta_acc;
};

struct BnInputs {
  std::vector<float> x, gamma, beta, running_mean, running_var, dy, dx0, dgamma0, dbeta0;
};

BnInputs bn_inputs(const BatchNormShape& s, float offset) {
  const size_t n = count(s);
  BnInputs in{random_vector(n, 1, -1.f, 1.f),
              random_vector(s.C, 2, 0.5f, 1.5f),
              random_vector(s.C, 3),
              random_vector(s.C, 4),
              random_vector(s.C, 5, 0.5f, 2.f),
              random_vector(n, 6),
              random_vector(n, 7),
              random_vector(s.C, 8),
              random_vector(s.C, 9)};
  for (float& v : in.x) v += offset;
  return in;
}

// Backward reads the statistics `saved` (the reference's, so both sides start from the same inputs).
CpuResults run_cpu(const BatchNormShape& s, const BnInputs& in, const Forward& saved) {
  const size_t n = count(s);
  CpuResults r;
  r.forward = Forward{std::vector<float>(n, NAN), std::vector<float>(s.C, NAN), std::vector<float>(s.C, NAN),
                      in.running_mean, in.running_var};
  kernels::cpu::batch_norm_forward_training(
      s, in.x.data(), in.gamma.data(), in.beta.data(), r.forward.running_mean.data(), r.forward.running_var.data(),
      r.forward.y.data(), r.forward.saved_mean.data(), r.forward.saved_inv_std.data());
  r.inference.assign(n, NAN);
  kernels::cpu::batch_norm_forward_inference(s, in.x.data(), in.gamma.data(), in.beta.data(), in.running_mean.data(),
                                             in.running_var.data(), r.inference.data());
  r.dx.assign(n, NAN), r.dgamma.assign(s.C, NAN), r.dbeta.assign(s.C, NAN);  // NaN: must be overwritten
  kernels::cpu::batch_norm_backward(s, in.x.data(), in.dy.data(), in.gamma.data(), saved.saved_mean.data(),
                                    saved.saved_inv_std.data(), r.dx.data(), r.dgamma.data(), r.dbeta.data(), false);
  r.dx_acc = in.dx0, r.dgamma_acc = in.dgamma0, r.dbeta_acc = in.dbeta0;
  kernels::cpu::batch_norm_backward(s, in.x.data(), in.dy.data(), in.gamma.data(), saved.saved_mean.data(),
                                    saved.saved_inv_std.data(), r.dx_acc.data(), r.dgamma_acc.data(),
                                    r.dbeta_acc.data(), true);
  return r;
}

void expect_same_bits(const std::vector<float>& a, const std::vector<float>& b, const char* what) {
  INFO(what);
  REQUIRE(a.size() == b.size());
  if (!a.empty()) CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);  // no memcmp of null
}

}  // namespace

TEST_CASE("cpu batch_norm matches the reference within float roundings, and any thread count gives the same bits") {
  struct Case {
    int N, C, H, W;
    float offset;
  };
  // As the GPU cases, and (3,2,45,47): planes of 2115 values, past one fold of the float lanes (1024) and not a
  // multiple of the 16 lanes; (64,3,4,4): many images of a small plane (the fc-like end of mapnet_bn).
  for (const Case& k : {Case{3, 5, 7, 9, 0.f}, Case{1, 3, 1, 1, 0.f}, Case{2, 3, 25, 27, 0.f}, Case{2, 300, 1, 3, 0.3f},
                        Case{4, 2, 5, 5, 50.f}, Case{1, 4, 6, 5, -2.f}, Case{3, 2, 45, 47, 0.5f},
                        Case{64, 3, 4, 4, 0.f}, Case{0, 3, 4, 4, 0.f}}) {
    CAPTURE(k.N);
    CAPTURE(k.C);
    CAPTURE(k.H);
    CAPTURE(k.W);
    CAPTURE(k.offset);
    BatchNormShape s = shape(k.N, k.C, k.H, k.W);
    s.momentum = 0.3f;
    const BnInputs in = bn_inputs(s, k.offset);
    const Forward want = ref_forward(s, in.x, in.gamma, in.beta, in.running_mean, in.running_var);
    std::vector<float> want_inference(count(s));
    kernels::ref::batch_norm_forward_inference(s, in.x.data(), in.gamma.data(), in.beta.data(), in.running_mean.data(),
                                               in.running_var.data(), want_inference.data());
    std::vector<float> dx(count(s)), dgamma(s.C), dbeta(s.C);
    kernels::ref::batch_norm_backward(s, in.x.data(), in.dy.data(), in.gamma.data(), want.saved_mean.data(),
                                      want.saved_inv_std.data(), dx.data(), dgamma.data(), dbeta.data(), false);
    std::vector<float> dx_acc = in.dx0, dgamma_acc = in.dgamma0, dbeta_acc = in.dbeta0;
    kernels::ref::batch_norm_backward(s, in.x.data(), in.dy.data(), in.gamma.data(), want.saved_mean.data(),
                                      want.saved_inv_std.data(), dx_acc.data(), dgamma_acc.data(), dbeta_acc.data(),
                                      true);

    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const CpuResults one = run_cpu(s, in, want);
    omp_set_num_threads(3);
    const CpuResults three = run_cpu(s, in, want);
    omp_set_num_threads(threads);

    if (s.per_channel() > 0) {  // M = 0 writes no y and no statistics (the NaN stays)
      expect_near_scaled(one.forward.y, want.y, kElementRel, "training y");
      expect_near_scaled(one.forward.saved_mean, want.saved_mean, kElementRel, "saved_mean");
      expect_near_scaled(one.forward.saved_inv_std, want.saved_inv_std, kElementRel, "saved_inv_std");
      expect_near_scaled(one.inference, want_inference, kElementRel, "inference y");
      expect_near_scaled(one.dx, dx, kElementRel, "dx");
      expect_near_scaled(one.dx_acc, dx_acc, kElementRel, "dx accumulated");
    }
    expect_near_scaled(one.forward.running_mean, want.running_mean, kElementRel, "running_mean");
    expect_near_scaled(one.forward.running_var, want.running_var, kElementRel, "running_var");
    expect_near_scaled(one.dgamma, dgamma, kSumRel, "dgamma");
    expect_near_scaled(one.dbeta, dbeta, kSumRel, "dbeta");
    expect_near_scaled(one.dgamma_acc, dgamma_acc, kSumRel, "dgamma accumulated");
    expect_near_scaled(one.dbeta_acc, dbeta_acc, kSumRel, "dbeta accumulated");

    for (const auto& [a, b, what] : {std::tuple{&one.forward.y, &three.forward.y, "y"},
                                     {&one.forward.saved_mean, &three.forward.saved_mean, "mean"},
                                     {&one.forward.running_var, &three.forward.running_var, "running_var"},
                                     {&one.inference, &three.inference, "inference"},
                                     {&one.dx, &three.dx, "dx"},
                                     {&one.dgamma, &three.dgamma, "dgamma"},
                                     {&one.dx_acc, &three.dx_acc, "dx accumulated"}})
      expect_same_bits(*a, *b, what);
  }
}

TEST_CASE("cpu batch_norm rejects bad shapes with the reference's words") {
  std::vector<float> v(4, 1.f);
  BatchNormShape s = shape(1, 1, 2, 2);
  s.eps = 0.f;
  CHECK_THROWS_WITH_AS(kernels::cpu::batch_norm_forward_training(s, v.data(), v.data(), v.data(), v.data(), v.data(),
                                                                 v.data(), v.data(), v.data()),
                       "batch_norm_forward_training: eps must be > 0", std::invalid_argument);
  s = shape(1, -1, 1, 1);
  CHECK_THROWS_WITH_AS(kernels::cpu::batch_norm_backward(s, v.data(), v.data(), v.data(), v.data(), v.data(), v.data(),
                                                         v.data(), v.data(), false),
                       "batch_norm_backward: negative size", std::invalid_argument);
}

// ---- the op in graphs: autograd, running statistics, inference ------------------------------------------------

namespace {

// data (N, 3, 5, 4) -> conv 3x3 pad 1 (4 filters) -> batch_norm -> relu -> flatten -> fc (3) -> loss
Graph bn_graph(int batch) {
  Graph g;
  nets::LayerBuilder b(g);
  nets::Filler f;
  f.weight.init.type = "gaussian";
  f.weight.init.std = 0.3f;
  ValueId x = g.add_input("data", {batch, 3, 5, 4});
  ValueId c = b.conv("conv", x, 4, 3, 1, 1, 1, f);
  ValueId y = b.relu("relu", b.batch_norm("bn", c, 0.25));
  ValueId logits = b.linear("fc", b.flatten("flatten", y), 3, f);
  ValueId label = g.add_input("label", {batch});
  b.softmax_loss("loss", logits, label);
  return g;
}

// Random inputs and parameters, set through host tensors (any device); the running variances positive.
void fill_bn_graph(Executor& ex, uint64_t seed) {
  auto put = [&](const std::string& name, const std::vector<float>& values) {
    Tensor t(ex.graph().value(ex.graph().at(name)).shape);
    std::memcpy(t.data(), values.data(), values.size() * sizeof(float));
    ex.set_input(name, t);
  };
  const Shape data = ex.graph().value(ex.graph().at("data")).shape;
  put("data", testing_support::random_vector(size_t(shape_numel(data)), seed));
  std::vector<float> labels(static_cast<size_t>(data[0]));
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = float(i % 3);
  put("label", labels);
  for (ValueId p : ex.graph().params()) {
    const Value& v = ex.graph().value(p);
    const bool variance = v.name == "bn.running_var";
    put(v.name, testing_support::random_vector(size_t(shape_numel(v.shape)), seed + 100 + uint64_t(p),
                                               variance ? 0.5f : -0.5f, variance ? 2.f : 0.5f));
  }
}

}  // namespace

TEST_CASE("batch_norm in a graph: gradients through it match central differences; running statistics move") {
  ExecutorOptions opt;
  opt.training = true;
  opt.input_grads = true;
  opt.keep_all = true;
  Executor ex(bn_graph(3), opt);
  fill_bn_graph(ex, 21);
  const std::vector<float> mean_before = ex.tensor("bn.running_mean").to_vector();
  const std::vector<float> var_before = ex.tensor("bn.running_var").to_vector();
  RunContext run;
  run.training = true;
  ex.forward(run);
  // The running statistics: momentum 0.25 towards the batch's, from the conv output by hand.
  const std::vector<float> conv = ex.tensor("conv").to_vector();  // (3, 4, 5, 4)
  const std::vector<float> mean_after = ex.tensor("bn.running_mean").to_vector();
  const std::vector<float> var_after = ex.tensor("bn.running_var").to_vector();
  for (int c = 0; c < 4; ++c) {
    double sum = 0, squares = 0;
    const int m = 3 * 20;
    for (int n = 0; n < 3; ++n)
      for (int i = 0; i < 20; ++i) sum += conv[size_t((n * 4 + c) * 20 + i)];
    const double mean = sum / m;
    for (int n = 0; n < 3; ++n)
      for (int i = 0; i < 20; ++i) squares += std::pow(conv[size_t((n * 4 + c) * 20 + i)] - mean, 2);
    CHECK(mean_after[size_t(c)] == doctest::Approx(0.75 * mean_before[size_t(c)] + 0.25 * mean).epsilon(1e-5));
    CHECK(var_after[size_t(c)] ==
          doctest::Approx(0.75 * var_before[size_t(c)] + 0.25 * squares / (m - 1)).epsilon(1e-5));
  }
  ex.backward(run);
  // Gradients of the loss (batch statistics; the running ones do not enter it) for the input and every learnt
  // parameter; the running statistics get none.
  CHECK(ex.graph().find(gradient_name("bn.running_mean")) < 0);
  CHECK(ex.graph().find(gradient_name("bn.running_var")) < 0);
  auto loss = [&] {
    ex.forward(run);
    return ex.loss();
  };
  testing_support::GradCheckOptions gc;
  gc.eps = 5e-4f;
  gc.tolerance = 2e-2f;
  gc.max_entries = 60;
  for (const std::string name : {"data", "conv.weight", "conv.bias", "bn.gamma", "bn.beta", "fc.weight"}) {
    Tensor value = ex.tensor(name);
    std::vector<float> analytic = ex.tensor(gradient_name(name)).to_vector();
    std::vector<float> x = value.to_vector();
    auto eval = [&] {
      std::memcpy(value.data(), x.data(), x.size() * sizeof(float));
      return loss();
    };
    testing_support::check_gradient(x, analytic, eval, name, gc);
    std::memcpy(value.data(), x.data(), x.size() * sizeof(float));
  }
}

TEST_CASE("batch_norm in a graph: at test time each image's answer is its own (running statistics, no batch)") {
  for (Device device : {Device::cpu, Device::simt}) {
    const std::string label = device_name(device);
    CAPTURE(label);
    ExecutorOptions opt;
    opt.device = device;
    Executor batch(bn_graph(3), opt), single(bn_graph(1), opt);
    fill_bn_graph(batch, 5);
    fill_bn_graph(single, 5);
    RunContext run;  // training off
    batch.forward(run);
    const std::vector<float> all = batch.read("loss.prob").to_vector();  // (3, 3)
    const std::vector<float> data = batch.read("data").to_vector();      // (3, 3, 5, 4)
    for (ValueId p : batch.graph().params())
      single.set_input(batch.graph().value(p).name, batch.read(batch.graph().value(p).name));
    for (int n = 0; n < 3; ++n) {
      Tensor x({1, 3, 5, 4});  // image n alone
      std::memcpy(x.data(), data.data() + n * 60, 60 * sizeof(float));
      single.set_input("data", x);
      single.forward(run);
      const std::vector<float> own = single.read("loss.prob").to_vector();
      for (int k = 0; k < 3; ++k) CHECK(own[size_t(k)] == doctest::Approx(all[size_t(n * 3 + k)]).epsilon(1e-5));
    }
    // In training the batch's statistics make the answers depend on each other: the same images answer otherwise.
    RunContext training;
    training.training = true;
    batch.forward(training);
    const std::vector<float> trained = batch.read("loss.prob").to_vector();
    double differs = 0;
    for (size_t i = 0; i < trained.size(); ++i) differs = std::max(differs, double(std::fabs(trained[i] - all[i])));
    CHECK(differs > 1e-3);
  }
}
