// AlexNet as BVLC's Caffe model (models/bvlc_alexnet/train_val.prototxt): the layer sequence, grouped convolutions,
// LRN before pooling, and the reference fillers (gaussian 0.01; fc6/fc7 0.005; biases 0.1 on conv2, conv4, conv5,
// fc6, fc7 and 0 elsewhere; lr_mult 1/2, decay_mult 1/0).
//
// Shapes at the nominal 227 input (N batch, C input channels, K classes):
//   data (N, C, 227, 227) -> conv1 (N, 96, 55, 55) -> pool1 (N, 96, 27, 27) -> conv2 (N, 256, 27, 27)
//   -> pool2 (N, 256, 13, 13) -> conv3/4 (N, 384, 13, 13) -> conv5 (N, 256, 13, 13) -> pool5 (N, 256, 6, 6)
//   -> fc6 (N, 4096) -> fc7 (N, 4096) -> fc8 (N, K)
#include "base/errors.h"
#include "nets/architectures.h"

namespace massmap::nets {

namespace {

Filler gaussian(float std, float bias) {
  Filler f;  // lr_mult 1/2, decay_mult 1/0
  f.weight.init.type = "gaussian";
  f.weight.init.std = std;
  f.bias.init.type = "constant";
  f.bias.init.value = bias;
  return f;
}

}  // namespace

Graph build_alexnet(const NetOptions& o) {
  detail::check_options("alexnet", o);
  const int height = o.input > 0 ? o.input : 227, width = o.input_width > 0 ? o.input_width : height;
  // Every conv output count is a multiple of 2: conv2, conv4 and conv5 split their inputs into 2 groups.
  auto ch = [&](int c) { return scaled_channels(c, o.width, 2); };
  auto fc = [&](int c) { return scaled_channels(c, o.width); };
  Graph g;
  LayerBuilder b(g);
  ValueId x = g.add_input("data", {o.batch, o.channels, height, width});
  x = b.conv("conv1", x, ch(96), 11, 4, 0, 1, gaussian(0.01f, 0.f));
  x = b.relu("relu1", x);
  x = b.lrn("norm1", x, 5, 1e-4, 0.75, 1.0);
  x = b.max_pool("pool1", x, 3, 2);
  x = b.conv("conv2", x, ch(256), 5, 1, 2, 2, gaussian(0.01f, 0.1f));
  x = b.relu("relu2", x);
  x = b.lrn("norm2", x, 5, 1e-4, 0.75, 1.0);
  x = b.max_pool("pool2", x, 3, 2);
  x = b.conv("conv3", x, ch(384), 3, 1, 1, 1, gaussian(0.01f, 0.f));
  x = b.relu("relu3", x);
  x = b.conv("conv4", x, ch(384), 3, 1, 1, 2, gaussian(0.01f, 0.1f));
  x = b.relu("relu4", x);
  x = b.conv("conv5", x, ch(256), 3, 1, 1, 2, gaussian(0.01f, 0.1f));
  x = b.relu("relu5", x);
  x = b.max_pool("pool5", x, 3, 2);
  x = b.flatten("flatten", x);  // Caffe's InnerProduct flattens implicitly
  x = b.linear("fc6", x, fc(4096), gaussian(0.005f, 0.1f));
  x = b.relu("relu6", x);
  x = b.dropout("drop6", x, 0.5, detail::dropout_seed(o, 6));
  x = b.linear("fc7", x, fc(4096), gaussian(0.005f, 0.1f));
  x = b.relu("relu7", x);
  x = b.dropout("drop7", x, 0.5, detail::dropout_seed(o, 7));
  x = b.linear("fc8", x, o.classes, gaussian(0.01f, 0.f));
  detail::classifier_end(b, x, o, "loss", "prob");
  g.metadata = net_metadata("alexnet", o);
  return g;
}

}  // namespace massmap::nets
