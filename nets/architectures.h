#pragma once
// The builders of the paper's three nets, each exact to its published Caffe definition at width 1 (layer names,
// parameter names and shapes, fillers with lr_mult / decay_mult). Options (see registry.h): input channels,
// classes, input size, batch, width multiplier (every layer's channel count except the classifier's), with_loss,
// aux (GoogLeNet only), seed (dropout streams). Usually reached through build_net() in registry.h.
#include <cstdint>

#include "engine/graph.h"
#include "nets/layers.h"
#include "nets/registry.h"

namespace massmap::nets {

// BVLC's bvlc_alexnet: 227 input; conv1 96 11x11/4, relu1, norm1, pool1 3x3/2, conv2 256 5x5 pad 2 groups 2,
// relu2, norm2, pool2, conv3 384, conv4 384 groups 2, conv5 256 groups 2 (3x3 pad 1, each with relu), pool5,
// fc6 4096, relu6, drop6, fc7 4096, relu7, drop7, fc8.
Graph build_alexnet(const NetOptions& options);

// VGG-16, configuration D: 224 input; conv1_1 ... conv5_3 (3x3 pad 1, each followed by relu1_1 ...), pool1 ... pool5
// 2x2/2, fc6 4096, relu6, drop6, fc7 4096, relu7, drop7, fc8.
Graph build_vgg16(const NetOptions& options);

// BVLC's bvlc_googlenet (Inception v1): 224 input; stem, nine inception modules, pool5/7x7_s1, dropout 0.4,
// loss3/classifier; with options.aux the two auxiliary heads loss1 (after inception_4a) and loss2 (after
// inception_4d), loss weight 0.3.
Graph build_googlenet(const NetOptions& options);

namespace detail {
// The end every builder shares: with options.with_loss an input "label" (batch) and softmax_loss "loss" (with
// loss_weight), else softmax "<prob_name>". Returns the loss or the probabilities.
ValueId classifier_end(LayerBuilder& b, ValueId logits, const NetOptions& options, const std::string& loss_name,
                       const std::string& prob_name, double loss_weight = 1.0);
// A dropout layer's seed: distinct per layer (index k) so two layers never draw the same mask.
int64_t dropout_seed(const NetOptions& options, int k);
// Rejects options a builder cannot honour (non-positive sizes, width <= 0) with a BadConfig naming the net.
void check_options(const std::string& net, const NetOptions& options);
}  // namespace detail

}  // namespace massmap::nets
