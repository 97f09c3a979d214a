#pragma once
// Moving pretrained weights into a net that differs from the one they were trained for, as CAD fine-tuning
// usually does: photographs have 3 colour channels and 1000 classes, mammogram patches 1 channel and 2 classes.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/graph.h"
#include "engine/safetensors.h"

namespace massmap::nets {

struct ImportReport {
  std::vector<std::string> copied;    // same name and shape
  std::vector<std::string> summed;    // first-layer weights summed over the input channels
  std::vector<std::string> replaced;  // classifier weights and biases freshly initialised for the new class count
  std::vector<std::string> dropped;   // in the file, not in the target graph (e.g. auxiliary heads)
};

// Adapts `weights` (tensors named as the graph's parameters) to the parameters of `target`:
//  - a parameter of the same shape is copied;
//  - the weight of a convolution reading a graph input (conv1, conv1/7x7_s2, conv1_1), (K, C, R, S) in the file and
//    (K, 1, R, S) in the target, becomes the sum over the C channels: a grey image g fed to the 1-channel net
//    gives the same response as the colour image (g, g, g) gave the 3-channel one;
//  - a classifier (a linear or convolution node feeding a softmax or softmax_loss) whose output count differs is
//    initialised afresh from the target's ParamSpec with `seed` (its input count must match);
//  - tensors the target has no parameter for are dropped (listed in the report).
// Any other difference is a BadInput naming `file`, the tensor and both shapes; a parameter missing from the file
// is a BadInput naming it. The result's metadata is the file's, overwritten by the target graph's metadata, with
// "imported_from" set to `file`.
TensorFile import_weights(const TensorFile& weights, const Graph& target, uint64_t seed = 1,
                          const std::string& file = "weights", ImportReport* report = nullptr);

}  // namespace massmap::nets
