#include "nets/layers.h"

#include <algorithm>
#include <cmath>

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
                           int groups, const Filler& filler) {
  const Shape& xs = g_.value(x).shape;
  const int64_t in_per_group = xs.size() == 4 ? xs[1] / std::max(groups, 1) : 0;
  ValueId w = g_.add_param(name + ".weight", {num_output, in_per_group, kernel, kernel}, filler.weight);
  ValueId b = g_.add_param(name + ".bias", {num_output}, filler.bias);
  return g_.add("conv2d", name, {x, w, b},
                {{"num_output", int64_t(num_output)},
                 {"kernel", int64_t(kernel)},
                 {"stride", int64_t(stride)},
                 {"pad", int64_t(pad)},
                 {"groups", int64_t(groups)}});
}

ValueId LayerBuilder::linear(const std::string& name, ValueId x, int num_output, const Filler& filler) {
  const Shape& xs = g_.value(x).shape;
  ValueId w = g_.add_param(name + ".weight", {num_output, xs.size() == 2 ? xs[1] : 0}, filler.weight);
  ValueId b = g_.add_param(name + ".bias", {num_output}, filler.bias);
  return g_.add("linear", name, {x, w, b}, {{"num_output", int64_t(num_output)}});
}

ValueId LayerBuilder::relu(const std::string& name, ValueId x) {
  return g_.add("relu", name, {x});
}

ValueId LayerBuilder::max_pool(const std::string& name, ValueId x, int kernel, int stride, int pad) {
  return g_.add("pool", name, {x},
                {{"method", std::string("max")},
                 {"kernel", int64_t(kernel)},
                 {"stride", int64_t(stride)},
                 {"pad", int64_t(pad)}});
}

ValueId LayerBuilder::avg_pool(const std::string& name, ValueId x, int kernel, int stride, int pad) {
  return g_.add("pool", name, {x},
                {{"method", std::string("avg")},
                 {"kernel", int64_t(kernel)},
                 {"stride", int64_t(stride)},
                 {"pad", int64_t(pad)}});
}

ValueId LayerBuilder::global_avg_pool(const std::string& name, ValueId x) {
  return g_.add("pool", name, {x}, {{"method", std::string("avg")}, {"global", int64_t(1)}});
}

ValueId LayerBuilder::lrn(const std::string& name, ValueId x, int size, double alpha, double beta, double k) {
  return g_.add("lrn", name, {x}, {{"size", int64_t(size)}, {"alpha", alpha}, {"beta", beta}, {"k", k}});
}

ValueId LayerBuilder::dropout(const std::string& name, ValueId x, double ratio, int64_t seed) {
  return g_.add("dropout", name, {x}, {{"ratio", ratio}, {"seed", seed}});
}

ValueId LayerBuilder::flatten(const std::string& name, ValueId x) {
  return g_.add("flatten", name, {x});
}

ValueId LayerBuilder::concat(const std::string& name, const std::vector<ValueId>& xs) {
  return g_.add("concat", name, xs);
}

ValueId LayerBuilder::softmax(const std::string& name, ValueId x) {
  return g_.add("softmax", name, {x});
}

ValueId LayerBuilder::softmax_loss(const std::string& name, ValueId logits, ValueId labels, double loss_weight) {
  return g_.add("softmax_loss", name, {logits, labels}, {{"loss_weight", loss_weight}});
}

}  // namespace massmap::nets
