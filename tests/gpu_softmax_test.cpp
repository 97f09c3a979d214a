// GPU softmax and softmax cross-entropy loss against kernels::ref: a classifier (a warp per location), probability
// maps (a thread per location), few pixels with few or many channels, channel slices, large logits, ignore_label,
// accumulate, an invalid label; on simt (every schedule) and cuda. Whole buffers are compared: entries outside a
// slice must survive.
// Tolerances (float against the reference's double): probabilities and gradients 1e-6 + 1e-5 |ref|; the loss
// 1e-5 + 1e-5 |ref|.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/gpu.h"
#include "kernels/softmax.h"
#include "tests/support/check.h"
#include "tests/support/gpu.h"
#include "tests/support/placed_tensor.h"

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
