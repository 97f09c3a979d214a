#pragma once
// Caffe-style layer helpers for net builders: each adds one layer's node(s) and parameters ("<layer>.weight",
// "<layer>.bias") to a graph and returns its output value.
#include <string>
#include <vector>

#include "engine/graph.h"
#include "kernels/pool.h"

namespace massmap::nets {

struct Filler {
  ParamSpec weight;  // default: gaussian 0.01, lr_mult 1, decay_mult 1
  ParamSpec bias;    // default: constant 0, lr_mult 2, decay_mult 0 (Caffe's reference nets)
  Filler();
};

// A layer's channel count under a width multiplier: round(channels * width) to the nearest multiple of `groups`,
// at least `groups` (so a grouped convolution still splits evenly, and no layer vanishes).
int scaled_channels(int channels, double width, int groups = 1);

class LayerBuilder {
 public:
  explicit LayerBuilder(Graph& g) : g_(g) {}
  Graph& graph() { return g_; }
  // `bias` false: no "<name>.bias" (a convolution followed by batch_norm, whose beta is the bias and whose mean
  // subtraction would cancel one).
  ValueId conv(const std::string& name, ValueId x, int num_output, int kernel, int stride = 1, int pad = 0,
               int groups = 1, const Filler& filler = {}, bool bias = true);
  ValueId linear(const std::string& name, ValueId x, int num_output, const Filler& filler = {});
  ValueId relu(const std::string& name, ValueId x);
  // Batch normalisation of x's channels: "<name>.gamma" (1), "<name>.beta" (0), and the running statistics
  // "<name>.running_mean" (0) and "<name>.running_var" (1), parameters with lr_mult 0 that the training forward pass
  // updates (engine/ops/batch_norm.cpp).
  ValueId batch_norm(const std::string& name, ValueId x, double momentum = 0.1, double eps = 1e-5);
  ValueId pool(const std::string& name, ValueId x, kernels::PoolMethod method, int kernel, int stride, int pad = 0);
  ValueId max_pool(const std::string& name, ValueId x, int kernel, int stride, int pad = 0);
  ValueId avg_pool(const std::string& name, ValueId x, int kernel, int stride, int pad = 0);
  ValueId global_avg_pool(const std::string& name, ValueId x);
  ValueId lrn(const std::string& name, ValueId x, int size = 5, double alpha = 1e-4, double beta = 0.75, double k = 1);
  ValueId dropout(const std::string& name, ValueId x, double ratio, int64_t seed);
  ValueId flatten(const std::string& name, ValueId x);
  ValueId concat(const std::string& name, const std::vector<ValueId>& xs);
  ValueId softmax(const std::string& name, ValueId x);
  // Returns the loss value; its probabilities are "<name>.prob".
  ValueId softmax_loss(const std::string& name, ValueId logits, ValueId labels, double loss_weight = 1.0);

 private:
  Graph& g_;
};

}  // namespace massmap::nets
