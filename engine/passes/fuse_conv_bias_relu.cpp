// fuse_conv_bias_relu: a conv2d whose output only a relu reads becomes one conv2d with attribute relu=1, so bias
// and ReLU run in the convolution's epilogue (no separate pass over y). Readers of the relu's output read the
// fused conv's; on a training schedule ReLU's backward reads that output, as it read the relu's.
#include "engine/graph_rewriter.h"
#include "engine/ops/conv.h"
#include "engine/ops/elementwise.h"
#include "engine/passes.h"

namespace massmap {

PassResult fuse_conv_bias_relu(const Graph& g) {
  GraphRewriter rw(g);
  PassResult r;
  std::vector<bool> fused(size_t(g.num_nodes()), false);  // (nodes) relus folded into their conv
  for (NodeId id = 0; id < g.num_nodes(); ++id) {
    if (fused[size_t(id)]) continue;
    const Node& n = g.node(id);
    const bool conv = n.op == ops::conv2d;
    const std::vector<NodeId> readers = conv ? g.consumers(n.outputs[0]) : std::vector<NodeId>{};
    if (!conv || read_attrs<ConvAttrs>(n).relu || readers.size() != 1 || g.node(readers[0]).op != ops::relu) {
      rw.copy(id);
      continue;
    }
    const Node& relu = g.node(readers[0]);
    std::vector<ValueId> inputs;
    for (ValueId v : n.inputs) inputs.push_back(rw.map(v));
    ConvAttrs fused_conv = read_attrs<ConvAttrs>(n);
    fused_conv.relu = true;
    const ValueId y = rw.add(ops::conv2d, n.name, inputs, write_attrs(fused_conv), n.outputs).front();
    rw.alias(relu.outputs[0], y);
    fused[size_t(readers[0])] = true;
    r.changes.push_back(n.name + " + " + relu.name + " -> " + n.name + " (bias and ReLU in the conv's epilogue)");
  }
  r.graph = rw.finish();
  if (r.changes.empty()) r.changes.push_back("nothing to fuse");
  return r;
}

}  // namespace massmap
