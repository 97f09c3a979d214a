// conv2d: y = conv(x, w) + b, with ConvAttrs (engine/ops/conv.h); relu=1 gives y = relu(conv(x, w) + b) in one
// kernel call. Inputs: x (N, C, H, W), w (K, C/groups, R, S), optional b (K). Output: y (N, K, P, Q).
#include "engine/ops/conv.h"

#include "engine/autograd.h"
#include "engine/ops/common.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/elementwise.h"
#include "kernels/conv.h"

namespace massmap {
namespace {

kernels::ConvShape conv_of(const Node& n, const Shape& x, const Shape& w, const Shape& y) {
  const auto a = read_attrs<ConvAttrs>(n);
  kernels::ConvShape s;
  s.N = int(x[0]);
  s.C = int(x[1]);
  s.H = int(x[2]);
  s.W = int(x[3]);
  s.K = int(w[0]);
  s.R = int(w[2]);
  s.S = int(w[3]);
  s.P = int(y[2]);
  s.Q = int(y[3]);
  s.stride_h = s.stride_w = a.stride;
  s.pad_h = s.pad_w = a.pad;
  s.groups = a.groups;
  s.x = kernels::Placement::dense(s.C, s.H, s.W);
  s.y = kernels::Placement::dense(s.K, s.P, s.Q);
  return s;
}

std::vector<Shape> infer_conv(const Node& n, const std::vector<Shape>& in) {
  ops::require_rank(n, in, 0, 4, "x");
  ops::require_rank(n, in, 1, 4, "weight");
  const Shape &x = in[0], &w = in[1];
  const auto a = read_attrs<ConvAttrs>(n);
  const int64_t groups = a.groups, stride = a.stride, pad = a.pad;
  if (x[1] % groups || w[0] % groups)
    shape_error(n, in, "groups " + std::to_string(groups) + " must divide input channels and num_output");
  if (w[1] * groups != x[1])
    shape_error(n, in,
                "weight has " + std::to_string(w[1]) + " input channels per group, x has " + std::to_string(x[1]) +
                    " channels in " + std::to_string(groups) + " groups");
  if (a.num_output != 0 && a.num_output != w[0])
    shape_error(n, in,
                "weight has " + std::to_string(w[0]) + " filters, num_output is " + std::to_string(a.num_output));
  if ((a.kernel_h != 0 && a.kernel_h != w[2]) || (a.kernel_w != 0 && a.kernel_w != w[3]))
    shape_error(n, in,
                "weight has " + std::to_string(w[2]) + "x" + std::to_string(w[3]) + " filters, kernel is " +
                    std::to_string(a.kernel_h) + "x" + std::to_string(a.kernel_w));
  if (in.size() > 2 && (in[2].size() != 1 || in[2][0] != w[0]))
    shape_error(n, in, "bias must have shape (" + std::to_string(w[0]) + ",)");
  const int64_t P = (x[2] + 2 * pad - w[2]) / stride + 1, Q = (x[3] + 2 * pad - w[3]) / stride + 1;
  if (x[2] + 2 * pad < w[2] || x[3] + 2 * pad < w[3] || P < 1 || Q < 1)
    shape_error(n, in,
                "the " + std::to_string(w[2]) + "x" + std::to_string(w[3]) + " filter does not fit the padded input");
  return {{x[0], w[0], P, Q}};
}

Cost conv_cost(const Node&, const std::vector<Shape>& in, const std::vector<Shape>& out) {
  const Shape &w = in[1], &y = out[0];
  return {y[0] * y[1] * y[2] * y[3] * w[1] * w[2] * w[3], ops::bytes_of(in, out)};
}

// With relu=1 the output is post-ReLU: the gradient first passes the ReLU's backward (which reads that output).
void conv_backward(GradBuilder& b, const Node& n) {
  ValueId dy = b.grad(n.outputs[0]);
  if (read_attrs<ConvAttrs>(n).relu)
    dy = b.emit_temporary(n, ops::relu_grad, {n.outputs[0], dy}, n.outputs[0], "pre_relu");
  b.emit(n, ops::conv2d_grad_data, {dy, n.inputs[1]}, n.inputs[0]);
  b.emit(n, ops::conv2d_grad_filter, {n.inputs[0], dy}, n.inputs[1]);
  if (n.inputs.size() > 2) b.emit(n, ops::bias_grad, {dy}, n.inputs[2]);
}

// With relu=1 (the fusion pass): ReLU in the kernel's epilogue, before the one store of y.
template <Device D>
void conv_forward_k(const KernelCall& c) {
  auto s = conv_of(*c.node, c.in[0].shape, c.in[1].shape, c.out[0].shape);
  s.x = c.in[0].place;
  s.y = c.out[0].place;
  kernels::ConvEpilogue epilogue;
  epilogue.relu = read_attrs<ConvAttrs>(*c.node).relu;
  const float* b = c.in.size() > 2 ? c.in[2].data : nullptr;
  if constexpr (D == Device::cpu)
    kernels::cpu::conv_forward(s, c.in[0].data, c.in[1].data, b, c.out[0].data, epilogue);
  else if constexpr (D == Device::simt)
    kernels::simt::conv_forward(s, c.in[0].data, c.in[1].data, b, c.out[0].data, c.stream, epilogue);
  else
    kernels::cuda::conv_forward(s, c.in[0].data, c.in[1].data, b, c.out[0].data, c.stream, epilogue);
}

// inputs (dy, w) -> dx
template <Device D>
void conv_grad_data_k(const KernelCall& c) {
  auto s = conv_of(*c.node, c.out[0].shape, c.in[1].shape, c.in[0].shape);
  s.x = c.out[0].place;
  s.y = c.in[0].place;
  MASSMAP_DISPATCH(D, cpu, conv_backward_data, c, s, c.in[0].data, c.in[1].data, c.out[0].data, c.accumulate(0));
}

// inputs (x, dy) -> dw
kernels::ConvShape grad_filter_shape(const KernelCall& c) {
  auto s = conv_of(*c.node, c.in[0].shape, c.out[0].shape, c.in[1].shape);
  s.x = c.in[0].place;
  s.y = c.in[1].place;
  return s;
}

template <Device D>
void conv_grad_filter_k(const KernelCall& c) {
  const kernels::ConvShape s = grad_filter_shape(c);
  if constexpr (D == Device::cpu) {
    kernels::cpu::conv_backward_filter(s, c.in[0].data, c.in[1].data, c.out[0].data, c.accumulate(0));
  } else {  // with the executor's workspace the GPU kernel can split the N*P*Q sum over more blocks
    auto launch = [&](auto backward_filter) {
      backward_filter(s, c.in[0].data, c.in[1].data, c.out[0].data, c.accumulate(0), c.workspace,
                      size_t(c.workspace_floats), c.stream, kernels::GpuKernelVersion::best);
    };
    if constexpr (D == Device::simt)
      launch(MASSMAP_OVERLOAD(kernels::simt::conv_backward_filter));
    else
      launch(MASSMAP_OVERLOAD(kernels::cuda::conv_backward_filter));
  }
}

int64_t grad_filter_workspace(const KernelCall& c, Device device) {
  const kernels::ConvShape s = grad_filter_shape(c);
  if (device == Device::simt) return int64_t(kernels::simt::conv_backward_filter_workspace_floats(s));
#ifdef MASSMAP_HAVE_CUDA
  if (device == Device::cuda) return int64_t(kernels::cuda::conv_backward_filter_workspace_floats(s));
#endif
  return 0;
}

Cost grad_cost(const Node& n, const std::vector<Shape>& in, const std::vector<Shape>& out) {
  (void)n;
  return {0, ops::bytes_of(in, out)};
}

}  // namespace

void register_conv_ops() {
  OpDef conv;
  conv.name = ops::conv2d;
  conv.min_inputs = 2;
  conv.max_inputs = 3;
  conv.check_attrs = check_attrs_as<ConvAttrs>;
  conv.infer = infer_conv;
  conv.cost = conv_cost;
  conv.backward = conv_backward;
  conv.backward_reads_outputs_if = [](const Node& n) { return read_attrs<ConvAttrs>(n).relu; };
  register_op(conv);
  for (const char* name : {ops::conv2d_grad_data, ops::conv2d_grad_filter}) {
    OpDef g;
    g.name = name;
    g.min_inputs = g.max_inputs = 2;
    g.cost = grad_cost;
    if (std::string(name) == ops::conv2d_grad_filter) g.workspace_floats = grad_filter_workspace;
    register_op(g);
  }
  MASSMAP_REGISTER_ALL(ops::conv2d, conv_forward_k);
  MASSMAP_REGISTER_ALL(ops::conv2d_grad_data, conv_grad_data_k);
  MASSMAP_REGISTER_ALL(ops::conv2d_grad_filter, conv_grad_filter_k);
}

}  // namespace massmap
