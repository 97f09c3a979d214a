#pragma once
// The training loop for an image classifier held in memory: minibatch SGD over shuffled samples, evaluation on a
// held-out set. The batch of every iteration is a pure function of (seed, iteration): the permutation of epoch
// e is drawn from (seed, e), so a run resumed from a checkpoint at iteration i continues exactly as if it had
// never stopped.
#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "engine/solver.h"
#include "engine/tensor.h"

namespace massmap::nets {

struct ClassifierData {
  Tensor images;              // (M, C, H, W)
  std::vector<float> labels;  // (M)
};

struct EpochReport {
  int64_t iteration = 0;
  double train_loss = 0;  // mean over the iterations since the previous report
  double held_out_accuracy = 0;
};

struct TrainLoopOptions {
  uint64_t seed = 1;
  int64_t iterations = 0;    // train until the solver reaches this iteration
  int64_t report_every = 0;  // evaluate every this many iterations (0: once per epoch)
  bool progress = true;
  std::function<void(const EpochReport&)> on_report;
  // Checked before every step: when set, the loop returns early (the caller saves a checkpoint).
  const std::atomic<bool>* stop = nullptr;
};

// Inputs of the graph: "data" (B, C, H, W) and "label" (B); the loss node is "loss" with probabilities
// "loss.prob".
std::vector<EpochReport> train_classifier(Solver& solver, const ClassifierData& train, const ClassifierData& held_out,
                                          const TrainLoopOptions& options);
// Fraction of samples whose highest probability is their label (dropout off). The last partial batch is padded
// with repeated samples that are not counted.
double classifier_accuracy(Solver& solver, const ClassifierData& data);

}  // namespace massmap::nets
