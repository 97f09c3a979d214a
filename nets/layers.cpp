#include "nets/layers.h"

#include <algorithm>
#include <cmath>

#include "engine/ops/batch_norm.h"
#include "engine/ops/concat.h"
#include "engine/ops/conv.h"
#include "engine/ops/dropout.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linear.h"
#include "engine/ops/lrn.h"
#include "engine/ops/pool.h"
#include "engine/ops/softmax.h"

namespace massmap::nets {

Filler::Filler() {
  weight.init.type = "gaussian";
  weight.init.std = 0.01f;
  bias.init.type = "constant";
  bias.init.value = 0.f;
  bias.lr_mult = 2.f;
  bias.decay_mult = 0.f;
}

int scaled_channels(int channels, double width, int groups) {
  groups = std::max(groups, 1);
  const double units = double(channels) * width / double(groups);
  return std::max(1, int(std::lround(units))) * groups;
}

ValueId LayerBuilder::conv(const std::string& name, ValueId x, int num_output, int kernel, int stride, int pad,
                           int groups, const Filler& filler, bool bias) {
  const Shape& xs = g_.value(x).shape;
  const int64_t in_per_group = xs.size() == 4 ? xs[1] / std::max(groups, 1) : 0;
  ValueId w = g_.add_param(name + ".weight", {num_output, in_per_group, kernel, kernel}, filler.weight);
  std::vector<ValueId> inputs{x, w};
  if (bias) inputs.push_back(g_.add_param(name + ".bias", {num_output}, filler.bias));
  ConvAttrs a;
  a.num_output = num_output;
  a.kernel_h = a.kernel_w = kernel;
  a.stride = stride;
  a.pad = pad;
  a.groups = groups;
  return g_.add(ops::conv2d, name, inputs, write_attrs(a));
}

ValueId LayerBuilder::linear(const std::string& name, ValueId x, int num_output, const Filler& filler) {
  const Shape& xs = g_.value(x).shape;
  ValueId w = g_.add_param(name + ".weight", {num_output, xs.size() == 2 ? xs[1] : 0}, filler.weight);
  ValueId b = g_.add_param(name + ".bias", {num_output}, filler.bias);
  LinearAttrs a;
  a.num_output = num_output;
  return g_.add(ops::linear, name, {x, w, b}, write_attrs(a));
}

ValueId LayerBuilder::relu(const std::string& name, ValueId x) {
  return g_.add(ops::relu, name, {x});
}

ValueId LayerBuilder::batch_norm(const std::string& name, ValueId x, double momentum, double eps) {
  const Shape& xs = g_.value(x).shape;
  const int64_t channels = xs.size() > 1 ? xs[1] : 0;
  auto constant = [](float value, float lr_mult, float decay_mult) {
    ParamSpec p;
    p.init.type = "constant";
    p.init.value = value;
    p.lr_mult = lr_mult;
    p.decay_mult = decay_mult;
    return p;
  };
  // No weight decay on the affine part (it would pull gamma to 0); the running statistics are not learnt.
  ValueId gamma = g_.add_param(name + ".gamma", {channels}, constant(1, 1, 0));
  ValueId beta = g_.add_param(name + ".beta", {channels}, constant(0, 1, 0));
  ValueId mean = g_.add_param(name + ".running_mean", {channels}, constant(0, 0, 0));
  ValueId var = g_.add_param(name + ".running_var", {channels}, constant(1, 0, 0));
  BatchNormAttrs a;
  a.momentum = momentum;
  a.eps = eps;
  return g_.add(ops::batch_norm, name, {x, gamma, beta, mean, var}, write_attrs(a));
}

ValueId LayerBuilder::pool(const std::string& name, ValueId x, kernels::PoolMethod method, int kernel, int stride,
                           int pad) {
  PoolAttrs a;
  a.method = method;
  a.kernel = kernel;
  a.stride = stride;
  a.pad = pad;
  return g_.add(ops::pool, name, {x}, write_attrs(a));
}

ValueId LayerBuilder::max_pool(const std::string& name, ValueId x, int kernel, int stride, int pad) {
  return pool(name, x, kernels::PoolMethod::max, kernel, stride, pad);
}

ValueId LayerBuilder::avg_pool(const std::string& name, ValueId x, int kernel, int stride, int pad) {
  return pool(name, x, kernels::PoolMethod::avg, kernel, stride, pad);
}

ValueId LayerBuilder::global_avg_pool(const std::string& name, ValueId x) {
  PoolAttrs a;
  a.method = kernels::PoolMethod::avg;
  a.global = true;
  return g_.add(ops::pool, name, {x}, write_attrs(a));
}

ValueId LayerBuilder::lrn(const std::string& name, ValueId x, int size, double alpha, double beta, double k) {
  LrnAttrs a;
  a.size = size;
  a.alpha = alpha;
  a.beta = beta;
  a.k = k;
  return g_.add(ops::lrn, name, {x}, write_attrs(a));
}

ValueId LayerBuilder::dropout(const std::string& name, ValueId x, double ratio, int64_t seed) {
  DropoutAttrs a;
  a.ratio = ratio;
  a.seed = seed;
  return g_.add(ops::dropout, name, {x}, write_attrs(a));
}

ValueId LayerBuilder::flatten(const std::string& name, ValueId x) {
  return g_.add(ops::flatten, name, {x});
}

ValueId LayerBuilder::concat(const std::string& name, const std::vector<ValueId>& xs) {
  return g_.add(ops::concat, name, xs);
}

ValueId LayerBuilder::softmax(const std::string& name, ValueId x) {
  return g_.add(ops::softmax, name, {x});
}

ValueId LayerBuilder::softmax_loss(const std::string& name, ValueId logits, ValueId labels, double loss_weight) {
  SoftmaxLossAttrs a;
  a.loss_weight = loss_weight;
  return g_.add(ops::softmax_loss, name, {logits, labels}, write_attrs(a));
}

}  // namespace massmap::nets
