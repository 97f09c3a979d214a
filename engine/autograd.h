#pragma once
// Reverse-mode autograd on the graph: appends, for every forward node on a path to a loss, the backward nodes its
// op's backward rule emits. Gradients are ordinary values ("grad/<value>"); a value used by several nodes gets one
// gradient buffer, written by its first contributor and accumulated into by the others (the kernels'
// accumulate flag), so no extra buffers or sum nodes are needed.
#include <map>
#include <string>
#include <vector>

#include "engine/graph.h"

namespace massmap {

class GradBuilder {
 public:
  GradBuilder(Graph& graph, bool input_grads);

  // Whether backward nodes should produce dL/dv.
  bool needs_grad(ValueId v) const { return needs_grad_.at(size_t(v)); }
  // The gradient value of v, or -1 when nothing downstream contributed one.
  ValueId grad(ValueId v) const;
  // Emits `op` computing dL/d(target) from `inputs` (attributes copied from the forward node, plus `extra`), if
  // the target needs a gradient. Returns the node id or -1.
  NodeId emit(const Node& forward, const std::string& op, std::vector<ValueId> inputs, ValueId target,
              Attrs extra = {});
  // Emits one node computing the gradients of several targets at once (its outputs in the order of `targets`), for
  // kernels that share the work (batch norm's sums). A target that needs no gradient still gets a buffer of its
  // own, "grad/<forward>.unused<k>", so the kernel has somewhere to write. Returns -1 when no target needs one.
  NodeId emit_several(const Node& forward, const std::string& op, std::vector<ValueId> inputs,
                      const std::vector<ValueId>& targets);
  // Emits `op` into a new gradient value "grad/<forward>.<suffix>" shaped like `like`, for a gradient inside a
  // fused node (a fused conv's pre-ReLU gradient). Returns that value.
  ValueId emit_temporary(const Node& forward, const std::string& op, std::vector<ValueId> inputs, ValueId like,
                         const std::string& suffix);
  Graph& graph() { return graph_; }

 private:
  // The gradient value of target, made on first use; *existed: it was made before (so a writer accumulates).
  ValueId gradient_buffer(ValueId target, bool* existed);
  // A backward node of `forward` running `op` on `inputs`, outputs still to set; Error when an input is missing.
  Node backward_node(const Node& forward, const std::string& op, std::vector<ValueId> inputs) const;
  Graph& graph_;
  std::vector<bool> needs_grad_;
  std::map<ValueId, ValueId> grads_;
  NodeId current_forward_ = -1;
  friend void build_backward(Graph&, bool);
};

// Appends backward nodes to `graph` for all its loss nodes (ops with is_loss). With input_grads, graph inputs
// get gradients too (used by gradient checks of whole graphs). Returns nothing; gradients are found with
// gradient_of().
void build_backward(Graph& graph, bool input_grads = false);
// The gradient value of v after build_backward, or -1.
ValueId gradient_of(const Graph& graph, ValueId v);
std::string gradient_name(const std::string& value_name);  // "grad/<name>"

}  // namespace massmap
