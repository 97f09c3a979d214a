// for_inference: the classifier as it runs at test time. The main loss (the loss node named "loss", or the only
// one) becomes softmax "prob" on its logits; every node the main classifier does not read (auxiliary heads and
// their losses) is dropped with its parameters; dropout is removed, its readers reading its input directly.
#include <set>

#include "base/errors.h"
#include "engine/graph_rewriter.h"
#include "engine/op.h"
#include "engine/ops/dropout.h"
#include "engine/ops/softmax.h"
#include "engine/passes.h"

namespace massmap {

namespace {

// The node whose loss the inference graph keeps, or -1 when the graph has no loss.
NodeId main_loss(const Graph& g) {
  std::vector<NodeId> losses;
  for (NodeId n = 0; n < g.num_nodes(); ++n)
    if (op_def(g.node(n).op).is_loss) losses.push_back(n);
  if (losses.empty()) return -1;
  for (NodeId n : losses)
    if (g.node(n).name == "loss") return n;
  if (losses.size() == 1) return losses[0];
  std::string names;
  for (NodeId n : losses) names += (names.empty() ? "" : ", ") + g.node(n).name;
  throw BadConfig("for_inference: " + std::to_string(losses.size()) + " loss nodes (" + names +
                  ") and none named 'loss': which classifier to keep is ambiguous");
}

// Values the kept outputs depend on (walking producers back from `roots`).
std::vector<bool> needed_values(const Graph& g, const std::vector<ValueId>& roots) {
  std::vector<bool> needed(size_t(g.num_values()), false);  // (values)
  std::vector<ValueId> stack = roots;
  while (!stack.empty()) {
    const ValueId v = stack.back();
    stack.pop_back();
    if (needed[size_t(v)]) continue;
    needed[size_t(v)] = true;
    if (g.value(v).producer >= 0)
      for (ValueId in : g.node(g.value(v).producer).inputs) stack.push_back(in);
  }
  return needed;
}

}  // namespace

PassResult for_inference(const Graph& g) {
  const NodeId loss = main_loss(g);
  std::vector<ValueId> roots;  // the values the inference graph must compute
  if (loss >= 0) {
    roots.push_back(g.node(loss).inputs[0]);
  } else {  // already ends in its outputs: keep every value no node reads
    for (ValueId v = 0; v < g.num_values(); ++v)
      if (g.value(v).kind == ValueKind::activation && g.consumers(v).empty()) roots.push_back(v);
  }
  const std::vector<bool> needed = needed_values(g, roots);
  GraphRewriter rw(g);
  PassResult r;
  std::vector<std::string> dropped;
  for (NodeId id = 0; id < g.num_nodes(); ++id) {
    const Node& n = g.node(id);
    if (id == loss) {
      rw.add(ops::softmax, "prob", {rw.map(n.inputs[0])}, {}, {});
      r.changes.push_back("loss '" + n.name + "' (" + n.op + ") -> prob (softmax over " +
                          describe_value(g, n.inputs[0]) + ")");
      continue;
    }
    bool keep = false;
    for (ValueId v : n.outputs) keep = keep || needed[size_t(v)];
    if (!keep) {
      dropped.push_back(n.name);
      continue;
    }
    if (n.op == ops::dropout) {
      rw.alias(n.outputs[0], rw.map(n.inputs[0]));
      r.changes.push_back("dropout '" + n.name + "' removed (identity at test time; its readers read " +
                          g.value(n.inputs[0]).name + ")");
      continue;
    }
    rw.copy(id);
  }
  if (!dropped.empty()) {
    std::string names;
    for (const std::string& name : dropped) names += (names.empty() ? "" : ", ") + name;
    r.changes.push_back(std::to_string(dropped.size()) + " nodes the classifier does not read dropped: " + names);
  }
  r.graph = rw.finish();
  std::vector<std::string> gone_params, gone_inputs;
  for (ValueId v : g.params())
    if (r.graph.find(g.value(v).name) < 0) gone_params.push_back(g.value(v).name);
  for (ValueId v : g.inputs())
    if (r.graph.find(g.value(v).name) < 0) gone_inputs.push_back(g.value(v).name);
  auto list = [](const std::vector<std::string>& names) {
    std::string s;
    for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
    return s;
  };
  if (!gone_inputs.empty()) r.changes.push_back("inputs dropped: " + list(gone_inputs));
  if (!gone_params.empty())
    r.changes.push_back(std::to_string(gone_params.size()) + " parameters dropped: " + list(gone_params));
  if (r.changes.empty()) r.changes.push_back("nothing to change");
  return r;
}

}  // namespace massmap
