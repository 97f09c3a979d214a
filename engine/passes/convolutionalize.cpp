// convolutionalize: the classifier as a fully convolutional net. A linear layer reading a flattened (C, H, W)
// tensor becomes a conv2d with an H x W kernel over that tensor; a linear layer reading the (F, h, w) output of a
// converted layer becomes a 1x1 conv2d; elementwise ops and softmax then run per location. A linear weight
// (out, C*H*W) holds the same elements in the same order as a conv weight (out, C, H, W), so the parameters keep
// their names and their checkpoint shapes (Value::saved_shape). At the input size it was built for, the result
// computes the classifier exactly; over a larger input each output cell is the classifier at one position.
#include <set>

#include "base/errors.h"
#include "engine/graph_rewriter.h"
#include "engine/op.h"
#include "engine/ops/concat.h"
#include "engine/ops/conv.h"
#include "engine/ops/linear.h"
#include "engine/passes.h"

namespace massmap {

namespace {

PassResult convolutionalize_graph(const Graph& g, bool keep_loss) {
  const ValueId image = image_input(g);
  GraphRewriter rw(g);
  PassResult r;
  std::set<ValueId> flattened;  // old flatten outputs, now read as their 4-D inputs
  int converted = 0;
  for (NodeId id = 0; id < g.num_nodes(); ++id) {
    const Node& n = g.node(id);
    if (op_def(n.op).is_loss && !keep_loss)
      throw BadConfig("convolutionalize: node '" + n.name + "' (" + n.op +
                      ") is a training loss; run for_inference first");
    if (n.op == ops::flatten) {
      const ValueId x = rw.map(n.inputs[0]);
      if (rw.target().value(x).shape.size() == 4) {
        rw.alias(n.outputs[0], x);
        flattened.insert(n.outputs[0]);
        r.changes.push_back("flatten '" + n.name + "' removed: its reader takes " + describe_value(rw.target(), x));
        continue;
      }
    }
    if (n.op != ops::linear) {
      for (ValueId v : n.inputs)
        if (flattened.count(v))
          throw BadConfig("convolutionalize: node '" + n.name + "' (" + n.op + ") reads flattened '" + g.value(v).name +
                          "'; only a linear layer may read a flattened feature map");
      rw.copy(id);
      continue;
    }
    const ValueId x = rw.map(n.inputs[0]);
    const Shape xs = rw.target().value(x).shape;  // (N, C, H, W) or (N, I)
    if (xs.size() != 4) {
      rw.copy(id);
      continue;
    }
    const Shape& ws = g.value(n.inputs[1]).shape;  // (out, C*H*W)
    if (ws.size() != 2 || ws[1] != xs[1] * xs[2] * xs[3])
      throw BadConfig("convolutionalize: linear '" + n.name + "' has weight " + shape_str(ws) + " but reads " +
                      shape_str(xs) + " (" + std::to_string(xs[1] * xs[2] * xs[3]) + " features)");
    const ValueId w = rw.reshaped_param(n.inputs[1], {ws[0], xs[1], xs[2], xs[3]});
    std::vector<ValueId> inputs = {x, w};
    if (n.inputs.size() > 2) inputs.push_back(rw.map(n.inputs[2]));
    ConvAttrs conv;
    conv.num_output = int(ws[0]);
    conv.kernel_h = int(xs[2]);
    conv.kernel_w = int(xs[3]);
    const ValueId y = rw.add(ops::conv2d, n.name, inputs, write_attrs(conv), n.outputs).front();
    r.changes.push_back("linear '" + n.name + "' " + shape_str(ws) + " -> conv2d " + std::to_string(xs[2]) + "x" +
                        std::to_string(xs[3]) + " over " + shape_str(xs) + ", weight " +
                        shape_str(rw.target().value(w).shape) + ", output " + shape_str(rw.target().value(y).shape));
    ++converted;
  }
  if (converted == 0) throw BadConfig("convolutionalize: no linear layer reads a feature map; nothing to convert");
  r.graph = rw.finish();
  const Shape& in = g.value(image).shape;  // (N, C, H, W): the crop every map cell stands for
  r.graph.crop = {in[2], in[3]};
  r.changes.push_back("crop " + std::to_string(in[2]) + "x" + std::to_string(in[3]) +
                      " (the classifier's input): the smallest input the result accepts");
  return r;
}

}  // namespace

PassResult convolutionalize(const Graph& g) {
  return convolutionalize_graph(g, false);
}

Graph convolutionalize_for_training(const Graph& classifier, int64_t height, int64_t width) {
  std::vector<NodeId> losses;
  for (NodeId id = 0; id < classifier.num_nodes(); ++id)
    if (op_def(classifier.node(id).op).is_loss) losses.push_back(id);
  if (losses.size() != 1)
    throw BadConfig("convolutionalize_for_training: the classifier must end in exactly one loss, it has " +
                    std::to_string(losses.size()));
  // The map's cells over the tile, from the inference form (its only output is the per-cell probabilities).
  const Graph inference = with_input_size(run_passes(classifier, {"for_inference", "convolutionalize"}), height, width);
  const Shape cells = inference.value(inference.at("prob")).shape;  // (N, classes, cells_y, cells_x)
  const Node& loss = classifier.node(losses[0]);
  const ValueId label = loss.inputs.at(1);
  if (classifier.value(label).kind != ValueKind::input)
    throw BadConfig("convolutionalize_for_training: the loss '" + loss.name + "' must read its labels from an input");
  const Graph fcn = convolutionalize_graph(classifier, true).graph;
  GraphRewriter rw(fcn);
  Shape image_shape = fcn.value(image_input(fcn)).shape;  // (N, C, H, W)
  image_shape[2] = height;
  image_shape[3] = width;
  rw.set_input_shape(image_input(fcn), image_shape);
  rw.set_input_shape(fcn.at(classifier.value(label).name), {cells[0], cells[2], cells[3]});
  for (NodeId n = 0; n < fcn.num_nodes(); ++n) rw.copy(n);
  return rw.finish();
}

}  // namespace massmap
