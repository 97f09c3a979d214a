#include "engine/graph_rewriter.h"

#include "base/errors.h"

namespace massmap {

GraphRewriter::GraphRewriter(const Graph& source) : src_(source) {}

ValueId GraphRewriter::map(ValueId old) {
  auto it = map_.find(old);
  if (it != map_.end()) return it->second;
  const Value& v = src_.value(old);
  ValueId now = -1;
  if (v.kind == ValueKind::input) {
    auto shape = input_shapes_.find(old);
    now = dst_.add_input(v.name, shape == input_shapes_.end() ? v.shape : shape->second);
  } else if (v.kind == ValueKind::parameter) {
    now = dst_.add_param(v.name, v.shape, v.param);
    dst_.value(now).saved_shape = v.saved_shape;
  } else {
    throw BadConfig("graph pass: value '" + v.name + "' is read before the node producing it was rewritten");
  }
  map_[old] = now;
  return now;
}

void GraphRewriter::alias(ValueId old, ValueId now) {
  map_[old] = now;
}

void GraphRewriter::copy(NodeId n) {
  const Node& node = src_.node(n);
  if (node.forward_of >= 0)
    throw BadConfig("graph pass: node '" + node.name + "' (" + node.op +
                    ") belongs to a training schedule; passes rewrite forward graphs");
  std::vector<ValueId> inputs;
  for (ValueId v : node.inputs) inputs.push_back(map(v));
  add(node.op, node.name, inputs, node.attrs, node.outputs);
}

std::vector<ValueId> GraphRewriter::add(const std::string& op, const std::string& name, std::vector<ValueId> inputs,
                                        Attrs attrs, const std::vector<ValueId>& replaces) {
  std::vector<ValueId> out = dst_.add_node(op, name, std::move(inputs), std::move(attrs));
  for (size_t i = 0; i < replaces.size() && i < out.size(); ++i) map_[replaces[i]] = out[i];
  return out;
}

ValueId GraphRewriter::reshaped_param(ValueId p, Shape shape) {
  const Value& v = src_.value(p);
  if (v.kind != ValueKind::parameter) throw BadConfig("graph pass: '" + v.name + "' is not a parameter");
  if (shape_numel(shape) != shape_numel(v.shape))
    throw BadConfig("graph pass: parameter '" + v.name + "' " + shape_str(v.shape) + " cannot become " +
                    shape_str(shape) + " (another element count)");
  if (map_.count(p)) throw BadConfig("graph pass: parameter '" + v.name + "' is read in two shapes");
  ValueId now = dst_.add_param(v.name, shape, v.param);
  dst_.value(now).saved_shape = v.file_shape();
  map_[p] = now;
  return now;
}

void GraphRewriter::set_input_shape(ValueId v, Shape shape) {
  if (src_.value(v).kind != ValueKind::input) throw BadConfig("'" + src_.value(v).name + "' is not a graph input");
  if (map_.count(v)) throw BadConfig("input '" + src_.value(v).name + "' was read before its shape was set");
  input_shapes_[v] = std::move(shape);
}

Graph GraphRewriter::finish() {
  dst_.metadata = src_.metadata;
  dst_.crop = src_.crop;
  return std::move(dst_);
}

std::string describe_value(const Graph& g, ValueId v) {
  return g.value(v).name + " " + shape_str(g.value(v).shape);
}

}  // namespace massmap
