#include "engine/autograd.h"

#include "base/errors.h"
#include "engine/op.h"

namespace massmap {

std::string gradient_name(const std::string& value_name) {
  return "grad/" + value_name;
}

GradBuilder::GradBuilder(Graph& graph, bool input_grads) : graph_(graph), needs_grad_(size_t(graph.num_values())) {
  for (ValueId v = 0; v < graph.num_values(); ++v) {
    ValueKind k = graph.value(v).kind;
    needs_grad_[size_t(v)] = k == ValueKind::parameter || (input_grads && k == ValueKind::input);
  }
  // Forward nodes are in topological order: a node's outputs need gradients if any of its inputs does.
  for (const Node& n : graph.nodes()) {
    if (!op_def(n.op).backward) continue;
    bool any = false;
    for (ValueId in : n.inputs) any = any || needs_grad_[size_t(in)];
    for (ValueId out : n.outputs) needs_grad_[size_t(out)] = any;
  }
}

ValueId GradBuilder::grad(ValueId v) const {
  auto it = grads_.find(v);
  return it == grads_.end() ? -1 : it->second;
}

ValueId GradBuilder::gradient_buffer(ValueId target, bool* existed) {
  *existed = grads_.count(target) != 0;
  if (!*existed) {
    const Value t = graph_.value(target);  // a copy: new_value may move the graph's values
    ValueId g = graph_.new_value(gradient_name(t.name), t.shape, ValueKind::gradient);
    graph_.value(g).grad_of = target;
    grads_[target] = g;
  }
  return grads_[target];
}

Node GradBuilder::backward_node(const Node& forward, const std::string& op, std::vector<ValueId> inputs) const {
  for (ValueId in : inputs)
    if (in < 0) throw Error("backward of '" + forward.name + "' (" + op + ") reads a missing gradient");
  Node node;
  node.name = forward.name + "/" + op;
  node.op = op;
  node.attrs = forward.attrs;
  node.inputs = std::move(inputs);
  node.forward_of = current_forward_;
  return node;
}

NodeId GradBuilder::emit(const Node& forward, const std::string& op, std::vector<ValueId> inputs, ValueId target,
                         Attrs extra) {
  if (!needs_grad(target)) return -1;
  Node node = backward_node(forward, op, std::move(inputs));
  for (const auto& [k, v] : extra.items()) node.attrs.set(k, v);
  bool existed = false;
  node.outputs = {gradient_buffer(target, &existed)};
  node.accumulate = {existed};
  return graph_.append_node(std::move(node));
}

NodeId GradBuilder::emit_several(const Node& forward, const std::string& op, std::vector<ValueId> inputs,
                                 const std::vector<ValueId>& targets) {
  bool any = false;
  for (ValueId t : targets) any = any || needs_grad(t);
  if (!any) return -1;
  Node node = backward_node(forward, op, std::move(inputs));
  for (size_t k = 0; k < targets.size(); ++k) {
    bool existed = false;
    const Shape shape = graph_.value(targets[k]).shape;  // a copy: new_value may move the graph's values
    const ValueId g =
        needs_grad(targets[k])
            ? gradient_buffer(targets[k], &existed)
            : graph_.new_value(gradient_name(forward.name + ".unused" + std::to_string(k)), shape, ValueKind::gradient);
    node.outputs.push_back(g);
    node.accumulate.push_back(existed);
  }
  return graph_.append_node(std::move(node));
}

ValueId GradBuilder::emit_temporary(const Node& forward, const std::string& op, std::vector<ValueId> inputs,
                                    ValueId like, const std::string& suffix) {
  Node node = backward_node(forward, op, std::move(inputs));
  const Shape shape = graph_.value(like).shape;  // a copy: new_value may move the graph's values
  ValueId g = graph_.new_value(gradient_name(forward.name + "." + suffix), shape, ValueKind::gradient);
  node.outputs = {g};
  node.accumulate = {false};
  graph_.append_node(std::move(node));
  return g;
}

void build_backward(Graph& graph, bool input_grads) {
  GradBuilder b(graph, input_grads);
  const int forward_nodes = graph.num_nodes();
  bool has_loss = false;
  for (NodeId id = forward_nodes - 1; id >= 0; --id) {
    Node n = graph.node(id);  // a copy: emitting appends to the node list
    const OpDef& def = op_def(n.op);
    if (!def.backward) continue;
    bool reached = def.is_loss;
    for (ValueId out : n.outputs) reached = reached || b.grad(out) >= 0;
    has_loss = has_loss || def.is_loss;
    if (!reached) continue;
    b.current_forward_ = id;
    def.backward(b, n);
  }
  if (!has_loss) throw BadConfig("cannot build a training graph: the graph has no loss node");
}

ValueId gradient_of(const Graph& graph, ValueId v) {
  return graph.find(gradient_name(graph.value(v).name));
}

}  // namespace massmap
