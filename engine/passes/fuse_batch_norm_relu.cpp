// fuse_batch_norm_relu: a batch_norm whose output only a relu reads becomes one batch_norm with attribute relu=1, so
// the ReLU runs in the normalising pass and its backward inside batch_norm_grad (which then reads the fused output):
// two passes over the activations fewer forward, one backward. Readers of the relu's output read the fused
// batch_norm's; the parameters and the running statistics keep their names, so checkpoints load either way.
#include "engine/ops/batch_norm.h"
#include "engine/passes/fuse_relu.h"

namespace massmap {

PassResult fuse_batch_norm_relu(const Graph& g) {
  return fuse_following_relu<BatchNormAttrs>(g, ops::batch_norm, "ReLU in the normalising pass");
}

}  // namespace massmap
