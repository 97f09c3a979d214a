// sgd_update: one solver step on a parameter, appended by the executor after the backward pass.
// Inputs: w, dw, history (all the parameter's shape); it updates w and history in place.
// Attributes: SgdAttrs (engine/ops/sgd.h); the rates come from the RunContext.
#include "engine/ops/sgd.h"

#include "engine/ops/common.h"
#include "engine/ops/dispatch.h"
#include "kernels/sgd.h"

namespace massmap {
namespace {

template <Device D>
void sgd_k(const KernelCall& c) {
  const auto a = read_attrs<SgdAttrs>(*c.node);
  kernels::SgdStep s;
  s.count = shape_numel(c.in[0].shape);
  s.lr = c.run->lr * float(a.lr_mult);
  s.momentum = c.run->momentum;
  s.decay = c.run->weight_decay * float(a.decay_mult);
  MASSMAP_DISPATCH(D, ref, sgd_update, c, s, c.in[0].data, c.in[1].data, c.in[2].data);
}

}  // namespace

void register_sgd_ops() {
  OpDef sgd;
  sgd.name = ops::sgd_update;
  sgd.check_attrs = check_attrs_as<SgdAttrs>;
  sgd.min_inputs = sgd.max_inputs = 3;
  sgd.cost = ops::elementwise_cost;
  register_op(sgd);
  MASSMAP_REGISTER_ALL(ops::sgd_update, sgd_k);
}

}  // namespace massmap
