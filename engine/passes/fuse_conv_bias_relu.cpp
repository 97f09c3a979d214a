// fuse_conv_bias_relu: a conv2d whose output only a relu reads becomes one conv2d with attribute relu=1, so bias
// and ReLU run in the convolution's epilogue (no separate pass over y). Readers of the relu's output read the
// fused conv's; on a training schedule ReLU's backward reads that output, as it read the relu's.
#include "engine/ops/conv.h"
#include "engine/passes/fuse_relu.h"

namespace massmap {

PassResult fuse_conv_bias_relu(const Graph& g) {
  return fuse_following_relu<ConvAttrs>(g, ops::conv2d, "bias and ReLU in the conv's epilogue");
}

}  // namespace massmap
