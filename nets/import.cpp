#include "nets/import.h"

#include <set>

#include "base/errors.h"
#include "engine/init.h"
#include "engine/ops/conv.h"
#include "engine/ops/linear.h"
#include "engine/ops/softmax.h"

namespace massmap::nets {

namespace {

// Parameters of convolutions whose data input is a graph input: the first layer, whose input channels differ.
std::set<ValueId> first_layer_weights(const Graph& g) {
  std::set<ValueId> out;
  for (const Node& n : g.nodes()) {
    if (n.forward_of >= 0 || n.op != ops::conv2d || n.inputs.size() < 2) continue;
    if (g.value(n.inputs[0]).kind == ValueKind::input) out.insert(n.inputs[1]);
  }
  return out;
}

// Parameters (weights and biases) of the layers whose output goes straight into a softmax or a softmax loss.
std::set<ValueId> classifier_params(const Graph& g) {
  std::set<ValueId> out;
  for (const Node& n : g.nodes()) {
    if (n.forward_of >= 0 || (n.op != ops::softmax && n.op != ops::softmax_loss) || n.inputs.empty()) continue;
    const NodeId p = g.value(n.inputs[0]).producer;
    if (p < 0) continue;
    const Node& producer = g.node(p);
    if (producer.op != ops::linear && producer.op != ops::conv2d) continue;
    for (ValueId v : producer.inputs)
      if (g.value(v).kind == ValueKind::parameter) out.insert(v);
  }
  return out;
}

}  // namespace

TensorFile import_weights(const TensorFile& weights, const Graph& target, uint64_t seed, const std::string& file,
                          ImportReport* report) {
  ImportReport local;
  ImportReport& r = report ? *report : local;
  const std::set<ValueId> first = first_layer_weights(target), classifier = classifier_params(target);
  TensorFile out;
  out.metadata = weights.metadata;
  for (const auto& [k, v] : target.metadata) out.metadata[k] = v;
  out.metadata["imported_from"] = file;
  std::set<std::string> used;
  for (ValueId p : target.params()) {
    const Value& param = target.value(p);
    const std::string& name = param.name;
    auto it = weights.tensors.find(name);
    if (it == weights.tensors.end()) throw BadInput(file + ": no tensor '" + name + "' (the target net needs it)");
    used.insert(name);
    const Tensor& src = it->second;
    const Shape& want = param.shape;
    const Shape& got = src.shape();
    auto mismatch = [&](const std::string& why) {
      return BadInput(file + ": tensor '" + name + "' has shape " + shape_str(got) + ", the target net wants " +
                      shape_str(want) + (why.empty() ? "" : " (" + why + ")"));
    };
    if (got == want) {
      out.tensors[name] = src.to(Device::cpu);
      r.copied.push_back(name);
    } else if (first.count(p)) {
      // (K, C, R, S) -> (K, 1, R, S): w'[k][0][r][s] = sum_c w[k][c][r][s].
      if (got.size() != 4 || want.size() != 4 || want[1] != 1 || got[0] != want[0] || got[2] != want[2] ||
          got[3] != want[3])
        throw mismatch("only a sum over input channels into a 1-channel first layer is supported");
      Tensor host = src.to(Device::cpu);
      Tensor sum = Tensor::zeros(want);
      const int64_t K = got[0], C = got[1], RS = got[2] * got[3];
      for (int64_t k = 0; k < K; ++k)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t i = 0; i < RS; ++i) sum.data()[k * RS + i] += host.data()[(k * C + c) * RS + i];
      out.tensors[name] = sum;
      r.summed.push_back(name);
    } else if (classifier.count(p)) {
      // A new class count: outputs differ, everything else must agree.
      if (got.size() != want.size() || got.empty()) throw mismatch("");
      for (size_t d = 1; d < got.size(); ++d)
        if (got[d] != want[d]) throw mismatch("a classifier can change its class count, not its inputs");
      Tensor fresh(want);
      initialise(fresh, param.param.init, seed, name);
      out.tensors[name] = fresh;
      r.replaced.push_back(name);
    } else {
      throw mismatch("");
    }
  }
  for (const auto& [name, t] : weights.tensors)
    if (!used.count(name)) r.dropped.push_back(name);
  return out;
}

}  // namespace massmap::nets
