#include "nets/train_classifier.h"

#include <cstring>
#include <numeric>

#include "base/errors.h"
#include "base/philox.h"
#include "base/progress.h"

namespace massmap::nets {

namespace {

// Fisher-Yates with draws from (seed, epoch): the same permutation whatever happened before.
std::vector<int64_t> epoch_order(uint64_t seed, int64_t epoch, int64_t count) {
  std::vector<int64_t> order(static_cast<size_t>(count));
  std::iota(order.begin(), order.end(), 0);
  for (int64_t i = count - 1; i > 0; --i) {
    const uint32_t bits = random_bits_at(seed, uint64_t(epoch), uint64_t(i));
    std::swap(order[size_t(i)], order[size_t(uint64_t(bits) % uint64_t(i + 1))]);
  }
  return order;
}

// Copies samples `indices` of `data` into the executor's "data" and "label" inputs (on any device).
void load_batch(Executor& ex, const ClassifierData& data, const std::vector<int64_t>& indices) {
  const Shape& input = ex.graph().value(ex.graph().at("data")).shape;
  const int64_t per_image = shape_numel(input) / input[0];
  if (per_image != data.images.numel() / data.images.dim(0))
    throw BadInput("samples have shape " + shape_str(data.images.shape()) + " but the net's input is " +
                   shape_str(input));
  Tensor images(input);                      // (B, C, H, W) on the host
  Tensor labels({int64_t(indices.size())});  // (B)
  for (size_t b = 0; b < indices.size(); ++b) {
    std::memcpy(images.data() + int64_t(b) * per_image, data.images.data() + indices[b] * per_image,
                size_t(per_image) * sizeof(float));
    labels.at(int64_t(b)) = data.labels[size_t(indices[b])];
  }
  ex.set_input("data", images);
  ex.set_input("label", labels);
}

}  // namespace

double classifier_accuracy(Solver& solver, const ClassifierData& data) {
  Executor& ex = solver.executor();
  const int64_t batch = ex.graph().value(ex.graph().at("data")).shape[0], count = data.images.dim(0);
  if (count == 0) return 0;
  int64_t correct = 0;
  for (int64_t start = 0; start < count; start += batch) {
    std::vector<int64_t> idx;
    for (int64_t b = 0; b < batch; ++b) idx.push_back(start + b < count ? start + b : start);
    load_batch(ex, data, idx);
    ex.forward(solver.context(false));
    Tensor prob = ex.read("loss.prob");  // (B, K)
    const int64_t classes = prob.dim(1);
    for (int64_t b = 0; b < batch && start + b < count; ++b) {
      int64_t best = 0;
      for (int64_t k = 1; k < classes; ++k)
        if (prob.at(b * classes + k) > prob.at(b * classes + best)) best = k;
      correct += best == int64_t(data.labels[size_t(start + b)]);
    }
  }
  return double(correct) / double(count);
}

std::vector<EpochReport> train_classifier(Solver& solver, const ClassifierData& train, const ClassifierData& held_out,
                                          const TrainLoopOptions& o) {
  Executor& ex = solver.executor();
  const int64_t batch = ex.graph().value(ex.graph().at("data")).shape[0], count = train.images.dim(0);
  if (count < batch)
    throw BadInput("training set has " + std::to_string(count) + " samples, fewer than one batch of " +
                   std::to_string(batch));
  const int64_t per_epoch = count / batch;  // the remainder of each permutation is skipped
  const int64_t report_every = o.report_every > 0 ? o.report_every : per_epoch;
  std::vector<EpochReport> reports;
  Progress progress("train", o.iterations);
  double loss_sum = 0;
  int64_t loss_count = 0;
  std::vector<int64_t> order;
  int64_t order_epoch = -1;
  while (solver.iteration() < o.iterations) {
    if (o.stop && o.stop->load()) return reports;
    const int64_t it = solver.iteration(), epoch = it / per_epoch, slot = it % per_epoch;
    if (epoch != order_epoch) {
      order = epoch_order(o.seed, epoch, count);
      order_epoch = epoch;
    }
    load_batch(ex, train, std::vector<int64_t>(order.begin() + slot * batch, order.begin() + (slot + 1) * batch));
    loss_sum += solver.step();
    ++loss_count;
    if (o.progress) progress.update(solver.iteration(), "loss " + std::to_string(loss_sum / double(loss_count)));
    if (solver.iteration() % report_every == 0 || solver.iteration() == o.iterations) {
      EpochReport r;
      r.iteration = solver.iteration();
      r.train_loss = loss_sum / double(loss_count);
      r.held_out_accuracy = classifier_accuracy(solver, held_out);
      reports.push_back(r);
      if (o.on_report) o.on_report(r);
      loss_sum = 0;
      loss_count = 0;
    }
  }
  if (o.progress) progress.finish();
  return reports;
}

}  // namespace massmap::nets
