// sgd_update: one solver step on a parameter, appended by the executor after the backward pass.
// Inputs: w, dw, history (all the parameter's shape); it updates w and history in place.
// Attributes: lr_mult, decay_mult; the rates come from the RunContext.
#include "kernels/sgd.h"

#include "engine/ops/common.h"
#include "engine/ops/dispatch.h"

namespace massmap {
namespace {

template <Device D>
void sgd_k(const KernelCall& c) {
  kernels::SgdStep s;
  s.count = shape_numel(c.in[0].shape);
  s.lr = c.run->lr * float(c.node->attrs.get_float("lr_mult", 1.0));
  s.momentum = c.run->momentum;
  s.decay = c.run->weight_decay * float(c.node->attrs.get_float("decay_mult", 1.0));
  MASSMAP_DISPATCH(D, ref, sgd_update, c, s, c.in[0].data, c.in[1].data, c.in[2].data);
}

}  // namespace

void register_sgd_ops() {
  OpDef sgd;
  sgd.name = "sgd_update";
  sgd.min_inputs = sgd.max_inputs = 3;
  sgd.cost = ops::elementwise_cost;
  register_op(sgd);
  MASSMAP_REGISTER_ALL("sgd_update", sgd_k);
}

}  // namespace massmap
