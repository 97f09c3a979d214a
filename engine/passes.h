#pragma once
// Graph passes: named graph -> graph functions, each returning the rewritten graph and a line per change it made.
// run_passes() checks the graph with the validator (engine/validate.h) after each one.
//
//   for_inference        drops the loss and auxiliary heads (what the main classifier does not read), removes
//                        dropout (its consumers read its input: no copy), ends in softmax "prob"
//   convolutionalize     flatten + linear after a (C, H, W) tensor becomes a conv2d with an H x W kernel, each later
//                        linear a 1x1 conv2d, so softmax runs per location; the parameters keep their names and
//                        elements, so a classifier checkpoint loads into the result; records the crop (the input
//                        size the classifier was built for)
//   fuse_conv_bias_relu  conv2d whose only reader is a relu becomes one conv2d with attribute relu=1 (the kernel's
//                        fused epilogue); the relu's output reads as the conv's
//   fuse_batch_norm_relu batch_norm whose only reader is a relu becomes one batch_norm with relu=1: the ReLU in the
//                        normalising pass, its backward folded into batch_norm_grad; for training graphs too
#include <functional>
#include <string>
#include <vector>

#include "engine/graph.h"

namespace massmap {

struct PassResult {
  Graph graph;
  std::vector<std::string> changes;  // one line per change, for `nets show --passes`
};

struct PassInfo {
  std::string name, summary;
  PassResult (*run)(const Graph&);
};

PassResult for_inference(const Graph& g);
PassResult convolutionalize(const Graph& g);
PassResult fuse_conv_bias_relu(const Graph& g);
PassResult fuse_batch_norm_relu(const Graph& g);
// A classifier with its loss as a fully convolutional training graph over (height, width) tiles: convolutionalize
// as above, the loss kept and its labels input reshaped to (N, cells_y, cells_x), one class id per map cell (the
// loss's ignore_label leaves a cell out). One step on a tile is one step on every cell's crop at once, the loss
// their mean; the parameters keep the classifier's names and checkpoint shapes. BadConfig unless the classifier
// has exactly one loss reading its labels from an input.
Graph convolutionalize_for_training(const Graph& classifier, int64_t height, int64_t width);

const std::vector<PassInfo>& pass_catalogue();
const PassInfo& find_pass(const std::string& name);  // BadConfig listing the known passes

struct PassLog {
  std::string pass;
  std::vector<std::string> changes;
};
// Runs the named passes in order, validating after each (a broken graph names the pass and the node).
Graph run_passes(const Graph& g, const std::vector<std::string>& names, std::vector<PassLog>* log = nullptr);

// The graph with its (single 4-D) image input given height and width, every shape inferred again. For a fully
// convolutional graph an input smaller than its crop is a BadConfig naming the net and the minimum.
Graph with_input_size(const Graph& g, int64_t height, int64_t width);
// The same with another batch size.
Graph with_batch(const Graph& g, int64_t batch);

// The graph's image input: its only 4-D input (BadConfig otherwise).
ValueId image_input(const Graph& g);

}  // namespace massmap
