// Per-element ops: bias (y = x + b[c]), relu, add (y = a + b), and the gradient helpers bias_grad and copy.
#include "engine/ops/elementwise.h"

#include "engine/autograd.h"
#include "engine/ops/common.h"
#include "engine/ops/dispatch.h"

namespace massmap {
namespace {

std::vector<Shape> same_as_first(const Node&, const std::vector<Shape>& in) {
  return {in[0]};
}

std::vector<Shape> infer_bias(const Node& n, const std::vector<Shape>& in) {
  if (in[0].size() < 2) shape_error(n, in, "x needs a channel dimension");
  if (in[1].size() != 1 || in[1][0] != in[0][1])
    shape_error(n, in, "bias must have one value per channel: (" + std::to_string(in[0][1]) + ",)");
  return {in[0]};
}

std::vector<Shape> infer_add(const Node& n, const std::vector<Shape>& in) {
  if (in[0] != in[1]) shape_error(n, in, "inputs must have the same shape");
  return {in[0]};
}

void bias_backward(GradBuilder& b, const Node& n) {
  ValueId dy = b.grad(n.outputs[0]);
  b.emit(n, ops::copy, {dy}, n.inputs[0]);
  b.emit(n, ops::bias_grad, {dy}, n.inputs[1]);
}

void relu_backward(GradBuilder& b, const Node& n) {
  b.emit(n, ops::relu_grad, {n.outputs[0], b.grad(n.outputs[0])}, n.inputs[0]);
}

void add_backward(GradBuilder& b, const Node& n) {
  ValueId dy = b.grad(n.outputs[0]);
  b.emit(n, ops::copy, {dy}, n.inputs[0]);
  b.emit(n, ops::copy, {dy}, n.inputs[1]);
}

template <Device D>
void bias_k(const KernelCall& c) {
  MASSMAP_DISPATCH(D, ref, bias_forward, c, ops::act(c.in[0], c.out[0]), c.in[0].data, c.in[1].data, c.out[0].data);
}
// inputs (dy) -> db
template <Device D>
void bias_grad_k(const KernelCall& c) {
  MASSMAP_DISPATCH(D, ref, bias_backward, c, ops::act(c.in[0], c.in[0]), c.in[0].data, c.out[0].data, c.accumulate(0));
}
template <Device D>
void relu_k(const KernelCall& c) {
  MASSMAP_DISPATCH(D, ref, relu_forward, c, ops::act(c.in[0], c.out[0]), c.in[0].data, c.out[0].data);
}
// inputs (y, dy) -> dx; dy is placed like y. The kernel reads y and dy placed as s.y and writes dx placed as s.x
// (they differ when a fused conv writes y into a concat slice and dx is a dense temporary).
template <Device D>
void relu_grad_k(const KernelCall& c) {
  MASSMAP_DISPATCH(D, ref, relu_backward, c, ops::act(c.out[0], c.in[0]), c.in[0].data, c.in[1].data, c.out[0].data,
                   c.accumulate(0));
}
template <Device D>
void add_k(const KernelCall& c) {
  MASSMAP_DISPATCH(D, ref, add_forward, c, ops::act(c.in[0], c.out[0]), c.in[0].data, c.in[1].place, c.in[1].data,
                   c.out[0].data);
}
template <Device D>
void copy_k(const KernelCall& c) {
  MASSMAP_DISPATCH(D, ref, copy, c, ops::act(c.in[0], c.out[0]), c.in[0].data, c.out[0].data, c.accumulate(0));
}

OpDef simple(const char* name, int inputs) {
  OpDef d;
  d.name = name;
  d.min_inputs = d.max_inputs = inputs;
  d.cost = ops::elementwise_cost;
  return d;
}

}  // namespace

void register_elementwise_ops() {
  OpDef bias = simple(ops::bias, 2);
  bias.infer = infer_bias;
  bias.backward = bias_backward;
  register_op(bias);

  OpDef relu = simple(ops::relu, 1);
  relu.infer = same_as_first;
  relu.backward = relu_backward;
  relu.backward_reads_outputs = true;
  relu.in_place = true;
  register_op(relu);

  OpDef add = simple(ops::add, 2);
  add.infer = infer_add;
  add.backward = add_backward;
  register_op(add);

  register_op(simple(ops::bias_grad, 1));
  register_op(simple(ops::relu_grad, 2));
  register_op(simple(ops::copy, 1));

  MASSMAP_REGISTER_ALL(ops::bias, bias_k);
  MASSMAP_REGISTER_ALL(ops::bias_grad, bias_grad_k);
  MASSMAP_REGISTER_ALL(ops::relu, relu_k);
  MASSMAP_REGISTER_ALL(ops::relu_grad, relu_grad_k);
  MASSMAP_REGISTER_ALL(ops::add, add_k);
  MASSMAP_REGISTER_ALL(ops::copy, copy_k);
}

}  // namespace massmap
