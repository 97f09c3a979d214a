// pool: max or average pooling with Caffe's CEIL output size. Attributes: method ("max" | "avg"), kernel, stride,
// pad, global (1: the window is the whole image). Input x (N, C, H, W); output y (N, C, P, Q).
#include "kernels/pool.h"

#include "base/errors.h"
#include "engine/autograd.h"
#include "engine/ops/builtin.h"
#include "engine/ops/common.h"
#include "engine/ops/dispatch.h"

namespace massmap {
namespace {

kernels::PoolMethod method_of(const Node& n) {
  std::string m = n.attrs.get_str("method", "max");
  if (m == "max") return kernels::PoolMethod::max;
  if (m == "avg") return kernels::PoolMethod::avg;
  throw BadConfig("node '" + n.name + "' (pool): method must be max or avg, not '" + m + "'");
}

kernels::PoolShape pool_of(const Node& n, const Shape& x) {
  return kernels::pool_shape(int(x[0]), int(x[1]), int(x[2]), int(x[3]), method_of(n),
                             int(n.attrs.get_int("kernel", 0)), int(n.attrs.get_int("stride", 1)),
                             int(n.attrs.get_int("pad", 0)), n.attrs.get_int("global", 0) != 0);
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
  b.emit(n, "pool_grad", {n.inputs[0], b.grad(n.outputs[0])}, n.inputs[0]);
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
  pool.name = "pool";
  pool.infer = infer_pool;
  pool.cost = pool_cost;
  pool.backward = pool_backward;
  register_op(pool);
  OpDef grad;
  grad.name = "pool_grad";
  grad.min_inputs = grad.max_inputs = 2;
  register_op(grad);
  MASSMAP_REGISTER_ALL("pool", pool_k);
  MASSMAP_REGISTER_ALL("pool_grad", pool_grad_k);
}

}  // namespace massmap
