// batch_norm: per-channel normalisation with batch statistics while training and running statistics at test time,
// with BatchNormAttrs (engine/ops/batch_norm.h); the kernels are kernels/batch_norm.h's.
// Inputs: x (N, C, H, W), gamma, beta, running_mean, running_var (C). The running statistics are parameters that no
// gradient reaches (lr_mult 0), so checkpoints carry them; a training forward pass updates them in place.
// Outputs: y (N, C, H, W); saved_mean, saved_inv_std (C), the batch's statistics for backward (training only).
// batch_norm_grad: inputs (x, dy, gamma, saved_mean, saved_inv_std) -> (dx, dgamma, dbeta) in one pass; with relu=1
// (fuse_batch_norm_relu) y is post-ReLU and the grad takes it as a sixth input: dy counts where y > 0.
#include "engine/ops/batch_norm.h"

#include <vector>

#include "base/errors.h"
#include "engine/autograd.h"
#include "engine/ops/common.h"
#include "engine/ops/dispatch.h"
#include "kernels/batch_norm.h"

namespace massmap {
namespace {

// The kernels address dense (N, C, H, W) buffers only.
void require_dense(const KernelCall& c, const TensorArg& t, const char* what) {
  const kernels::Placement dense = kernels::Placement::dense(t.c(), t.h(), t.w());
  if (t.place.batch_stride != dense.batch_stride || t.place.channel_stride != dense.channel_stride ||
      t.place.channel_offset != 0)
    throw Error("node '" + c.node->name + "' (batch_norm): " + what +
                " is a slice of a wider buffer; batch_norm reads and writes dense buffers only");
}

kernels::BatchNormShape batch_norm_of(const KernelCall& c, const TensorArg& x) {
  const auto a = read_attrs<BatchNormAttrs>(*c.node);
  kernels::BatchNormShape s;
  s.N = x.n();
  s.C = x.c();
  s.H = x.h();
  s.W = x.w();
  s.eps = float(a.eps);
  s.momentum = float(a.momentum);
  s.relu = a.relu;
  return s;
}

std::vector<Shape> infer_batch_norm(const Node& n, const std::vector<Shape>& in) {
  ops::require_rank(n, in, 0, 4, "x");
  const Shape channels = {in[0][1]};
  const char* names[] = {"", "gamma", "beta", "running_mean", "running_var"};
  for (size_t i = 1; i < 5; ++i)
    if (in[i] != channels)
      shape_error(n, in,
                  std::string(names[i]) + " must have one value per channel: (" + std::to_string(in[0][1]) + ",)");
  return {in[0], channels, channels};
}

Cost batch_norm_cost(const Node&, const std::vector<Shape>& in, const std::vector<Shape>& out) {
  return {2 * shape_numel(in[0]), ops::bytes_of(in, out)};
}

void batch_norm_backward(GradBuilder& b, const Node& n) {
  std::vector<ValueId> inputs = {n.inputs[0], b.grad(n.outputs[0]), n.inputs[1], n.outputs[1], n.outputs[2]};
  if (read_attrs<BatchNormAttrs>(n).relu) inputs.push_back(n.outputs[0]);
  b.emit_several(n, ops::batch_norm_grad, inputs, {n.inputs[0], n.inputs[1], n.inputs[2]});
}

template <Device D>
void batch_norm_k(const KernelCall& c) {
  require_dense(c, c.in[0], "x");
  require_dense(c, c.out[0], "y");
  const kernels::BatchNormShape s = batch_norm_of(c, c.in[0]);
  if (c.run->training) {
    MASSMAP_DISPATCH(D, cpu, batch_norm_forward_training, c, s, c.in[0].data, c.in[1].data, c.in[2].data, c.in[3].data,
                     c.in[4].data, c.out[0].data, c.out[1].data, c.out[2].data);
  } else {
    MASSMAP_DISPATCH(D, cpu, batch_norm_forward_inference, c, s, c.in[0].data, c.in[1].data, c.in[2].data, c.in[3].data,
                     c.in[4].data, c.out[0].data);
  }
}

template <Device D>
void batch_norm_grad_k(const KernelCall& c) {
  require_dense(c, c.in[0], "x");
  require_dense(c, c.in[1], "dy");
  require_dense(c, c.out[0], "dx");
  const bool accumulate = c.accumulate(0);
  if (c.accumulate(1) != accumulate || c.accumulate(2) != accumulate)
    throw Error("node '" + c.node->name +
                "' (batch_norm_grad): dx, dgamma and dbeta must all be accumulated or all overwritten");
  const kernels::BatchNormShape s = batch_norm_of(c, c.in[0]);
  if (s.relu != (c.in.size() == 6))
    throw Error("node '" + c.node->name + "' (batch_norm_grad): relu=1 takes the forward's output as a sixth input, " +
                "relu=0 none");
  if (s.relu) {
    require_dense(c, c.in[5], "y");
    MASSMAP_DISPATCH(D, cpu, batch_norm_backward_relu, c, s, c.in[0].data, c.in[5].data, c.in[1].data, c.in[2].data,
                     c.in[3].data, c.in[4].data, c.out[0].data, c.out[1].data, c.out[2].data, accumulate);
  } else {
    MASSMAP_DISPATCH(D, cpu, batch_norm_backward, c, s, c.in[0].data, c.in[1].data, c.in[2].data, c.in[3].data,
                     c.in[4].data, c.out[0].data, c.out[1].data, c.out[2].data, accumulate);
  }
}

}  // namespace

void register_batch_norm_ops() {
  OpDef bn;
  bn.name = ops::batch_norm;
  bn.check_attrs = check_attrs_as<BatchNormAttrs>;
  bn.min_inputs = bn.max_inputs = 5;
  bn.output_suffixes = {"", "saved_mean", "saved_inv_std"};
  bn.infer = infer_batch_norm;
  bn.cost = batch_norm_cost;
  bn.backward = batch_norm_backward;
  bn.backward_reads_outputs_if = [](const Node& n) { return read_attrs<BatchNormAttrs>(n).relu; };
  register_op(bn);
  OpDef grad;
  grad.name = ops::batch_norm_grad;
  grad.check_attrs = check_attrs_as<BatchNormAttrs>;
  grad.min_inputs = 5;
  grad.max_inputs = 6;
  register_op(grad);
  MASSMAP_REGISTER_ALL(ops::batch_norm, batch_norm_k);
  MASSMAP_REGISTER_ALL(ops::batch_norm_grad, batch_norm_grad_k);
}

}  // namespace massmap
