#pragma once
// A small CNN without any zero padding, built so its whole-image map is exactly the classifier slid over the
// image: every convolution is unpadded and every pooling window tiles its input in the crop the net is trained on,
// so a map cell and the lone crop see the same pixels through the same arithmetic (README, "The gap between map
// cells and true crops"). Padded nets (AlexNet, smallnet) see zeros at a training crop's borders and image content
// there in a map, which moves their logits by about their own size.
//   conv1 5x5 -> relu1 -> pool1 3x3/2 -> conv2 3x3 -> relu2 -> pool2 3x3/2 -> conv3 3x3 -> relu3 -> flatten
//   -> fc4 -> relu4 -> drop4 -> fc5 -> loss (softmax cross-entropy)
// Map stride 4 pixels. An input of 4k + 3 pixels (k >= 5) tiles every pooling window; 47 is the nominal one.
#include "engine/graph.h"
#include "nets/registry.h"

namespace massmap::nets {

// Options as for every net (registry.h): width multiplies conv1's 16 filters (conv2 2x, conv3 4x, fc4 8x).
// BadConfig for an input that leaves a partial pooling window, naming the nearest that tile.
Graph build_mapnet(const NetOptions& options);
// The same with a fourth stage (pool3 3x3/2 -> conv4 3x3, 64 filters at width 1) for finer pixel spacings: map
// stride 8 pixels; inputs of 8k + 7 (k >= 5) tile every window; 95 is the nominal one.
Graph build_mapnet4(const NetOptions& options);
// mapnet_bn: per stage two unpadded 3x3 convolutions without bias, each followed by batch normalisation (whose beta
// is the bias) and ReLU (32, 64 and 128 filters at width 1), then fc 256 -> fc 256 -> fc 2 with dropout; batch
// statistics while training, the running ones in maps, so the map is still exactly the classifier on every crop. Map
// stride 4 pixels; inputs of 4k + 3 (k >= 8) tile every window; 47 is the nominal one.
Graph build_mapnet_bn(const NetOptions& options);
// mapnet_bn_fine: mapnet_bn for half the spacing (0.2 mm where mapnet_bn reads 0.4): a stem of a 3x3 convolution (16
// filters) and a 3x3 stride-2 convolution (32) replaces conv1, so the first layers see the finer pixels and the rest
// costs what mapnet_bn costs (1.25x mapnet_bn's multiply-adds in all). Map stride 8 pixels; inputs of 8k + 5
// (k >= 8) tile every window; 93 is the nominal one (the 47 of mapnet_bn's field).
Graph build_mapnet_bn_fine(const NetOptions& options);

}  // namespace massmap::nets
