#pragma once
// The rewrite both ReLU fusions share: a node of `op` (attributes Attrs, with a `relu` flag) whose output only a relu
// reads becomes one node of `op` with relu set; readers of the relu's output read the fused node's. `how` ends each
// change line ("conv1 + relu1 -> conv1 (<how>)").
#include <string>
#include <vector>

#include "engine/graph_rewriter.h"
#include "engine/ops/elementwise.h"
#include "engine/passes.h"

namespace massmap {

template <class Attrs>
PassResult fuse_following_relu(const Graph& g, const std::string& op, const std::string& how) {
  GraphRewriter rw(g);
  PassResult r;
  std::vector<bool> fused(size_t(g.num_nodes()), false);  // (nodes) relus folded into their producer
  for (NodeId id = 0; id < g.num_nodes(); ++id) {
    if (fused[size_t(id)]) continue;
    const Node& n = g.node(id);
    const bool candidate = n.op == op;
    const std::vector<NodeId> readers = candidate ? g.consumers(n.outputs[0]) : std::vector<NodeId>{};
    if (!candidate || read_attrs<Attrs>(n).relu || readers.size() != 1 || g.node(readers[0]).op != ops::relu) {
      rw.copy(id);
      continue;
    }
    const Node& relu = g.node(readers[0]);
    std::vector<ValueId> inputs;
    for (ValueId v : n.inputs) inputs.push_back(rw.map(v));
    Attrs attrs = read_attrs<Attrs>(n);
    attrs.relu = true;
    const ValueId y = rw.add(op, n.name, inputs, write_attrs(attrs), n.outputs).front();
    rw.alias(relu.outputs[0], y);
    fused[size_t(readers[0])] = true;
    r.changes.push_back(n.name + " + " + relu.name + " -> " + n.name + " (" + how + ")");
  }
  r.graph = rw.finish();
  if (r.changes.empty()) r.changes.push_back("nothing to fuse");
  return r;
}

}  // namespace massmap
