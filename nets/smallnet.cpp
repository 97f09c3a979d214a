#include "nets/smallnet.h"

#include "nets/layers.h"

namespace massmap::nets {

Graph build_smallnet(const SmallNetOptions& o) {
  Graph g;
  LayerBuilder b(g);
  Filler conv_filler;  // msra keeps activations at a healthy scale for a net this small
  conv_filler.weight.init.type = "msra";
  Filler fc_filler = conv_filler;
  const int width = o.input_width > 0 ? o.input_width : o.input;
  ValueId x = g.add_input("data", {o.batch, o.channels, o.input, width});
  x = b.conv("conv1", x, o.width, 5, 1, 2, 1, conv_filler);
  x = b.relu("relu1", x);
  x = b.lrn("norm1", x, 5, 1e-4, 0.75, 1.0);
  x = b.max_pool("pool1", x, 3, 2);
  x = b.conv("conv2", x, 2 * o.width, 3, 1, 1, 1, conv_filler);
  x = b.relu("relu2", x);
  x = b.max_pool("pool2", x, 3, 2);
  x = b.flatten("flatten", x);
  x = b.linear("fc3", x, 4 * o.width, fc_filler);
  x = b.relu("relu3", x);
  x = b.dropout("drop3", x, o.dropout, int64_t(o.seed));
  x = b.linear("fc4", x, o.classes, fc_filler);
  if (o.with_loss) {
    ValueId label = g.add_input("label", {o.batch});
    b.softmax_loss("loss", x, label);
  } else {
    b.softmax("prob", x);
  }
  g.metadata["builder"] = "smallnet";
  g.metadata["channels"] = std::to_string(o.channels);
  g.metadata["classes"] = std::to_string(o.classes);
  g.metadata["input"] = std::to_string(o.input);
  if (width != o.input) g.metadata["input_width"] = std::to_string(width);
  g.metadata["conv1_filters"] = std::to_string(o.width);  // not "width": the catalogue uses that for a multiplier
  return g;
}

}  // namespace massmap::nets
