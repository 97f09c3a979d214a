// softmax: probabilities over channels at every location. Input x (N, C) or (N, C, H, W); output the same shape.
// softmax_loss: softmax cross-entropy. Inputs: logits (N, C[, H, W]) and labels (N[, H, W]) holding class ids;
// outputs: loss () (mean over non-ignored locations) and prob (like logits). Attributes: SoftmaxLossAttrs
// (engine/ops/softmax.h).
#include "engine/ops/softmax.h"

#include "base/errors.h"
#include "engine/autograd.h"
#include "engine/ops/common.h"
#include "engine/ops/dispatch.h"
#include "kernels/softmax.h"

namespace massmap {
namespace {

kernels::SoftmaxShape softmax_of(const TensorArg& x, const TensorArg& y) {
  return ops::act<kernels::SoftmaxShape>(x, y);
}

kernels::SoftmaxLossShape loss_of(const Node& n, const TensorArg& x, const TensorArg& prob) {
  kernels::SoftmaxLossShape s;
  s.softmax = softmax_of(x, prob);
  s.ignore_label = read_attrs<SoftmaxLossAttrs>(n).ignore_label;
  return s;
}

std::vector<Shape> infer_softmax(const Node& n, const std::vector<Shape>& in) {
  if (in[0].size() != 2 && in[0].size() != 4) shape_error(n, in, "x must be (N, C) or (N, C, H, W)");
  return {in[0]};
}

std::vector<Shape> infer_loss(const Node& n, const std::vector<Shape>& in) {
  const Shape& x = in[0];
  if (x.size() != 2 && x.size() != 4) shape_error(n, in, "logits must be (N, C) or (N, C, H, W)");
  Shape want = {x[0]};
  if (x.size() == 4) want = {x[0], x[2], x[3]};
  if (shape_numel(in[1]) != shape_numel(want) || in[1].empty() || in[1][0] != x[0])
    shape_error(n, in, "labels must have shape " + shape_str(want));
  return {Shape{}, x};
}

void softmax_backward(GradBuilder& b, const Node& n) {
  b.emit(n, ops::softmax_grad, {n.outputs[0], b.grad(n.outputs[0])}, n.inputs[0]);
}

void loss_backward(GradBuilder& b, const Node& n) {
  b.emit(n, ops::softmax_loss_grad, {n.outputs[1], n.inputs[1]}, n.inputs[0]);
}

template <Device D>
void softmax_k(const KernelCall& c) {
  MASSMAP_DISPATCH(D, ref, softmax_forward, c, softmax_of(c.in[0], c.out[0]), c.in[0].data, c.out[0].data);
}

// inputs (prob, dprob) -> dx
template <Device D>
void softmax_grad_k(const KernelCall& c) {
  MASSMAP_DISPATCH(D, ref, softmax_backward, c, softmax_of(c.out[0], c.in[0]), c.in[0].data, c.in[1].data,
                   c.out[0].data, c.accumulate(0));
}

// The cpu reference returns the loss and rejects bad labels; the GPU launchers write it to device memory and
// make it NaN for a bad label (the solver's finite-loss check then stops training).
template <Device D>
void loss_k(const KernelCall& c) {
  const kernels::SoftmaxLossShape s = loss_of(*c.node, c.in[0], c.out[1]);
  if constexpr (D == Device::cpu) {
    try {
      c.out[0].data[0] = kernels::ref::softmax_loss_forward(s, c.in[0].data, c.in[1].data, c.out[1].data);
    } catch (const std::out_of_range& e) {
      throw BadInput("loss '" + c.node->name + "': " + e.what());
    }
  } else if constexpr (D == Device::simt) {
    kernels::simt::softmax_loss_forward(s, c.in[0].data, c.in[1].data, c.out[1].data, c.out[0].data, c.stream);
  } else {
    kernels::cuda::softmax_loss_forward(s, c.in[0].data, c.in[1].data, c.out[1].data, c.out[0].data, c.stream);
  }
}

// inputs (prob, labels) -> dlogits
template <Device D>
void loss_grad_k(const KernelCall& c) {
  MASSMAP_DISPATCH(D, ref, softmax_loss_backward, c, loss_of(*c.node, c.out[0], c.in[0]), c.in[0].data, c.in[1].data,
                   float(read_attrs<SoftmaxLossAttrs>(*c.node).loss_weight), c.out[0].data, c.accumulate(0));
}

}  // namespace

void register_softmax_ops() {
  OpDef softmax;
  softmax.name = ops::softmax;
  softmax.infer = infer_softmax;
  softmax.cost = ops::elementwise_cost;
  softmax.backward = softmax_backward;
  softmax.backward_reads_outputs = true;
  register_op(softmax);

  OpDef loss;
  loss.name = ops::softmax_loss;
  loss.check_attrs = check_attrs_as<SoftmaxLossAttrs>;
  loss.min_inputs = loss.max_inputs = 2;
  loss.output_suffixes = {"", "prob"};
  loss.infer = infer_loss;
  loss.cost = ops::elementwise_cost;
  loss.backward = loss_backward;
  loss.is_loss = true;
  loss.loss_weight = [](const Node& n) { return read_attrs<SoftmaxLossAttrs>(n).loss_weight; };
  loss.backward_reads_outputs = true;
  register_op(loss);

  for (const char* name : {ops::softmax_grad, ops::softmax_loss_grad}) {
    OpDef g;
    g.name = name;
    g.min_inputs = g.max_inputs = 2;
    register_op(g);
  }
  MASSMAP_REGISTER_ALL(ops::softmax, softmax_k);
  MASSMAP_REGISTER_ALL(ops::softmax_grad, softmax_grad_k);
  MASSMAP_REGISTER_ALL(ops::softmax_loss, loss_k);
  MASSMAP_REGISTER_ALL(ops::softmax_loss_grad, loss_grad_k);
}

}  // namespace massmap
