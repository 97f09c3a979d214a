#include "engine/validate.h"

#include "base/errors.h"
#include "engine/op.h"

namespace massmap {

namespace {

[[noreturn]] void broken(const Node& n, const std::string& why) {
  throw BadConfig("invalid graph: node '" + n.name + "' (" + n.op + ") " + why);
}

}  // namespace

void validate_graph(const Graph& g) {
  const int nv = g.num_values();
  std::vector<int> writers(size_t(nv), 0);    // (values) plain (non-accumulating) writes seen so far
  std::vector<bool> read(size_t(nv), false);  // (values) read by some node
  for (NodeId id = 0; id < g.num_nodes(); ++id) {
    const Node& n = g.node(id);
    if (!op_exists(n.op)) broken(n, "has an unknown op");
    for (ValueId v : n.inputs) {
      if (v < 0 || v >= nv) broken(n, "reads value id " + std::to_string(v) + ", which does not exist");
      const Value& val = g.value(v);
      read[size_t(v)] = true;
      const bool needs_producer = val.kind == ValueKind::activation || val.kind == ValueKind::gradient;
      if (needs_producer && writers[size_t(v)] == 0) broken(n, "reads '" + val.name + "' before any node produces it");
    }
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      const ValueId v = n.outputs[k];
      if (v < 0 || v >= nv) broken(n, "writes value id " + std::to_string(v) + ", which does not exist");
      const Value& val = g.value(v);
      if (val.kind == ValueKind::input || val.kind == ValueKind::parameter)
        broken(n, "writes '" + val.name + "', which is a graph input or parameter");
      const bool accumulates = k < n.accumulate.size() && n.accumulate[k];
      if (accumulates) {
        if (writers[size_t(v)] == 0) broken(n, "adds into '" + val.name + "' before any node wrote it");
        continue;
      }
      if (++writers[size_t(v)] > 1) broken(n, "writes '" + val.name + "', which another node already produced");
      if (val.producer != id)
        broken(n, "produces '" + val.name + "' but the value names node " + std::to_string(val.producer));
    }
    const OpDef& def = op_def(n.op);
    if (n.forward_of >= 0 || !def.infer) continue;
    check_node_attrs(n);
    std::vector<Shape> in, out;
    for (ValueId v : n.inputs) in.push_back(g.value(v).shape);
    for (ValueId v : n.outputs) out.push_back(g.value(v).shape);
    std::vector<Shape> want = def.infer(n, in);  // throws naming the node when its inputs no longer fit
    if (want != out) {
      std::string got, expected;
      for (const Shape& s : out) got += (got.empty() ? "" : ", ") + shape_str(s);
      for (const Shape& s : want) expected += (expected.empty() ? "" : ", ") + shape_str(s);
      broken(n, "has outputs [" + got + "] but its shape rule gives [" + expected + "]");
    }
  }
  for (ValueId v = 0; v < nv; ++v) {
    const Value& val = g.value(v);
    if (val.kind == ValueKind::parameter && !read[size_t(v)])
      throw BadConfig("invalid graph: parameter '" + val.name + "' is read by no node (unbound)");
    if (val.kind == ValueKind::activation && writers[size_t(v)] == 0)
      throw BadConfig("invalid graph: value '" + val.name + "' is produced by no node");
  }
}

}  // namespace massmap
