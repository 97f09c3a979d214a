// lrn: local response normalisation across channels (Caffe), with LrnAttrs (engine/ops/lrn.h).
// Input x (N, C, H, W); output y, same shape.
#include "engine/ops/lrn.h"

#include "engine/autograd.h"
#include "engine/ops/common.h"
#include "engine/ops/dispatch.h"
#include "kernels/lrn.h"

namespace massmap {
namespace {

kernels::LrnShape lrn_of(const Node& n, const TensorArg& x, const TensorArg& y) {
  const auto a = read_attrs<LrnAttrs>(n);
  kernels::LrnShape s;
  s.N = x.n();
  s.C = x.c();
  s.H = x.h();
  s.W = x.w();
  s.size = a.size;
  s.alpha = float(a.alpha);
  s.beta = float(a.beta);
  s.k = float(a.k);
  s.x = x.place;
  s.y = y.place;
  return s;
}

std::vector<Shape> infer_lrn(const Node& n, const std::vector<Shape>& in) {
  ops::require_rank(n, in, 0, 4, "x");
  return {in[0]};
}

Cost lrn_cost(const Node& n, const std::vector<Shape>& in, const std::vector<Shape>& out) {
  return {shape_numel(in[0]) * (read_attrs<LrnAttrs>(n).size + 2), ops::bytes_of(in, out)};
}

void lrn_backward(GradBuilder& b, const Node& n) {
  b.emit(n, ops::lrn_grad, {n.inputs[0], n.outputs[0], b.grad(n.outputs[0])}, n.inputs[0]);
}

template <Device D>
void lrn_k(const KernelCall& c) {
  MASSMAP_DISPATCH(D, cpu, lrn_forward, c, lrn_of(*c.node, c.in[0], c.out[0]), c.in[0].data, c.out[0].data);
}

// inputs (x, y, dy) -> dx; dx is placed like x, dy like y
template <Device D>
void lrn_grad_k(const KernelCall& c) {
  MASSMAP_DISPATCH(D, cpu, lrn_backward, c, lrn_of(*c.node, c.in[0], c.in[1]), c.in[0].data, c.in[1].data, c.in[2].data,
                   c.out[0].data, c.accumulate(0));
}

}  // namespace

void register_lrn_ops() {
  OpDef lrn;
  lrn.name = ops::lrn;
  lrn.check_attrs = check_attrs_as<LrnAttrs>;
  lrn.infer = infer_lrn;
  lrn.cost = lrn_cost;
  lrn.backward = lrn_backward;
  lrn.backward_reads_outputs = true;
  register_op(lrn);
  OpDef grad;
  grad.name = ops::lrn_grad;
  grad.min_inputs = grad.max_inputs = 3;
  register_op(grad);
  MASSMAP_REGISTER_ALL(ops::lrn, lrn_k);
  MASSMAP_REGISTER_ALL(ops::lrn_grad, lrn_grad_k);
}

}  // namespace massmap
