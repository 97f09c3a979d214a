#include "engine/graph.h"

#include <cstdio>
#include <sstream>

#include "base/errors.h"
#include "engine/op.h"

namespace massmap {

namespace {
std::string with_commas(int64_t v) {
  std::string s = std::to_string(v);
  for (int i = int(s.size()) - 3; i > (v < 0 ? 1 : 0); i -= 3) s.insert(size_t(i), ",");
  return s;
}
}  // namespace

std::string attr_value_str(const AttrValue& v) {
  std::ostringstream o;
  if (auto p = std::get_if<int64_t>(&v))
    o << *p;
  else if (auto p = std::get_if<double>(&v))
    o << *p;
  else if (auto p = std::get_if<std::string>(&v))
    o << *p;
  else if (auto p = std::get_if<std::vector<int64_t>>(&v))
    o << shape_str(*p);
  return o.str();
}

const AttrValue* Attrs::lookup(const std::string& key) const {
  auto it = map_.find(key);
  return it == map_.end() ? nullptr : &it->second;
}

std::string Attrs::str() const {
  std::string s;
  for (const auto& [k, v] : map_) s += (s.empty() ? "" : " ") + k + "=" + attr_value_str(v);
  return s;
}

ValueId Graph::new_value(const std::string& name, Shape shape, ValueKind kind) {
  if (by_name_.count(name)) throw BadConfig("graph already has a value named '" + name + "'");
  Value v;
  v.name = name;
  v.shape = std::move(shape);
  v.kind = kind;
  values_.push_back(std::move(v));
  ValueId id = ValueId(values_.size() - 1);
  by_name_[name] = id;
  return id;
}

ValueId Graph::add_input(const std::string& name, Shape shape) {
  return new_value(name, std::move(shape), ValueKind::input);
}

ValueId Graph::add_param(const std::string& name, Shape shape, ParamSpec spec) {
  ValueId id = new_value(name, std::move(shape), ValueKind::parameter);
  values_[size_t(id)].param = std::move(spec);
  return id;
}

NodeId Graph::append_node(Node node) {
  if (node.accumulate.size() < node.outputs.size()) node.accumulate.resize(node.outputs.size(), false);
  nodes_.push_back(std::move(node));
  NodeId id = NodeId(nodes_.size() - 1);
  for (ValueId out : nodes_.back().outputs)
    if (values_[size_t(out)].producer < 0) values_[size_t(out)].producer = id;
  return id;
}

std::vector<ValueId> Graph::add_node(const std::string& op, const std::string& name, std::vector<ValueId> inputs,
                                     Attrs attrs) {
  const OpDef& def = op_def(op);
  Node node;
  node.name = name;
  node.op = op;
  node.attrs = std::move(attrs);
  node.inputs = std::move(inputs);
  check_node_attrs(node);
  std::vector<Shape> in_shapes;
  for (ValueId v : node.inputs) {
    if (v < 0 || v >= num_values()) throw BadConfig("node '" + name + "' (" + op + "): input value id out of range");
    in_shapes.push_back(values_[size_t(v)].shape);
  }
  if (int(in_shapes.size()) < def.min_inputs || int(in_shapes.size()) > def.max_inputs)
    shape_error(node, in_shapes,
                "takes " + std::to_string(def.min_inputs) +
                    (def.max_inputs != def.min_inputs ? " to " + std::to_string(def.max_inputs) : "") + " inputs");
  std::vector<Shape> out_shapes = def.infer(node, in_shapes);
  for (size_t i = 0; i < out_shapes.size(); ++i) {
    const std::string& suffix = def.output_suffixes.at(i);
    node.outputs.push_back(
        new_value(suffix.empty() ? name : name + "." + suffix, out_shapes[i], ValueKind::activation));
  }
  append_node(std::move(node));
  return nodes_.back().outputs;
}

ValueId Graph::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? -1 : it->second;
}

ValueId Graph::at(const std::string& name) const {
  ValueId v = find(name);
  if (v < 0) throw BadConfig("the graph has no value named '" + name + "'");
  return v;
}

std::vector<ValueId> Graph::params() const {
  std::vector<ValueId> out;
  for (ValueId v = 0; v < num_values(); ++v)
    if (values_[size_t(v)].kind == ValueKind::parameter) out.push_back(v);
  return out;
}

std::vector<ValueId> Graph::inputs() const {
  std::vector<ValueId> out;
  for (ValueId v = 0; v < num_values(); ++v)
    if (values_[size_t(v)].kind == ValueKind::input) out.push_back(v);
  return out;
}

std::vector<NodeId> Graph::consumers(ValueId v) const {
  std::vector<NodeId> out;
  for (NodeId n = 0; n < num_nodes(); ++n)
    for (ValueId in : nodes_[size_t(n)].inputs)
      if (in == v) {
        out.push_back(n);
        break;
      }
  return out;
}

int64_t Graph::num_parameters() const {
  int64_t total = 0;
  for (ValueId v : params()) total += shape_numel(values_[size_t(v)].shape);
  return total;
}

Cost Graph::cost(const Node& n) const {
  const OpDef& def = op_def(n.op);
  if (!def.cost) return {};
  std::vector<Shape> in, out;
  for (ValueId v : n.inputs) in.push_back(values_[size_t(v)].shape);
  for (ValueId v : n.outputs) out.push_back(values_[size_t(v)].shape);
  return def.cost(n, in, out);
}

int64_t Graph::macs(const Node& n) const {
  return cost(n).macs;
}

int64_t Graph::total_macs() const {
  int64_t total = 0;
  for (const Node& n : nodes_)
    if (n.forward_of < 0) total += macs(n);
  return total;
}

std::string Graph::layer_table() const {
  // Bytes in KiB, MiB or GiB; arithmetic intensity as FLOPs (2 per multiply-add) per byte moved, "-" without either.
  auto byte_text = [](int64_t bytes) {
    char text[32];
    const double b = double(bytes);
    if (b >= double(int64_t(1) << 30))
      std::snprintf(text, sizeof text, "%.2f GiB", b / double(int64_t(1) << 30));
    else if (b >= double(1 << 20))
      std::snprintf(text, sizeof text, "%.1f MiB", b / double(1 << 20));
    else
      std::snprintf(text, sizeof text, "%.1f KiB", b / 1024);
    return std::string(text);
  };
  auto intensity = [](const Cost& c) {
    char text[32] = "-";
    if (c.macs > 0 && c.bytes > 0) std::snprintf(text, sizeof text, "%.1f", 2.0 * double(c.macs) / double(c.bytes));
    return std::string(text);
  };
  std::ostringstream o;
  char line[320];
  const char* const format = "%-32s %-13s %-22s %14s %16s %11s %10s\n";
  std::snprintf(line, sizeof line, format, "layer", "op", "output", "parameters", "multiply-adds", "bytes moved",
                "FLOP/byte");
  const std::string rule(124, '-');
  o << line << rule << "\n";
  int64_t total_params = 0;
  Cost total;
  for (const Node& n : nodes_) {
    if (n.forward_of >= 0) continue;
    int64_t params = 0;
    for (ValueId v : n.inputs)
      if (values_[size_t(v)].kind == ValueKind::parameter) params += shape_numel(values_[size_t(v)].shape);
    const Cost c = cost(n);
    total_params += params;
    total.macs += c.macs;
    total.bytes += c.bytes;
    std::snprintf(line, sizeof line, format, n.name.c_str(), n.op.c_str(),
                  shape_str(values_[size_t(n.outputs.front())].shape).c_str(), with_commas(params).c_str(),
                  with_commas(c.macs).c_str(), byte_text(c.bytes).c_str(), intensity(c).c_str());
    o << line;
  }
  o << rule << "\n";
  std::snprintf(line, sizeof line, format, "total", "", "", with_commas(total_params).c_str(),
                with_commas(total.macs).c_str(), byte_text(total.bytes).c_str(), intensity(total).c_str());
  o << line;
  return o.str();
}

}  // namespace massmap
