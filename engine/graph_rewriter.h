#pragma once
// Builds a new graph from an old one, node by node, for graph passes: a pass copies, drops, replaces and inserts
// nodes, and every node added re-runs its op's shape rule on the new shapes. Inputs and parameters are copied when
// a kept node first reads them, so whatever only dropped nodes read disappears with them.
#include <map>
#include <string>
#include <vector>

#include "engine/graph.h"

namespace massmap {

class GraphRewriter {
 public:
  explicit GraphRewriter(const Graph& source);
  const Graph& source() const { return src_; }
  const Graph& target() const { return dst_; }

  // The new value standing for old value v; an input or parameter is copied on its first use.
  ValueId map(ValueId old);
  // From now on old value `old` reads as new value `now` (a dropped node's output read as its input).
  void alias(ValueId old, ValueId now);
  // Copies old node n with its inputs mapped; its outputs keep their names.
  void copy(NodeId n);
  // Adds a node on new values; its outputs stand for the old values `replaces` (in order, may be fewer).
  std::vector<ValueId> add(const std::string& op, const std::string& name, std::vector<ValueId> inputs, Attrs attrs,
                           const std::vector<ValueId>& replaces);
  // Old parameter p copied under its name with another shape of the same elements; checkpoints keep its old shape.
  ValueId reshaped_param(ValueId p, Shape shape);
  // Old input v gets another shape (before anything reads it).
  void set_input_shape(ValueId v, Shape shape);
  // The new graph, with the source's metadata and crop.
  Graph finish();

 private:
  const Graph& src_;
  Graph dst_;
  std::map<ValueId, ValueId> map_;
  std::map<ValueId, Shape> input_shapes_;
};

// Shape, name and kind of `old` as a string for pass logs: "fc6 (1, 4096)".
std::string describe_value(const Graph& g, ValueId v);

}  // namespace massmap
