// linear: y = x w^T + b, with LinearAttrs (engine/ops/linear.h). Inputs: x (N, I), w (O, I), optional b (O).
// Output: y (N, O).
#include "engine/ops/linear.h"

#include "engine/autograd.h"
#include "engine/ops/common.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/elementwise.h"
#include "kernels/linear.h"

namespace massmap {
namespace {

kernels::LinearShape linear_of(const TensorArg& x, const TensorArg& y) {
  kernels::LinearShape s =
      kernels::linear_shape(x.n(), int(shape_numel(x.shape) / x.n()), int(shape_numel(y.shape) / y.n()));
  s.x_row_stride = x.place.batch_stride;
  s.y_row_stride = y.place.batch_stride;
  return s;
}

std::vector<Shape> infer_linear(const Node& n, const std::vector<Shape>& in) {
  ops::require_rank(n, in, 0, 2, "x (flatten it first)");
  ops::require_rank(n, in, 1, 2, "weight");
  if (in[1][1] != in[0][1])
    shape_error(n, in, "weight expects " + std::to_string(in[1][1]) + " inputs, x has " + std::to_string(in[0][1]));
  const int num_output = read_attrs<LinearAttrs>(n).num_output;
  if (num_output != 0 && num_output != in[1][0])
    shape_error(n, in, "weight has " + std::to_string(in[1][0]) + " rows, num_output is " + std::to_string(num_output));
  if (in.size() > 2 && (in[2].size() != 1 || in[2][0] != in[1][0]))
    shape_error(n, in, "bias must have shape (" + std::to_string(in[1][0]) + ",)");
  return {{in[0][0], in[1][0]}};
}

Cost linear_cost(const Node&, const std::vector<Shape>& in, const std::vector<Shape>& out) {
  return {in[0][0] * in[1][0] * in[1][1], ops::bytes_of(in, out)};
}

void linear_backward(GradBuilder& b, const Node& n) {
  ValueId dy = b.grad(n.outputs[0]);
  b.emit(n, ops::linear_grad_data, {dy, n.inputs[1]}, n.inputs[0]);
  b.emit(n, ops::linear_grad_weight, {n.inputs[0], dy}, n.inputs[1]);
  if (n.inputs.size() > 2) b.emit(n, ops::bias_grad, {dy}, n.inputs[2]);
}

template <Device D>
void linear_forward_k(const KernelCall& c) {
  MASSMAP_DISPATCH(D, cpu, linear_forward, c, linear_of(c.in[0], c.out[0]), c.in[0].data, c.in[1].data,
                   c.in.size() > 2 ? c.in[2].data : nullptr, c.out[0].data);
}

// inputs (dy, w) -> dx
template <Device D>
void linear_grad_data_k(const KernelCall& c) {
  MASSMAP_DISPATCH(D, cpu, linear_backward_data, c, linear_of(c.out[0], c.in[0]), c.in[0].data, c.in[1].data,
                   c.out[0].data, c.accumulate(0));
}

// inputs (x, dy) -> dw
template <Device D>
void linear_grad_weight_k(const KernelCall& c) {
  MASSMAP_DISPATCH(D, cpu, linear_backward_weight, c, linear_of(c.in[0], c.in[1]), c.in[0].data, c.in[1].data,
                   c.out[0].data, c.accumulate(0));
}

}  // namespace

void register_linear_ops() {
  OpDef linear;
  linear.name = ops::linear;
  linear.check_attrs = check_attrs_as<LinearAttrs>;
  linear.min_inputs = 2;
  linear.max_inputs = 3;
  linear.infer = infer_linear;
  linear.cost = linear_cost;
  linear.backward = linear_backward;
  register_op(linear);
  for (const char* name : {ops::linear_grad_data, ops::linear_grad_weight}) {
    OpDef g;
    g.name = name;
    g.min_inputs = g.max_inputs = 2;
    register_op(g);
  }
  MASSMAP_REGISTER_ALL(ops::linear, linear_forward_k);
  MASSMAP_REGISTER_ALL(ops::linear_grad_data, linear_grad_data_k);
  MASSMAP_REGISTER_ALL(ops::linear_grad_weight, linear_grad_weight_k);
}

}  // namespace massmap
