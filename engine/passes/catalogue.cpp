// The pass catalogue and the driver that validates after every pass.
#include "base/errors.h"
#include "engine/passes.h"
#include "engine/validate.h"

namespace massmap {

const std::vector<PassInfo>& pass_catalogue() {
  static const std::vector<PassInfo> passes = {
      {"for_inference", "drop the loss, auxiliary heads and dropout; end in softmax 'prob'", for_inference},
      {"convolutionalize", "flatten + linear -> conv2d over the feature map, later linears -> 1x1 conv2d",
       convolutionalize},
      {"fuse_conv_bias_relu", "conv2d + bias + relu as one kernel call (fused epilogue)", fuse_conv_bias_relu},
      {"fuse_batch_norm_relu", "batch_norm + relu as one kernel call, forward and backward", fuse_batch_norm_relu},
  };
  return passes;
}

const PassInfo& find_pass(const std::string& name) {
  std::string known;
  for (const PassInfo& p : pass_catalogue()) {
    if (p.name == name) return p;
    known += (known.empty() ? "" : ", ") + p.name;
  }
  throw BadConfig("unknown graph pass '" + name + "' (known: " + known + ")");
}

Graph run_passes(const Graph& g, const std::vector<std::string>& names, std::vector<PassLog>* log) {
  Graph current = g;
  for (const std::string& name : names) {
    const PassInfo& pass = find_pass(name);
    PassResult r = pass.run(current);
    try {
      validate_graph(r.graph);
    } catch (const BadConfig& e) {
      throw BadConfig("after pass '" + name + "': " + e.what());
    }
    if (log) log->push_back({name, r.changes});
    current = std::move(r.graph);
  }
  return current;
}

}  // namespace massmap
