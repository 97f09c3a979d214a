// concat: joins inputs (N, C_i, H, W) along channels into (N, sum C_i, H, W). The executor places each input
// that only the concat reads inside the output at its channel offset, so its producer writes there directly and
// the concat costs nothing; the kernel copies only inputs that could not be placed so.
// flatten: (N, C, H, W) -> (N, C*H*W), a view of dense memory (a copy otherwise).
#include "engine/ops/concat.h"

#include "engine/autograd.h"
#include "engine/ops/common.h"
#include "engine/ops/dispatch.h"

namespace massmap {
namespace {

bool same_place(const TensorArg& a, const TensorArg& b) {
  return a.data == b.data && a.place.batch_stride == b.place.batch_stride &&
         a.place.channel_stride == b.place.channel_stride && a.place.channel_offset == b.place.channel_offset;
}

std::vector<Shape> infer_concat(const Node& n, const std::vector<Shape>& in) {
  Shape out = in[0];
  if (out.size() != 4) shape_error(n, in, "inputs must be (N, C, H, W)");
  out[1] = 0;
  for (const Shape& s : in) {
    if (s.size() != 4 || s[0] != in[0][0] || s[2] != in[0][2] || s[3] != in[0][3])
      shape_error(n, in, "inputs must agree in N, H and W");
    out[1] += s[1];
  }
  return {out};
}

void concat_backward(GradBuilder& b, const Node& n) {
  ValueId dy = b.grad(n.outputs[0]);
  int64_t offset = 0;
  for (ValueId in : n.inputs) {
    ConcatGradAttrs slice;
    slice.channel_offset = offset;
    b.emit(n, ops::concat_grad, {dy}, in, write_attrs(slice));
    offset += b.graph().value(in).shape[1];
  }
}

// The slice of `whole` holding channels [offset, offset + part channels).
TensorArg slice_of(const TensorArg& whole, const TensorArg& part, int64_t offset) {
  TensorArg s = part;
  s.data = whole.data;
  s.place = whole.place;
  s.place.channel_offset += offset;
  return s;
}

template <Device D>
void concat_k(const KernelCall& c) {
  int64_t offset = 0;
  for (const TensorArg& in : c.in) {
    TensorArg dst = slice_of(c.out[0], in, offset);
    if (!same_place(in, dst)) MASSMAP_DISPATCH(D, ref, copy, c, ops::act(in, dst), in.data, dst.data, false);
    offset += in.c();
  }
}

// inputs (dy) -> dx_i, the slice at attribute channel_offset
template <Device D>
void concat_grad_k(const KernelCall& c) {
  TensorArg src = slice_of(c.in[0], c.out[0], read_attrs<ConcatGradAttrs>(*c.node).channel_offset);
  if (!same_place(src, c.out[0]))
    MASSMAP_DISPATCH(D, ref, copy, c, ops::act(src, c.out[0]), src.data, c.out[0].data, c.accumulate(0));
}

std::vector<Shape> infer_flatten(const Node& n, const std::vector<Shape>& in) {
  if (in[0].empty()) shape_error(n, in, "cannot flatten a scalar");
  return {{in[0][0], shape_numel(in[0]) / std::max<int64_t>(in[0][0], 1)}};
}

void flatten_backward(GradBuilder& b, const Node& n) {
  b.emit(n, ops::flatten_grad, {b.grad(n.outputs[0])}, n.inputs[0]);
}

// Copies between a possibly strided (N, C, H, W) tensor and a dense (N, C*H*W) one unless they share memory.
template <Device D>
void reshape_copy(const KernelCall& c, const TensorArg& from, const TensorArg& to, bool accumulate) {
  if (from.data == to.data) return;
  const TensorArg& image = from.shape.size() == 4 ? from : to;
  kernels::ActShape s;
  s.N = image.n();
  s.C = image.c();
  s.H = image.h();
  s.W = image.w();
  kernels::Placement flat = kernels::Placement::dense(s.C, s.H, s.W);
  flat.batch_stride = (from.shape.size() == 4 ? to : from).place.batch_stride;
  s.x = from.shape.size() == 4 ? from.place : flat;
  s.y = from.shape.size() == 4 ? flat : to.place;
  MASSMAP_DISPATCH(D, ref, copy, c, s, from.data, to.data, accumulate);
}

template <Device D>
void flatten_k(const KernelCall& c) {
  reshape_copy<D>(c, c.in[0], c.out[0], false);
}
template <Device D>
void flatten_grad_k(const KernelCall& c) {
  reshape_copy<D>(c, c.in[0], c.out[0], c.accumulate(0));
}

}  // namespace

void register_concat_ops() {
  OpDef concat;
  concat.name = ops::concat;
  concat.min_inputs = 1;
  concat.max_inputs = 1 << 20;
  concat.infer = infer_concat;
  concat.cost = ops::elementwise_cost;
  concat.backward = concat_backward;
  concat.concat = true;
  register_op(concat);
  OpDef concat_grad;
  concat_grad.name = ops::concat_grad;
  register_op(concat_grad);

  OpDef flatten;
  flatten.name = ops::flatten;
  flatten.infer = infer_flatten;
  flatten.cost = [](const Node&, const std::vector<Shape>&, const std::vector<Shape>&) { return Cost{}; };
  flatten.backward = flatten_backward;
  flatten.view = true;
  register_op(flatten);
  OpDef flatten_grad;
  flatten_grad.name = ops::flatten_grad;
  register_op(flatten_grad);

  MASSMAP_REGISTER_ALL(ops::concat, concat_k);
  MASSMAP_REGISTER_ALL(ops::concat_grad, concat_grad_k);
  MASSMAP_REGISTER_ALL(ops::flatten, flatten_k);
  MASSMAP_REGISTER_ALL(ops::flatten_grad, flatten_grad_k);
}

}  // namespace massmap
