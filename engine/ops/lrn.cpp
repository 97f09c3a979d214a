// lrn: local response normalisation across channels (Caffe). Attributes: size, alpha, beta, k.
// Input x (N, C, H, W); output y, same shape.
#include "kernels/lrn.h"

#include "engine/autograd.h"
#include "engine/ops/common.h"
#include "engine/ops/dispatch.h"

namespace massmap {
namespace {

kernels::LrnShape lrn_of(const Node& n, const TensorArg& x, const TensorArg& y) {
  kernels::LrnShape s;
  s.N = x.n();
  s.C = x.c();
  s.H = x.h();
  s.W = x.w();
  s.size = int(n.attrs.get_int("size", 5));
  s.alpha = float(n.attrs.get_float("alpha", 1e-4));
  s.beta = float(n.attrs.get_float("beta", 0.75));
  s.k = float(n.attrs.get_float("k", 1.0));
  s.x = x.place;
  s.y = y.place;
  return s;
}

std::vector<Shape> infer_lrn(const Node& n, const std::vector<Shape>& in) {
  ops::require_rank(n, in, 0, 4, "x");
  if (n.attrs.get_int("size", 5) < 1 || n.attrs.get_int("size", 5) % 2 == 0)
    shape_error(n, in, "size must be odd and positive");
  return {in[0]};
}

Cost lrn_cost(const Node& n, const std::vector<Shape>& in, const std::vector<Shape>& out) {
  return {shape_numel(in[0]) * (n.attrs.get_int("size", 5) + 2), ops::bytes_of(in, out)};
}

void lrn_backward(GradBuilder& b, const Node& n) {
  b.emit(n, "lrn_grad", {n.inputs[0], n.outputs[0], b.grad(n.outputs[0])}, n.inputs[0]);
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
  lrn.name = "lrn";
  lrn.infer = infer_lrn;
  lrn.cost = lrn_cost;
  lrn.backward = lrn_backward;
  lrn.backward_reads_outputs = true;
  register_op(lrn);
  OpDef grad;
  grad.name = "lrn_grad";
  grad.min_inputs = grad.max_inputs = 3;
  register_op(grad);
  MASSMAP_REGISTER_ALL("lrn", lrn_k);
  MASSMAP_REGISTER_ALL("lrn_grad", lrn_grad_k);
}

}  // namespace massmap
