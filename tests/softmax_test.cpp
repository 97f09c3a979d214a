// Softmax and softmax cross-entropy loss reference: normalisation, stability, hand values, gradient checks,
// ignored locations, label validation.
//
// GPU softmax and softmax cross-entropy loss against kernels::ref: a classifier (a warp per location), probability
// maps (a thread per location), few pixels with few or many channels, channel slices, large logits, ignore_label,
// accumulate, an invalid label; on simt (every schedule) and cuda. Whole buffers are compared: entries outside a
// slice must survive.
// Tolerances (float against the reference's double): probabilities and gradients 1e-6 + 1e-5 |ref|; the loss
// 1e-5 + 1e-5 |ref|.
#include "kernels/softmax.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/gpu.h"
#include "tests/support/check.h"
#include "tests/support/gpu.h"
#include "tests/support/placed_tensor.h"

using kernels::SoftmaxLossShape;
using kernels::SoftmaxShape;
using testing_support::PlacedTensor;

namespace {

SoftmaxShape softmax(int N, int C, int H, int W) {
  return {N, C, H, W, kernels::Placement::dense(C, H, W), kernels::Placement::dense(C, H, W)};
}

// Random class ids in [0, C) as floats (N, H, W); every `ignore_every`-th location gets ignore_label instead.
std::vector<float> random_labels(int N, int H, int W, int C, int ignore_every, int ignore_label, uint64_t seed) {
  testing_support::TestRng rng(seed);
  std::vector<float> labels(size_t(N) * H * W);
  for (size_t i = 0; i < labels.size(); ++i)
    labels[i] = ignore_every > 0 && i % ignore_every == 1 ? float(ignore_label) : float(rng.integer(0, C - 1));
  return labels;
}

struct Layout {
  int x_total, x_offset, y_total, y_offset;
};

// Gradient of loss_grad * loss wrt the logits, with placed logits and probabilities, by central differences.
void check_loss_gradient(int N, int C, int H, int W, int ignore_every, Layout layout, bool accumulate) {
  PlacedTensor x(N, C, H, W, layout.x_total, layout.x_offset, 1), dx(N, C, H, W, layout.x_total, layout.x_offset, 2);
  PlacedTensor prob(N, C, H, W, layout.y_total, layout.y_offset, 3);
  SoftmaxLossShape s{{N, C, H, W, x.place(), prob.place()}, -1};
  const std::vector<float> labels = random_labels(N, H, W, C, ignore_every, s.ignore_label, 4);
  std::vector<float> x_values = testing_support::random_vector(x.size(), 5, -3.f, 3.f);
  x.set_logical(x_values);
  const float loss_grad = 0.7f;

  const std::vector<float> prob_before = prob.buffer();
  kernels::ref::softmax_loss_forward(s, x.data(), labels.data(), prob.data());
  prob.expect_outside_unchanged(prob_before, "loss forward");
  const std::vector<float> dx_before = dx.buffer(), dx_old = dx.logical();
  kernels::ref::softmax_loss_backward(s, prob.data(), labels.data(), loss_grad, dx.data(), accumulate);
  dx.expect_outside_unchanged(dx_before, "loss backward");
  const std::vector<float> analytic = accumulate ? testing_support::difference(dx.logical(), dx_old) : dx.logical();

  // Ignored locations get exactly nothing.
  size_t leaked = 0;
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int i = 0; i < H * W; ++i)
        if (labels[size_t(n) * H * W + i] == s.ignore_label) leaked += analytic[(size_t(n) * C + c) * H * W + i] != 0.f;
  CHECK(leaked == 0);

  auto loss = [&] {
    x.set_logical(x_values);
    return double(loss_grad) * kernels::ref::softmax_loss_forward(s, x.data(), labels.data(), prob.data());
  };
  testing_support::GradCheckOptions opt;
  opt.eps = 1e-2f;
  opt.tolerance = 1e-2f;
  testing_support::check_gradient(x_values, analytic, loss, "softmax loss dx", opt);
}

}  // namespace

TEST_CASE("softmax probabilities are positive, sum to 1 and survive huge logits") {
  const int N = 2, C = 7, H = 3, W = 5;
  std::vector<float> x = testing_support::random_vector(size_t(N) * C * H * W, 1, -5.f, 5.f);
  x[0] = 1000.f;  // exp(1000) overflows without the max subtraction
  x[H * W] = -1000.f;
  std::vector<float> prob(x.size());
  kernels::ref::softmax_forward(softmax(N, C, H, W), x.data(), prob.data());
  for (int n = 0; n < N; ++n) {
    for (int i = 0; i < H * W; ++i) {
      double sum = 0;
      bool all_finite = true;
      for (int c = 0; c < C; ++c) {
        const float p = prob[(size_t(n) * C + c) * H * W + i];
        all_finite = all_finite && std::isfinite(p) && p >= 0.f;
        sum += p;
      }
      CHECK(all_finite);
      CHECK(sum == doctest::Approx(1.0).epsilon(1e-6));
    }
  }
  CHECK(prob[0] == 1.f);  // exp(-1000 - ...) of the others underflows to 0
}

TEST_CASE("softmax and loss on a hand-computed two-class example") {
  // Two samples, classifier shape (2, 2, 1, 1): logits (1, 3) with label 1, logits (2, 0) with label 1.
  //   sample 0: prob = (1, e^2) / (1 + e^2), loss -log(e^2 / (1 + e^2)) = log(1 + e^-2)
  //   sample 1: prob = (e^2, 1) / (1 + e^2), loss log(1 + e^2)
  const std::vector<float> x = {1.f, 3.f, 2.f, 0.f}, labels = {1.f, 1.f};
  std::vector<float> prob(4);
  const SoftmaxLossShape s{softmax(2, 2, 1, 1), -1};
  const float loss = kernels::ref::softmax_loss_forward(s, x.data(), labels.data(), prob.data());
  const double e2 = std::exp(2.0);
  CHECK(loss == doctest::Approx((std::log(1 + 1 / e2) + std::log(1 + e2)) / 2).epsilon(1e-6));
  CHECK(loss == doctest::Approx(1.1269280110429727).epsilon(1e-6));
  testing_support::expect_close(prob,
                                {float(1 / (1 + e2)), float(e2 / (1 + e2)), float(e2 / (1 + e2)), float(1 / (1 + e2))},
                                1e-7f, 1e-6f, "probabilities");

  // dx = (prob - onehot) / V with V = 2 and loss_grad 1.
  std::vector<float> dx(4);
  kernels::ref::softmax_loss_backward(s, prob.data(), labels.data(), 1.f, dx.data(), false);
  testing_support::expect_close(dx, {prob[0] / 2, (prob[1] - 1) / 2, prob[2] / 2, (prob[3] - 1) / 2}, 1e-7f, 1e-6f,
                                "loss gradient");

  // Ignoring sample 1 leaves V = 1: the loss is sample 0's alone and sample 1's gradient is 0.
  const std::vector<float> one_ignored = {1.f, -1.f};
  CHECK(kernels::ref::softmax_loss_forward(s, x.data(), one_ignored.data(), prob.data()) ==
        doctest::Approx(std::log(1 + 1 / e2)).epsilon(1e-6));
  kernels::ref::softmax_loss_backward(s, prob.data(), one_ignored.data(), 1.f, dx.data(), false);
  testing_support::expect_close(dx, {prob[0], prob[1] - 1, 0.f, 0.f}, 1e-7f, 1e-6f, "one ignored");
}

TEST_CASE("softmax backward gradient check") {
  for (bool accumulate : {false, true}) {
    CAPTURE(accumulate);
    const int N = 2, C = 5, H = 3, W = 7;
    PlacedTensor x(N, C, H, W, 8, 2, 1), dx(N, C, H, W, 8, 2, 2), prob(N, C, H, W, 6, 1, 3), dprob(N, C, H, W, 6, 1, 4);
    const SoftmaxShape s{N, C, H, W, x.place(), prob.place()};
    std::vector<float> x_values = testing_support::random_vector(x.size(), 5, -3.f, 3.f);
    const std::vector<float> r = testing_support::random_vector(x.size(), 6);
    x.set_logical(x_values);
    dprob.set_logical(r);
    const std::vector<float> prob_before = prob.buffer();
    kernels::ref::softmax_forward(s, x.data(), prob.data());
    prob.expect_outside_unchanged(prob_before, "softmax forward");
    const std::vector<float> dx_before = dx.buffer(), dx_old = dx.logical();
    kernels::ref::softmax_backward(s, prob.data(), dprob.data(), dx.data(), accumulate);
    dx.expect_outside_unchanged(dx_before, "softmax backward");
    const std::vector<float> analytic = accumulate ? testing_support::difference(dx.logical(), dx_old) : dx.logical();
    auto loss = [&] {
      x.set_logical(x_values);
      kernels::ref::softmax_forward(s, x.data(), prob.data());
      return testing_support::weighted_sum(prob.logical(), r);
    };
    testing_support::GradCheckOptions opt;
    opt.tolerance = 1e-2f;
    testing_support::check_gradient(x_values, analytic, loss, "softmax dx", opt);
  }
}

TEST_CASE("softmax loss gradient check") {
  SUBCASE("classifier, batch 1") {
    check_loss_gradient(1, 5, 1, 1, 0, {5, 0, 5, 0}, false);
  }
  SUBCASE("classifier, 6 x 3, accumulate") {
    check_loss_gradient(6, 3, 1, 1, 0, {3, 0, 3, 0}, true);
  }
  SUBCASE("classifier with ignored samples, channel slices") {
    check_loss_gradient(7, 5, 1, 1, 3, {9, 2, 7, 1}, false);
  }
  SUBCASE("per-location map with ignored locations") {
    check_loss_gradient(2, 3, 5, 7, 4, {3, 0, 3, 0}, false);
  }
  SUBCASE("per-location map, channel slices, accumulate") {
    check_loss_gradient(2, 3, 3, 5, 3, {6, 1, 5, 2}, true);
  }
}

TEST_CASE("no valid location: loss 0 and gradient 0") {
  const SoftmaxLossShape s{softmax(2, 3, 1, 2), 255};
  const std::vector<float> x = testing_support::random_vector(12, 1), labels(4, 255.f);
  std::vector<float> prob(12), dx(12, 5.f);
  CHECK(kernels::ref::softmax_loss_forward(s, x.data(), labels.data(), prob.data()) == 0.f);
  kernels::ref::softmax_loss_backward(s, prob.data(), labels.data(), 1.f, dx.data(), false);
  testing_support::expect_close(dx, std::vector<float>(12, 0.f), 0, 0, "gradient");
}

TEST_CASE("labels outside [0, C) throw std::out_of_range naming the location") {
  const SoftmaxLossShape s{softmax(2, 3, 2, 2), -1};
  const std::vector<float> x = testing_support::random_vector(24, 1);
  std::vector<float> prob(24), dx(24);
  for (float bad : {3.f, -2.f, 1.5f, 100.f}) {
    CAPTURE(bad);
    std::vector<float> labels = {0, 1, 2, -1, 2, 1, 0, 0};
    labels[6] = bad;  // n 1, h 1, w 0
    CHECK_THROWS_AS(kernels::ref::softmax_loss_backward(s, prob.data(), labels.data(), 1.f, dx.data(), false),
                    std::out_of_range);
    try {
      kernels::ref::softmax_loss_forward(s, x.data(), labels.data(), prob.data());
      FAIL("no exception");
    } catch (const std::out_of_range& e) {
      const std::string msg = e.what();
      CHECK_MESSAGE(msg.find("n 1, h 1, w 0") != std::string::npos, msg);
      CHECK_MESSAGE(msg.find("label " + std::to_string(int(bad))) != std::string::npos, msg);
    }
  }
}

// ---- GPU kernels ----
using kernels::SoftmaxLossShape;
using kernels::SoftmaxShape;
using testing_support::DeviceBuffer;
using testing_support::expect_close;
using testing_support::PlacedTensor;

namespace {

struct Case {
  const char* name;
  int N, C, H, W;
  int x_total, x_offset, y_total, y_offset;  // channel slices (total == C and offset 0: dense)
  float logit_range;                         // logits uniform in [-range, range]
};

const Case kCases[] = {
    {"classifier, 40 classes (a warp per location)", 3, 40, 1, 1, 40, 0, 40, 0, 3.f},
    {"map 5x7, 3 classes (a thread per location)", 2, 3, 5, 7, 3, 0, 3, 0, 3.f},
    {"few pixels, few channels", 1, 5, 2, 3, 5, 0, 5, 0, 3.f},
    {"few pixels, 37 channels, slices", 2, 37, 2, 2, 40, 1, 39, 2, 3.f},
    {"map in slices, large logits", 2, 4, 6, 6, 6, 2, 5, 1, 60.f},
    {"classifier in slices, large logits", 1, 33, 1, 1, 35, 2, 34, 0, 60.f},
    {"40 images of 100 classes: warps loop", 40, 100, 1, 1, 100, 0, 100, 0, 3.f},
    {"map 50x50: threads loop", 2, 3, 50, 50, 3, 0, 3, 0, 3.f},
};

// Random class ids in [0, C) as floats (N, H, W); every `ignore_every`-th location gets ignore_label instead
// (every location for ignore_every == 1).
std::vector<float> random_labels(const Case& k, int ignore_every, int ignore_label, uint64_t seed) {
  testing_support::TestRng rng(seed);
  std::vector<float> labels(size_t(k.N) * k.H * k.W);
  for (size_t i = 0; i < labels.size(); ++i)
    labels[i] = ignore_every > 0 && i % ignore_every == size_t(ignore_every - 1) ? float(ignore_label)
                                                                                 : float(rng.integer(0, k.C - 1));
  return labels;
}

struct Tensors {
  PlacedTensor x, prob;
  SoftmaxShape s;
};

Tensors tensors_for(const Case& k) {
  PlacedTensor x(k.N, k.C, k.H, k.W, k.x_total, k.x_offset, 1), prob(k.N, k.C, k.H, k.W, k.y_total, k.y_offset, 2);
  x.set_logical(testing_support::random_vector(x.size(), 3, -k.logit_range, k.logit_range));
  const SoftmaxShape s{k.N, k.C, k.H, k.W, x.place(), prob.place()};
  return {x, prob, s};
}

float download_scalar(const DeviceBuffer& buffer) {
  return buffer.download().at(0);
}

}  // namespace

GPU_TEST("softmax forward and backward") {
  for (const Case& k : kCases) {
    for (bool accumulate : {false, true}) {
      CAPTURE(k.name);
      CAPTURE(accumulate);
      Tensors t = tensors_for(k);
      PlacedTensor dprob(k.N, k.C, k.H, k.W, k.y_total, k.y_offset, 4);
      PlacedTensor dx(k.N, k.C, k.H, k.W, k.x_total, k.x_offset, 5);
      DeviceBuffer x(gpu, t.x.buffer()), prob(gpu, t.prob.buffer());
      GPU_CALL(gpu, softmax_forward, t.s, x.get(), prob.get(), gpu.stream());
      kernels::ref::softmax_forward(t.s, t.x.data(), t.prob.data());
      expect_close(prob.download(), t.prob.buffer(), 1e-6f, 1e-5f, "softmax forward");

      prob.upload(t.prob.buffer());  // backward from the reference's probabilities
      DeviceBuffer dprob_dev(gpu, dprob.buffer()), dx_dev(gpu, dx.buffer());
      GPU_CALL(gpu, softmax_backward, t.s, prob.get(), dprob_dev.get(), dx_dev.get(), accumulate, gpu.stream());
      kernels::ref::softmax_backward(t.s, t.prob.data(), dprob.data(), dx.data(), accumulate);
      expect_close(dx_dev.download(), dx.buffer(), 1e-6f, 1e-5f, "softmax backward");
    }
  }
}

GPU_TEST("softmax loss forward and backward, with ignored locations") {
  struct Labels {
    int ignore_every, ignore_label;
  };
  // {0, 0}: class 0 is the ignore label; {1, -1}: every location ignored, V == 0 (loss and gradient 0).
  const Labels kLabelings[] = {{0, -1}, {3, -1}, {2, 255}, {0, 0}, {1, -1}};
  for (const Case& k : kCases) {
    for (const Labels& l : kLabelings) {
      for (bool accumulate : {false, true}) {
        CAPTURE(k.name);
        CAPTURE(l.ignore_every);
        CAPTURE(accumulate);
        Tensors t = tensors_for(k);
        const SoftmaxLossShape s{t.s, l.ignore_label};
        const std::vector<float> labels = random_labels(k, l.ignore_every, l.ignore_label, 6);
        PlacedTensor dx(k.N, k.C, k.H, k.W, k.x_total, k.x_offset, 7);
        DeviceBuffer x(gpu, t.x.buffer()), prob(gpu, t.prob.buffer()), labels_dev(gpu, labels), loss(gpu, 1);
        GPU_CALL(gpu, softmax_loss_forward, s, x.get(), labels_dev.get(), prob.get(), loss.get(), gpu.stream());
        const float expected_loss = kernels::ref::softmax_loss_forward(s, t.x.data(), labels.data(), t.prob.data());
        expect_close(prob.download(), t.prob.buffer(), 1e-6f, 1e-5f, "loss forward: prob");
        expect_close({download_scalar(loss)}, {expected_loss}, 1e-5f, 1e-5f, "loss forward: loss");

        prob.upload(t.prob.buffer());
        DeviceBuffer dx_dev(gpu, dx.buffer());
        const float loss_grad = 0.7f;
        GPU_CALL(gpu, softmax_loss_backward, s, prob.get(), labels_dev.get(), loss_grad, dx_dev.get(), accumulate,
                 gpu.stream());
        kernels::ref::softmax_loss_backward(s, t.prob.data(), labels.data(), loss_grad, dx.data(), accumulate);
        expect_close(dx_dev.download(), dx.buffer(), 1e-6f, 1e-5f, "loss backward");
      }
    }
  }
}

GPU_TEST("an invalid label makes the loss NaN and its location's gradient NaN") {
  for (const Case& k : {kCases[0], kCases[1]}) {
    CAPTURE(k.name);
    Tensors t = tensors_for(k);
    const SoftmaxLossShape s{t.s, -1};
    std::vector<float> labels = random_labels(k, 0, -1, 8);
    labels[1] = float(k.C);  // one past the last class
    DeviceBuffer x(gpu, t.x.buffer()), prob(gpu, t.prob.buffer()), labels_dev(gpu, labels), loss(gpu, 1);
    GPU_CALL(gpu, softmax_loss_forward, s, x.get(), labels_dev.get(), prob.get(), loss.get(), gpu.stream());
    CHECK(std::isnan(download_scalar(loss)));

    DeviceBuffer dx(gpu, std::vector<float>(t.x.buffer().size(), 0.f));
    GPU_CALL(gpu, softmax_loss_backward, s, prob.get(), labels_dev.get(), 1.f, dx.get(), false, gpu.stream());
    const std::vector<float> grad = dx.download();
    // Location 1 is (n 0, pixel 1) on a map and (n 1) on a classifier; every channel there is NaN, nothing else.
    const int64_t plane = int64_t(k.H) * k.W;
    const int64_t n = 1 / plane, pixel = 1 % plane;
    size_t nan_count = 0;
    for (float v : grad) nan_count += std::isnan(v);
    CHECK(nan_count == size_t(k.C));
    CHECK(std::isnan(grad[t.s.x.plane(n, 0) + pixel]));
  }
}

GPU_TEST("softmax launchers reject a bad shape, naming the kernel") {
  const SoftmaxShape s{2, 0, 1, 1, kernels::Placement::dense(0, 1, 1), kernels::Placement::dense(0, 1, 1)};
  DeviceBuffer buffer(gpu, 4);
  CHECK_THROWS_WITH_AS(GPU_CALL(gpu, softmax_forward, s, buffer.get(), buffer.get(), gpu.stream()),
                       doctest::Contains("softmax_forward"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(GPU_CALL(gpu, softmax_loss_backward, SoftmaxLossShape{s, -1}, buffer.get(), buffer.get(), 1.f,
                                buffer.get(), false, gpu.stream()),
                       doctest::Contains("softmax_loss_backward"), std::invalid_argument);
}

GPU_TEST("the loss has the same bits on every run and schedule") {
  const Case& k = kCases[7];  // 5000 locations: every thread of the loss block adds several
  Tensors t = tensors_for(k);
  const SoftmaxLossShape s{t.s, -1};
  const std::vector<float> labels = random_labels(k, 3, -1, 9);
  DeviceBuffer x(gpu, t.x.buffer()), prob(gpu, t.prob.buffer()), labels_dev(gpu, labels), loss(gpu, 1);
  GPU_CALL(gpu, softmax_loss_forward, s, x.get(), labels_dev.get(), prob.get(), loss.get(), gpu.stream());
  const float value = download_scalar(loss);
  static std::map<std::string, float> first_run;  // per backend: simt and cuda may differ
  const auto [it, inserted] = first_run.emplace(gpu.name(), value);
  if (!inserted) CHECK(std::memcmp(&it->second, &value, sizeof value) == 0);
  GPU_CALL(gpu, softmax_loss_forward, s, x.get(), labels_dev.get(), prob.get(), loss.get(), gpu.stream());
  const float again = download_scalar(loss);
  CHECK(std::memcmp(&value, &again, sizeof value) == 0);
}
