// fuse_batch_norm_relu: a batch_norm whose output only a relu reads becomes one batch_norm with attribute relu=1, so
// the ReLU runs in the normalising pass and its backward inside batch_norm_grad (which then reads the fused output):
// two passes over the activations fewer forward, one backward. Readers of the relu's output read the fused
// batch_norm's; the parameters and the running statistics keep their names, so checkpoints load either way.
#include "engine/graph_rewriter.h"
#include "engine/ops/batch_norm.h"
#include "engine/ops/elementwise.h"
#include "engine/passes.h"

namespace massmap {

PassResult fuse_batch_norm_relu(const Graph& g) {
  GraphRewriter rw(g);
  PassResult r;
  std::vector<bool> fused(size_t(g.num_nodes()), false);  // (nodes) relus folded into their batch_norm
  for (NodeId id = 0; id < g.num_nodes(); ++id) {
    if (fused[size_t(id)]) continue;
    const Node& n = g.node(id);
    const bool bn = n.op == ops::batch_norm;
    const std::vector<NodeId> readers = bn ? g.consumers(n.outputs[0]) : std::vector<NodeId>{};
    if (!bn || read_attrs<BatchNormAttrs>(n).relu || readers.size() != 1 || g.node(readers[0]).op != ops::relu) {
      rw.copy(id);
      continue;
    }
    const Node& relu = g.node(readers[0]);
    std::vector<ValueId> inputs;
    for (ValueId v : n.inputs) inputs.push_back(rw.map(v));
    BatchNormAttrs attrs = read_attrs<BatchNormAttrs>(n);
    attrs.relu = true;
    const ValueId y = rw.add(ops::batch_norm, n.name, inputs, write_attrs(attrs), n.outputs).front();
    rw.alias(relu.outputs[0], y);
    fused[size_t(readers[0])] = true;
    r.changes.push_back(n.name + " + " + relu.name + " -> " + n.name + " (ReLU in the normalising pass)");
  }
  r.graph = rw.finish();
  if (r.changes.empty()) r.changes.push_back("nothing to fuse");
  return r;
}

}  // namespace massmap
