#pragma once
// The static graph: values (tensors with shapes) and nodes (an op, attributes, inputs, outputs). Parameters are
// named values ("conv1.weight"). Builders in nets/ create graphs; the executor compiles them into schedules.
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "engine/init.h"
#include "engine/tensor.h"

namespace massmap {

using ValueId = int;
using NodeId = int;

enum class ValueKind {
  input,       // fed by the caller every step (images, labels)
  parameter,   // learned; initialised, updated by the solver, saved in checkpoints
  activation,  // produced by a forward node
  gradient,    // produced by a backward node (training schedules only)
  state        // solver state kept across steps (momentum history)
};

struct ParamSpec {
  InitSpec init;
  float lr_mult = 1.f;     // multiplies the policy's learning rate for this parameter
  float decay_mult = 1.f;  // multiplies the weight decay for this parameter
};

struct Value {
  std::string name;
  Shape shape;
  ValueKind kind = ValueKind::activation;
  NodeId producer = -1;  // first node writing it; -1 for inputs and parameters
  ParamSpec param;       // parameters only
  ValueId grad_of = -1;  // gradients only: the value this is the gradient of
  // Parameters only: the shape in checkpoints when it differs from `shape` (same elements in the same order): a
  // convolutionalized linear weight is (out, C, H, W) in the graph and (out, C*H*W) in the classifier's files.
  Shape saved_shape;
  const Shape& file_shape() const { return saved_shape.empty() ? shape : saved_shape; }
};

using AttrValue = std::variant<int64_t, double, std::string, std::vector<int64_t>>;

std::string attr_value_str(const AttrValue& v);  // "3", "0.0001", "max", "(3, 3)"

// A node's attributes in their generic, string-keyed form, the same for every op: what the graph stores, copies and
// prints (str(), in error messages), and what a graph file would hold. Code that builds, runs or rewrites a graph
// uses the op family's typed struct instead (engine/typed_attrs.h), so a key is spelled in one place only.
class Attrs {
 public:
  void set(const std::string& key, AttrValue v) { map_[key] = std::move(v); }
  const AttrValue* lookup(const std::string& key) const;  // null when absent
  bool empty() const { return map_.empty(); }
  const std::map<std::string, AttrValue>& items() const { return map_; }
  std::string str() const;  // "kernel=3 stride=2"
  bool operator==(const Attrs& o) const { return map_ == o.map_; }

 private:
  std::map<std::string, AttrValue> map_;
};

struct Node {
  std::string name;  // Caffe layer name: "conv1", "inception_3a/1x1"
  std::string op;
  Attrs attrs;
  std::vector<ValueId> inputs, outputs;
  // Per output: add into the buffer instead of overwriting it. Set on the second and later writers of a gradient
  // that several nodes contribute to (a value used by several nodes sums its gradients without extra buffers).
  std::vector<bool> accumulate;
  NodeId forward_of = -1;  // backward and update nodes: the forward node they come from
};

// What one node costs: the multiply-adds it does and the fewest bytes it must read and write (each input and
// output once), whose ratio is its arithmetic intensity.
struct Cost {
  int64_t macs = 0;
  int64_t bytes = 0;
};

class Graph {
 public:
  ValueId add_input(const std::string& name, Shape shape);
  ValueId add_param(const std::string& name, Shape shape, ParamSpec spec = {});
  // Adds a node and infers its outputs through the op's shape rule (errors name the node and the shapes).
  // Output 0 is named like the node; further outputs "<node>.<suffix>" with suffixes from the op.
  std::vector<ValueId> add_node(const std::string& op, const std::string& name, std::vector<ValueId> inputs,
                                Attrs attrs = {});
  ValueId add(const std::string& op, const std::string& name, std::vector<ValueId> inputs, Attrs attrs = {}) {
    return add_node(op, name, std::move(inputs), std::move(attrs)).front();
  }
  // Low level, for autograd and passes: a value with a given shape and kind, a node with given outputs.
  ValueId new_value(const std::string& name, Shape shape, ValueKind kind);
  NodeId append_node(Node node);

  const Value& value(ValueId v) const { return values_.at(size_t(v)); }
  Value& value(ValueId v) { return values_.at(size_t(v)); }
  const Node& node(NodeId n) const { return nodes_.at(size_t(n)); }
  Node& node(NodeId n) { return nodes_.at(size_t(n)); }
  int num_values() const { return int(values_.size()); }
  int num_nodes() const { return int(nodes_.size()); }
  const std::vector<Node>& nodes() const { return nodes_; }
  const std::vector<Value>& values() const { return values_; }
  ValueId find(const std::string& name) const;  // -1 if absent
  ValueId at(const std::string& name) const;    // throws BadConfig naming it
  std::vector<ValueId> params() const;
  std::vector<ValueId> inputs() const;
  std::vector<NodeId> consumers(ValueId v) const;
  int64_t num_parameters() const;

  // Name, op, output shape, parameters, multiply-adds, bytes moved and arithmetic intensity (FLOP per byte) per
  // forward node, and the totals.
  std::string layer_table() const;
  // A node's cost by its op's rule (zero for ops without one), its multiply-adds, and those of every forward node.
  Cost cost(const Node& n) const;
  int64_t macs(const Node& n) const;
  int64_t total_macs() const;

  // Builder name and options, preprocessing, class names...: saved in checkpoints' __metadata__.
  std::map<std::string, std::string> metadata;
  // Fully convolutional graphs (set by convolutionalize): (H, W) of the classifier's input, the crop each map cell
  // stands for; empty for other graphs.
  std::vector<int64_t> crop;

 private:
  std::vector<Value> values_;
  std::vector<Node> nodes_;
  std::map<std::string, ValueId> by_name_;
};

}  // namespace massmap
