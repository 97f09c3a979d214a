// VGG-16, configuration D of Simonyan & Zisserman (2015), with the layer names of the authors' Caffe model.
// Initialisation: msra (He et al.) for every convolution and the hidden fully connected layers, since a plain
// gaussian 0.01 stalls a 16-layer net trained from scratch; the classifier gets gaussian 0.01; biases 0
// (lr_mult 1/2, decay_mult 1/0).
//
// Shapes at the nominal 224 input: block b (1..5) keeps the size of its input and pool<b> halves it:
//   224 -> 112 -> 56 -> 28 -> 14 -> 7, channels 64, 128, 256, 512, 512; pool5 (N, 512, 7, 7) -> fc6 (N, 4096)
//   -> fc7 (N, 4096) -> fc8 (N, K)
#include <string>

#include "nets/architectures.h"

namespace massmap::nets {

Graph build_vgg16(const NetOptions& o) {
  detail::check_options("vgg16", o);
  const int height = o.input > 0 ? o.input : 224, width = o.input_width > 0 ? o.input_width : height;
  Filler msra;
  msra.weight.init.type = "msra";
  Filler classifier;  // gaussian 0.01
  Graph g;
  LayerBuilder b(g);
  ValueId x = g.add_input("data", {o.batch, o.channels, height, width});
  struct Block {
    int convs, channels;
  };
  const Block blocks[] = {{2, 64}, {2, 128}, {3, 256}, {3, 512}, {3, 512}};
  for (int i = 0; i < 5; ++i) {
    const std::string block = std::to_string(i + 1);
    for (int j = 1; j <= blocks[i].convs; ++j) {
      const std::string suffix = block + "_" + std::to_string(j);
      x = b.conv("conv" + suffix, x, scaled_channels(blocks[i].channels, o.width), 3, 1, 1, 1, msra);
      x = b.relu("relu" + suffix, x);
    }
    x = b.max_pool("pool" + block, x, 2, 2);
  }
  x = b.flatten("flatten", x);
  x = b.linear("fc6", x, scaled_channels(4096, o.width), msra);
  x = b.relu("relu6", x);
  x = b.dropout("drop6", x, 0.5, detail::dropout_seed(o, 6));
  x = b.linear("fc7", x, scaled_channels(4096, o.width), msra);
  x = b.relu("relu7", x);
  x = b.dropout("drop7", x, 0.5, detail::dropout_seed(o, 7));
  x = b.linear("fc8", x, o.classes, classifier);
  detail::classifier_end(b, x, o, "loss", "prob");
  g.metadata = net_metadata("vgg16", o);
  return g;
}

}  // namespace massmap::nets
