#pragma once
// A small CNN with every op family of the paper's nets, sized to train on one CPU core in seconds:
//   conv1 5x5 -> relu1 -> norm1 (LRN) -> pool1 3x3/2 -> conv2 3x3 -> relu2 -> pool2 3x3/2 -> flatten -> fc3
//   -> relu3 -> drop3 -> fc4 -> loss (softmax cross-entropy)
// It proves the engine learns, and it is the main job until the search pipeline exists.
#include <cstdint>

#include "engine/graph.h"

namespace massmap::nets {

struct SmallNetOptions {
  int channels = 1;  // input channels
  int classes = 2;
  int input = 24;       // input height (and width unless input_width is set)
  int input_width = 0;  // 0: the same as input
  int batch = 32;
  int width = 16;  // conv1 filters; conv2 has 2x, fc3 4x
  double dropout = 0.5;
  uint64_t seed = 1;      // dropout streams
  bool with_loss = true;  // false: ends in softmax "prob" for inference
};

// Inputs: "data" (batch, channels, input, input_width or input), "label" (batch,). Output: "loss" (and
// "loss.prob"), or "prob".
Graph build_smallnet(const SmallNetOptions& options);

}  // namespace massmap::nets
