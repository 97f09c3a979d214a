// batch_norm with a fused ReLU (kernels/batch_norm.h, relu; the fuse_batch_norm_relu pass):
// - reference: the fused forward is the relu op's x < 0 ? 0 : x of the plain forward, exactly (training and
//   inference); the fused backward equals the plain backward of dy [y > 0] masked by hand, and matches central
//   differences of sum(r relu(bn(x))) away from the kink;
// - cpu fast path: bit-identical to the plain cpu forward then the ReLU, and to the plain cpu backward of the masked
//   dy (what the unfused graph computes), accumulate off and on, on 1 and 3 threads; within float roundings of the
//   reference;
// - GPU (simt every schedule, cuda where present): within the batch_norm tests' tolerances of the reference, dx
//   overwriting dy included;
// - the pass on mapnet_bn_fine: seven batch norms fused, a training step (batch statistics, dropout on) bit-identical
//   to the graph as built on cpu (probabilities, every gradient, the running statistics), close on simt; a batch norm
//   read by two nodes stays as it is.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/executor.h"
#include "engine/ops/batch_norm.h"
#include "engine/ops/elementwise.h"
#include "engine/passes.h"
#include "kernels/batch_norm.h"
#include "kernels/gpu.h"
#include "nets/layers.h"
#include "nets/registry.h"
#include "tests/support/check.h"
#include "tests/support/gpu.h"
#include "tests/support/net_weights.h"

using namespace massmap;
using kernels::BatchNormShape;
using testing_support::expect_close;
using testing_support::expect_near_scaled;
using testing_support::random_vector;

namespace {

BatchNormShape shape(int N, int C, int H, int W, bool relu) {
  BatchNormShape s;
  s.N = N, s.C = C, s.H = H, s.W = W;
  s.momentum = 0.3f;
  s.relu = relu;
  return s;
}

size_t count(const BatchNormShape& s) {
  return size_t(s.N) * s.C * s.H * s.W;
}

// Inputs of one case; beta around 0 so about half of y is cut by the ReLU.
struct Inputs {
  std::vector<float> x, gamma, beta, running_mean, running_var, dy, dx0, dgamma0, dbeta0;
};

Inputs inputs(const BatchNormShape& s) {
  const size_t n = count(s);
  return {random_vector(n, 1),
          random_vector(s.C, 2, 0.5f, 1.5f),
          random_vector(s.C, 3, -0.5f, 0.5f),
          random_vector(s.C, 4),
          random_vector(s.C, 5, 0.5f, 2.f),
          random_vector(n, 6),
          random_vector(n, 7),
          random_vector(s.C, 8),
          random_vector(s.C, 9)};
}

// Everything one implementation computes for a case: training forward (y, saved statistics, running statistics),
// inference, backward with accumulate off and on (from the given saved statistics).
struct Results {
  std::vector<float> y, saved_mean, saved_inv_std, running_mean, running_var, inference, dx, dgamma, dbeta, dx_acc,
      dgamma_acc, dbeta_acc;
};

// The implementation's forward, then its backward at the statistics and y of `saved` (so every implementation
// differentiates at the same point; its own when null).
template <typename Forward, typename Inference, typename Backward>
Results run(const BatchNormShape& s, const Inputs& in, Forward forward, Inference inference, Backward backward,
            const Results* saved = nullptr) {
  const size_t n = count(s);
  Results r;
  r.y.assign(n, NAN), r.saved_mean.assign(s.C, NAN), r.saved_inv_std.assign(s.C, NAN);
  r.running_mean = in.running_mean, r.running_var = in.running_var;
  forward(in.x.data(), in.gamma.data(), in.beta.data(), r.running_mean.data(), r.running_var.data(), r.y.data(),
          r.saved_mean.data(), r.saved_inv_std.data());
  r.inference.assign(n, NAN);
  inference(in.x.data(), in.gamma.data(), in.beta.data(), in.running_mean.data(), in.running_var.data(),
            r.inference.data());
  const Results& at = saved ? *saved : r;
  r.dx.assign(n, NAN), r.dgamma.assign(s.C, NAN), r.dbeta.assign(s.C, NAN);
  backward(in.x.data(), at.y.data(), in.dy.data(), in.gamma.data(), at.saved_mean.data(), at.saved_inv_std.data(),
           r.dx.data(), r.dgamma.data(), r.dbeta.data(), false);
  r.dx_acc = in.dx0, r.dgamma_acc = in.dgamma0, r.dbeta_acc = in.dbeta0;
  backward(in.x.data(), at.y.data(), in.dy.data(), in.gamma.data(), at.saved_mean.data(), at.saved_inv_std.data(),
           r.dx_acc.data(), r.dgamma_acc.data(), r.dbeta_acc.data(), true);
  return r;
}

// The fused kernels of namespace NS as run() wants them.
#define FUSED_KERNELS(NS, s)                                                  \
  [&](auto... a) { kernels::NS::batch_norm_forward_training(s, a...); },      \
      [&](auto... a) { kernels::NS::batch_norm_forward_inference(s, a...); }, \
      [&](auto... a) { kernels::NS::batch_norm_backward_relu(s, a...); }

// What the unfused graph computes with namespace NS's kernels: batch_norm, then the relu op's forward on y; backward
// the relu op's dy [y > 0] (y the post-ReLU output), then the plain batch_norm backward.
#define UNFUSED_KERNELS(NS, plain)                                                                            \
  [&](const float* x, const float* g, const float* b, float* rm, float* rv, float* y, float* sm, float* si) { \
    kernels::NS::batch_norm_forward_training(plain, x, g, b, rm, rv, y, sm, si);                              \
    for (size_t i = 0; i < count(plain); ++i) y[i] = y[i] < 0.f ? 0.f : y[i];                                 \
  },                                                                                                          \
      [&](const float* x, const float* g, const float* b, const float* rm, const float* rv, float* y) {       \
        kernels::NS::batch_norm_forward_inference(plain, x, g, b, rm, rv, y);                                 \
        for (size_t i = 0; i < count(plain); ++i) y[i] = y[i] < 0.f ? 0.f : y[i];                             \
      },                                                                                                      \
      [&](const float* x, const float* y, const float* dy, const float* g, const float* sm, const float* si,  \
          float* dx, float* dg, float* db, bool acc) {                                                        \
        std::vector<float> masked(count(plain));                                                              \
        for (size_t i = 0; i < masked.size(); ++i) masked[i] = y[i] > 0.f ? dy[i] : 0.f;                      \
        kernels::NS::batch_norm_backward(plain, x, masked.data(), g, sm, si, dx, dg, db, acc);                \
      }

void expect_same_bits(const std::vector<float>& a, const std::vector<float>& b, const char* what) {
  INFO(what);
  REQUIRE(a.size() == b.size());
  if (!a.empty()) CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

void expect_all_same_bits(const Results& a, const Results& b) {
  expect_same_bits(a.y, b.y, "training y");
  expect_same_bits(a.saved_mean, b.saved_mean, "saved_mean");
  expect_same_bits(a.saved_inv_std, b.saved_inv_std, "saved_inv_std");
  expect_same_bits(a.running_var, b.running_var, "running_var");
  expect_same_bits(a.inference, b.inference, "inference y");
  expect_same_bits(a.dx, b.dx, "dx");
  expect_same_bits(a.dgamma, b.dgamma, "dgamma");
  expect_same_bits(a.dbeta, b.dbeta, "dbeta");
  expect_same_bits(a.dx_acc, b.dx_acc, "dx accumulated");
  expect_same_bits(a.dgamma_acc, b.dgamma_acc, "dgamma accumulated");
}

constexpr float kElementRel = 2e-5f, kSumRel = 1e-4f;

void expect_all_near(const Results& got, const Results& want) {
  expect_near_scaled(got.y, want.y, kElementRel, "training y");
  expect_near_scaled(got.saved_mean, want.saved_mean, kElementRel, "saved_mean");
  expect_near_scaled(got.running_var, want.running_var, kElementRel, "running_var");
  expect_near_scaled(got.inference, want.inference, kElementRel, "inference y");
  expect_near_scaled(got.dx, want.dx, kElementRel, "dx");
  expect_near_scaled(got.dx_acc, want.dx_acc, kElementRel, "dx accumulated");
  expect_near_scaled(got.dgamma, want.dgamma, kSumRel, "dgamma");
  expect_near_scaled(got.dbeta, want.dbeta, kSumRel, "dbeta");
  expect_near_scaled(got.dgamma_acc, want.dgamma_acc, kSumRel, "dgamma accumulated");
  expect_near_scaled(got.dbeta_acc, want.dbeta_acc, kSumRel, "dbeta accumulated");
}

// (3,5,7,9): nothing a power of two; (1,3,1,1): M = 1 (y = beta: cut where beta < 0); (2,3,45,47): planes past a
// fold of the cpu path's float lanes; (64,3,4,4): many small planes; (2,300,1,3): more channels than a small grid.
const int kCases[][4] = {{3, 5, 7, 9}, {1, 3, 1, 1}, {2, 3, 45, 47}, {64, 3, 4, 4}, {2, 300, 1, 3}};

}  // namespace

TEST_CASE("ref batch_norm with relu: the relu of the plain forward; backward of the masked dy; central differences") {
  for (const auto& k : kCases) {
    CAPTURE(k[0]);
    CAPTURE(k[1]);
    CAPTURE(k[2]);
    CAPTURE(k[3]);
    const BatchNormShape fused = shape(k[0], k[1], k[2], k[3], true), plain = shape(k[0], k[1], k[2], k[3], false);
    const Inputs in = inputs(fused);
    const Results got = run(fused, in, FUSED_KERNELS(ref, fused));
    const Results want = run(plain, in, UNFUSED_KERNELS(ref, plain));
    expect_all_same_bits(got, want);
    size_t cut = 0;
    for (float v : got.y) cut += v == 0.f;
    if (fused.per_channel() > 1) CHECK(cut > got.y.size() / 5);  // the ReLU cuts a good share: the mask matters
  }

  // Central differences of L = sum r relu(bn(x)) (training statistics) for x, gamma and beta, on data whose
  // pre-ReLU values all lie at least 0.01 from the kink (a step of 1e-3 moves none of them across it).
  const BatchNormShape s = shape(2, 3, 3, 3, true);
  const size_t n = count(s);
  std::vector<float> x = random_vector(n, 11), gamma = random_vector(s.C, 12, 0.5f, 1.5f),
                     beta = random_vector(s.C, 13, -0.5f, 0.5f), r = random_vector(n, 14);
  auto loss = [&] {
    std::vector<float> y(n), sm(s.C), si(s.C), rm(s.C, 0.f), rv(s.C, 1.f);
    kernels::ref::batch_norm_forward_training(s, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), y.data(),
                                              sm.data(), si.data());
    double l = 0;
    for (size_t i = 0; i < n; ++i) l += double(r[i]) * y[i];
    return l;
  };
  std::vector<float> y(n), sm(s.C), si(s.C), rm(s.C, 0.f), rv(s.C, 1.f), dx(n), dgamma(s.C), dbeta(s.C);
  BatchNormShape plain = s;
  plain.relu = false;
  std::vector<float> pre(n);  // the pre-ReLU values, for the kink
  kernels::ref::batch_norm_forward_training(plain, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(),
                                            pre.data(), sm.data(), si.data());
  kernels::ref::batch_norm_forward_training(s, x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), y.data(),
                                            sm.data(), si.data());
  kernels::ref::batch_norm_backward_relu(s, x.data(), y.data(), r.data(), gamma.data(), sm.data(), si.data(), dx.data(),
                                         dgamma.data(), dbeta.data(), false);
  bool near_kink = false;
  for (float v : pre) near_kink = near_kink || std::fabs(v) < 0.01f;
  testing_support::GradCheckOptions opt;
  opt.eps = 1e-3f;
  opt.tolerance = 5e-3f;  // float forward: the numeric side carries about 1e-4
  REQUIRE_FALSE(near_kink);
  testing_support::check_gradient(x, dx, loss, "relu(batch_norm) dx", opt);
  testing_support::check_gradient(gamma, dgamma, loss, "relu(batch_norm) dgamma", opt);
  testing_support::check_gradient(beta, dbeta, loss, "relu(batch_norm) dbeta", opt);
}

TEST_CASE("cpu batch_norm with relu: the unfused cpu graph's bits on 1 and 3 threads, the reference within roundings") {
  for (const auto& k : kCases) {
    CAPTURE(k[0]);
    CAPTURE(k[1]);
    CAPTURE(k[2]);
    CAPTURE(k[3]);
    const BatchNormShape fused = shape(k[0], k[1], k[2], k[3], true), plain = shape(k[0], k[1], k[2], k[3], false);
    const Inputs in = inputs(fused);
    const Results want = run(fused, in, FUSED_KERNELS(ref, fused));
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const Results one = run(fused, in, FUSED_KERNELS(cpu, fused), &want);
    const Results unfused = run(plain, in, UNFUSED_KERNELS(cpu, plain), &want);
    omp_set_num_threads(3);
    const Results three = run(fused, in, FUSED_KERNELS(cpu, fused), &want);
    omp_set_num_threads(threads);
    expect_all_same_bits(one, unfused);
    expect_all_same_bits(one, three);
    expect_all_near(one, want);
  }
}

GPU_TEST("batch_norm with relu on the GPU against the reference") {
  using testing_support::DeviceBuffer;
  for (const auto& k : kCases) {
    CAPTURE(k[0]);
    CAPTURE(k[1]);
    CAPTURE(k[2]);
    CAPTURE(k[3]);
    const BatchNormShape s = shape(k[0], k[1], k[2], k[3], true);
    const Inputs in = inputs(s);
    const Results want = run(s, in, FUSED_KERNELS(ref, s));
    const size_t n = count(s);
    DeviceBuffer x(gpu, in.x), gamma(gpu, in.gamma), beta(gpu, in.beta), rmean(gpu, in.running_mean),
        rvar(gpu, in.running_var), y(gpu, n), smean(gpu, s.C), sinv(gpu, s.C);
    GPU_CALL(gpu, batch_norm_forward_training, s, x.get(), gamma.get(), beta.get(), rmean.get(), rvar.get(), y.get(),
             smean.get(), sinv.get(), gpu.stream());
    expect_near_scaled(y.download(), want.y, kElementRel, "training y");
    rmean.upload(in.running_mean), rvar.upload(in.running_var);
    DeviceBuffer inference(gpu, n);
    GPU_CALL(gpu, batch_norm_forward_inference, s, x.get(), gamma.get(), beta.get(), rmean.get(), rvar.get(),
             inference.get(), gpu.stream());
    expect_near_scaled(inference.download(), want.inference, kElementRel, "inference y");

    // Backward at the reference's statistics and y; dx written over dy (the kernels allow it).
    y.upload(want.y), smean.upload(want.saved_mean), sinv.upload(want.saved_inv_std);
    DeviceBuffer dy(gpu, in.dy), dgamma(gpu, std::vector<float>(s.C, NAN)), dbeta(gpu, std::vector<float>(s.C, NAN));
    GPU_CALL(gpu, batch_norm_backward_relu, s, x.get(), y.get(), dy.get(), gamma.get(), smean.get(), sinv.get(),
             dy.get(), dgamma.get(), dbeta.get(), false, gpu.stream());
    expect_near_scaled(dy.download(), want.dx, kElementRel, "dx (over dy)");
    expect_near_scaled(dgamma.download(), want.dgamma, kSumRel, "dgamma");
    expect_near_scaled(dbeta.download(), want.dbeta, kSumRel, "dbeta");
    DeviceBuffer dy2(gpu, in.dy), dx(gpu, in.dx0), dgamma2(gpu, in.dgamma0), dbeta2(gpu, in.dbeta0);
    GPU_CALL(gpu, batch_norm_backward_relu, s, x.get(), y.get(), dy2.get(), gamma.get(), smean.get(), sinv.get(),
             dx.get(), dgamma2.get(), dbeta2.get(), true, gpu.stream());
    expect_near_scaled(dx.download(), want.dx_acc, kElementRel, "dx accumulated");
    expect_near_scaled(dgamma2.download(), want.dgamma_acc, kSumRel, "dgamma accumulated");
    expect_near_scaled(dbeta2.download(), want.dbeta_acc, kSumRel, "dbeta accumulated");
  }
}

TEST_CASE("fuse_batch_norm_relu on mapnet_bn_fine: a training step bit-identical on cpu, close on simt") {
  nets::NetOptions o;
  o.channels = 1;
  o.classes = 2;
  o.width = 0.25;
  o.input = 69;
  o.batch = 3;
  const Graph plain = nets::build_net("mapnet_bn_fine", o);
  std::vector<PassLog> log;
  const Graph fused = run_passes(plain, {"fuse_batch_norm_relu"}, &log);
  REQUIRE(log.size() == 1);
  CHECK(log[0].changes.size() == 7);  // bn0 ... bn6
  CHECK(log[0].changes[0] == "bn0 + relu0 -> bn0 (ReLU in the normalising pass)");
  int relus = 0, fused_bns = 0;
  for (const Node& n : fused.nodes()) {
    relus += n.op == ops::relu;
    fused_bns += n.op == ops::batch_norm && read_attrs<BatchNormAttrs>(n).relu;
  }
  CHECK(relus == 2);  // after fc7 and fc8
  CHECK(fused_bns == 7);
  CHECK(run_passes(fused, {"fuse_batch_norm_relu"}).nodes().size() == fused.nodes().size());  // nothing left

  const Tensor x = Tensor::from({3, 1, 69, 69}, random_vector(3 * 69 * 69, 8));
  const Tensor labels = Tensor::from({3}, {0.f, 1.f, 1.f});
  auto cpu_plain = testing_support::training_step(plain, Device::cpu, x, labels, true),
       cpu_fused = testing_support::training_step(fused, Device::cpu, x, labels, true);
  auto simt_fused = testing_support::training_step(fused, Device::simt, x, labels, true);
  CHECK(cpu_fused->read("loss.prob").to_vector() == cpu_plain->read("loss.prob").to_vector());
  expect_close(simt_fused->read("loss.prob").to_vector(), cpu_plain->read("loss.prob").to_vector(), 1e-5f, 1e-4f,
               "simt probabilities");
  int checked = 0;
  for (ValueId p : plain.params()) {
    const std::string& name = plain.value(p).name;
    CAPTURE(name);
    if (name.find("running_") != std::string::npos) {  // moved by the forward pass, no gradient
      CHECK(cpu_fused->read(name).to_vector() == cpu_plain->read(name).to_vector());
      continue;
    }
    const std::string grad = gradient_name(name);
    CHECK(cpu_fused->read(grad).to_vector() == cpu_plain->read(grad).to_vector());
    expect_close(simt_fused->read(grad).to_vector(), cpu_plain->read(grad).to_vector(), 1e-5f, 1e-3f, grad);
    ++checked;
  }
  CHECK(checked == 7 * 3 + 3 * 2);  // conv, gamma, beta per stage; weight and bias per fc
}

TEST_CASE("fuse_batch_norm_relu leaves a batch norm whose output another node also reads") {
  Graph g;
  nets::LayerBuilder b(g);
  nets::Filler f;
  const ValueId x = g.add_input("data", {2, 3, 5, 5});
  const ValueId bn = b.batch_norm("bn", b.conv("conv", x, 4, 3, 1, 1, 1, f));
  const ValueId relu = b.relu("relu", bn);
  g.add(ops::add, "sum", {relu, bn});  // bn's y read twice
  std::vector<PassLog> log;
  const Graph out = run_passes(g, {"fuse_batch_norm_relu"}, &log);
  REQUIRE(log.size() == 1);
  CHECK(log[0].changes == std::vector<std::string>{"nothing to fuse"});
  int relus = 0;
  for (const Node& n : out.nodes()) relus += n.op == ops::relu;
  CHECK(relus == 1);
}
