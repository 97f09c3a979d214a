// dropout: inverted dropout while training (keep with probability 1 - ratio, scale by 1 / (1 - ratio)), identity
// at test time, with DropoutAttrs (engine/ops/dropout.h).
#include "engine/ops/dropout.h"

#include "engine/autograd.h"
#include "engine/ops/common.h"
#include "engine/ops/dispatch.h"
#include "kernels/dropout.h"

namespace massmap {
namespace {

kernels::DropoutShape dropout_of(const KernelCall& c, const TensorArg& x, const TensorArg& y) {
  const auto a = read_attrs<DropoutAttrs>(*c.node);
  kernels::DropoutShape s;
  s.N = x.n();
  s.C = x.c();
  s.H = x.h();
  s.W = x.w();
  s.p = float(a.ratio);
  s.seed = uint64_t(a.seed);
  s.step = uint64_t(c.run->iteration);
  s.x = x.place;
  s.y = y.place;
  return s;
}

std::vector<Shape> infer_dropout(const Node&, const std::vector<Shape>& in) {
  return {in[0]};
}

void dropout_backward(GradBuilder& b, const Node& n) {
  b.emit(n, ops::dropout_grad, {b.grad(n.outputs[0])}, n.inputs[0]);
}

template <Device D>
void dropout_k(const KernelCall& c) {
  if (!c.run->training) {
    MASSMAP_DISPATCH(D, ref, copy, c, ops::act(c.in[0], c.out[0]), c.in[0].data, c.out[0].data, false);
    return;
  }
  MASSMAP_DISPATCH(D, ref, dropout_forward, c, dropout_of(c, c.in[0], c.out[0]), c.in[0].data, c.out[0].data);
}

// inputs (dy) -> dx: the same mask, drawn again from (seed, iteration); at test time (a backward pass run with
// training off, e.g. the gradient of the deterministic net) the forward pass was the identity, and so is this.
template <Device D>
void dropout_grad_k(const KernelCall& c) {
  if (!c.run->training) {
    MASSMAP_DISPATCH(D, ref, copy, c, ops::act(c.in[0], c.out[0]), c.in[0].data, c.out[0].data, c.accumulate(0));
    return;
  }
  MASSMAP_DISPATCH(D, ref, dropout_backward, c, dropout_of(c, c.out[0], c.in[0]), c.in[0].data, c.out[0].data,
                   c.accumulate(0));
}

}  // namespace

void register_dropout_ops() {
  OpDef dropout;
  dropout.name = ops::dropout;
  dropout.check_attrs = check_attrs_as<DropoutAttrs>;
  dropout.infer = infer_dropout;
  dropout.cost = ops::elementwise_cost;
  dropout.backward = dropout_backward;
  register_op(dropout);
  OpDef grad;
  grad.name = ops::dropout_grad;
  register_op(grad);
  MASSMAP_REGISTER_ALL(ops::dropout, dropout_k);
  MASSMAP_REGISTER_ALL(ops::dropout_grad, dropout_grad_k);
}

}  // namespace massmap
