// with_input_size / with_batch: the same nodes on another input shape, every shape inferred again.
#include "base/errors.h"
#include "engine/graph_rewriter.h"
#include "engine/passes.h"

namespace massmap {

namespace {

Graph reshaped(const Graph& g, ValueId input, Shape shape) {
  GraphRewriter rw(g);
  rw.set_input_shape(input, std::move(shape));
  for (NodeId n = 0; n < g.num_nodes(); ++n) rw.copy(n);
  return rw.finish();
}

}  // namespace

ValueId image_input(const Graph& g) {
  ValueId found = -1;
  for (ValueId v : g.inputs()) {
    if (g.value(v).shape.size() != 4) continue;
    if (found >= 0)
      throw BadConfig("the graph has two image inputs, '" + g.value(found).name + "' and '" + g.value(v).name + "'");
    found = v;
  }
  if (found < 0) throw BadConfig("the graph has no image input (a 4-D input)");
  return found;
}

Graph with_input_size(const Graph& g, int64_t height, int64_t width) {
  const ValueId x = image_input(g);
  Shape shape = g.value(x).shape;  // (N, C, H, W)
  if (height < 1 || width < 1)
    throw BadConfig("input size " + std::to_string(height) + "x" + std::to_string(width) + " must be positive");
  if (g.crop.size() == 2 && (height < g.crop[0] || width < g.crop[1])) {
    auto it = g.metadata.find("builder");
    const std::string net = it == g.metadata.end() ? "the net" : it->second;
    throw BadConfig(net + " (fully convolutional): input " + std::to_string(height) + "x" + std::to_string(width) +
                    " is smaller than its crop; the smallest input it accepts is " + std::to_string(g.crop[0]) + "x" +
                    std::to_string(g.crop[1]));
  }
  shape[2] = height;
  shape[3] = width;
  return reshaped(g, x, shape);
}

Graph with_batch(const Graph& g, int64_t batch) {
  if (batch < 1) throw BadConfig("batch " + std::to_string(batch) + " must be at least 1");
  Graph out = g;
  for (ValueId v : g.inputs()) {
    Shape s = g.value(v).shape;
    if (s.empty()) continue;
    s[0] = batch;
    GraphRewriter rw(out);
    rw.set_input_shape(v, s);
    for (NodeId n = 0; n < out.num_nodes(); ++n) rw.copy(n);
    out = rw.finish();
  }
  return out;
}

}  // namespace massmap
