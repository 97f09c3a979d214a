// pool: max or average pooling with Caffe's CEIL output size, with PoolAttrs (engine/ops/pool.h).
// Input x (N, C, H, W); output y (N, C, P, Q).
#include "engine/ops/pool.h"

#include "base/errors.h"
#include "engine/autograd.h"
#include "engine/ops/common.h"
#include "engine/ops/dispatch.h"

namespace massmap {
namespace {

kernels::PoolShape pool_of(const Node& n, const Shape& x) {
  const auto a = read_attrs<PoolAttrs>(n);
  return kernels::pool_shape(int(x[0]), int(x[1]), int(x[2]), int(x[3]), a.method, a.kernel, a.stride, a.pad, a.global);
}

std::vector<Shape> infer_pool(const Node& n, const std::vector<Shape>& in) {
  ops::require_rank(n, in, 0, 4, "x");
  kernels::PoolShape s;
  try {
    s = pool_of(n, in[0]);
    kernels::check_pool_shape(s);
  } catch (const std::invalid_argument& e) {
    shape_error(n, in, e.what());
  }
  return {{in[0][0], in[0][1], s.P, s.Q}};
}

Cost pool_cost(const Node& n, const std::vector<Shape>& in, const std::vector<Shape>& out) {
  kernels::PoolShape s = pool_of(n, in[0]);
  return {shape_numel(out[0]) * s.R * s.S, ops::bytes_of(in, out)};
}

void pool_backward(GradBuilder& b, const Node& n) {
  b.emit(n, ops::pool_grad, {n.inputs[0], b.grad(n.outputs[0])}, n.inputs[0]);
}

template <Device D>
void pool_k(const KernelCall& c) {
  kernels::PoolShape s = pool_of(*c.node, c.in[0].shape);
  s.x = c.in[0].place;
  s.y = c.out[0].place;
  MASSMAP_DISPATCH(D, cpu, pool_forward, c, s, c.in[0].data, c.out[0].data);
}

// inputs (x, dy) -> dx
template <Device D>
void pool_grad_k(const KernelCall& c) {
  kernels::PoolShape s = pool_of(*c.node, c.in[0].shape);
  s.x = c.in[0].place;
  s.y = c.in[1].place;
  if (c.out[0].place.batch_stride != s.x.batch_stride || c.out[0].place.channel_offset != s.x.channel_offset ||
      c.out[0].place.channel_stride != s.x.channel_stride)
    throw Error("pool_grad of '" + c.node->name + "': dx must be placed like x");
  MASSMAP_DISPATCH(D, cpu, pool_backward, c, s, c.in[0].data, c.in[1].data, c.out[0].data, c.accumulate(0));
}

}  // namespace

void register_pool_ops() {
  OpDef pool;
  pool.name = ops::pool;
  pool.check_attrs = check_attrs_as<PoolAttrs>;
  pool.infer = infer_pool;
  pool.cost = pool_cost;
  pool.backward = pool_backward;
  register_op(pool);
  OpDef grad;
  grad.name = ops::pool_grad;
  grad.min_inputs = grad.max_inputs = 2;
  register_op(grad);
  MASSMAP_REGISTER_ALL(ops::pool, pool_k);
  MASSMAP_REGISTER_ALL(ops::pool_grad, pool_grad_k);
}

}  // namespace massmap
