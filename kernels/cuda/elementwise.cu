// Elementwise kernels: bias add and its gradient, ReLU, add, copy. Memory-bound: each thread moves chunks of V
// floats (V = 4, one 16-byte access, where every row is aligned; else 1) along the rows of activation_rows.h.
// Shapes: x, y, dx, dy, a (N, C, H, W) placed as the ActShape says; b, db (C).
#include "kernels/cuda/portable.h"
// (first: MASSMAP_GPU_NS and the CUDA vocabulary of this build)
#include "kernels/cuda/activation_rows.h"
#include "kernels/cuda/device_helpers.h"

namespace kernels::MASSMAP_GPU_NS {
namespace {

using rows::Chunk;
using rows::Operand;

template <int V>
__global__ void bias_forward_kernel(rows::Grid g, Operand<const float> x, const float* b, Operand<float> y) {
  rows::for_each_chunk<V>(g, [&](int row, int64_t col) {
    // A row is at most one image (fewer than 2^31 floats, so 32-bit division), and a chunk never straddles two
    // channels: V == 4 only when H*W % 4 == 0.
    const float bias = b[row % g.rows_per_image + unsigned(col) / unsigned(g.plane_size)];
    Chunk<V> v = rows::load<V>(x.row(row, g), col);
    MASSMAP_UNROLL
    for (int k = 0; k < V; ++k) v.v[k] += bias;
    rows::store<V>(y.row(row, g), col, v);
  });
}

template <int V>
__global__ void relu_forward_kernel(rows::Grid g, Operand<const float> x, Operand<float> y) {
  rows::for_each_chunk<V>(g, [&](int row, int64_t col) {
    Chunk<V> v = rows::load<V>(x.row(row, g), col);
    MASSMAP_UNROLL
    for (int k = 0; k < V; ++k) v.v[k] = v.v[k] < 0.f ? 0.f : v.v[k];  // a NaN passes through, as the reference
    rows::store<V>(y.row(row, g), col, v);
  });
}

template <int V>
__global__ void relu_backward_kernel(rows::Grid g, Operand<const float> y, Operand<const float> dy, Operand<float> dx,
                                     bool accumulate) {
  rows::for_each_chunk<V>(g, [&](int row, int64_t col) {
    const Chunk<V> out = rows::load<V>(y.row(row, g), col);
    Chunk<V> grad = rows::load<V>(dy.row(row, g), col);
    float* dx_row = dx.row(row, g);
    const Chunk<V> old = accumulate ? rows::load<V>(dx_row, col) : Chunk<V>{};
    MASSMAP_UNROLL
    for (int k = 0; k < V; ++k) {
      grad.v[k] = out.v[k] > 0.f ? grad.v[k] : 0.f;
      if (accumulate) grad.v[k] = old.v[k] + grad.v[k];
    }
    rows::store<V>(dx_row, col, grad);
  });
}

template <int V>
__global__ void add_forward_kernel(rows::Grid g, Operand<const float> a, Operand<const float> b, Operand<float> y) {
  rows::for_each_chunk<V>(g, [&](int row, int64_t col) {
    Chunk<V> sum = rows::load<V>(a.row(row, g), col);
    const Chunk<V> other = rows::load<V>(b.row(row, g), col);
    MASSMAP_UNROLL
    for (int k = 0; k < V; ++k) sum.v[k] += other.v[k];
    rows::store<V>(y.row(row, g), col, sum);
  });
}

template <int V>
__global__ void copy_kernel(rows::Grid g, Operand<const float> x, Operand<float> y, bool accumulate) {
  rows::for_each_chunk<V>(g, [&](int row, int64_t col) {
    Chunk<V> v = rows::load<V>(x.row(row, g), col);
    float* y_row = y.row(row, g);
    if (accumulate) {
      const Chunk<V> old = rows::load<V>(y_row, col);
      MASSMAP_UNROLL
      for (int k = 0; k < V; ++k) v.v[k] = old.v[k] + v.v[k];
    }
    rows::store<V>(y_row, col, v);
  });
}

// db[c] (+)= sum over (n, h, w) of dy: one block per channel (grid-stride over channels), each thread summing a
// fixed subset of the N*H*W entries in a fixed order, then a tree. dy: (N, C, H, W) placed by (batch_stride,
// plane); V floats per access.
constexpr int kBiasThreads = 256;

template <int V>
__global__ void bias_backward_kernel(int N, int C, int64_t plane_size, const float* dy, int64_t batch_stride,
                                     int64_t channel_stride, float* db, bool accumulate) {
  MASSMAP_SHARED(float, partial, [kBiasThreads]);
  const int64_t entries = int64_t(N) * plane_size;
  for (int c = int(blockIdx.x); c < C; c += int(gridDim.x)) {
    const float* dy_c = dy + int64_t(c) * channel_stride;
    // Entry j = n * H*W + i, walked as (n, i) with the step split once: no division in the loop. A chunk stays in
    // one plane: V == 4 only when H*W % 4 == 0.
    const int64_t step = int64_t(blockDim.x) * V, step_n = step / plane_size, step_i = step % plane_size;
    int64_t n = int64_t(threadIdx.x) * V / plane_size, i = int64_t(threadIdx.x) * V % plane_size;
    float sum = 0.f;
    for (int64_t j = int64_t(threadIdx.x) * V; j < entries; j += step) {
      const Chunk<V> v = rows::load<V>(dy_c + n * batch_stride, i);
      MASSMAP_UNROLL
      for (int k = 0; k < V; ++k) sum += v.v[k];
      n += step_n, i += step_i;
      if (i >= plane_size) n += 1, i -= plane_size;
    }
    const float total = block_sum(sum, partial);
    if (threadIdx.x == 0) db[c] = accumulate ? db[c] + total : total;
  }
}

// Launches vector_kernel (V = 4) when every operand's rows are 16-byte aligned, else scalar_kernel (V = 1).
template <typename... Params, typename... Args>
void launch_rows(const char* name, void (*vector_kernel)(Params...), void (*scalar_kernel)(Params...), bool aligned,
                 const rows::Grid& g, GpuStream stream, const Args&... args) {
  const rows::Launch shape = rows::launch_shape(g, aligned ? 4 : 1);
  launch(name, aligned ? vector_kernel : scalar_kernel, shape.grid, shape.block, 0, stream, g, args...);
}

}  // namespace

void bias_forward(const ActShape& s, const float* x, const float* b, float* y, GpuStream stream) {
  rows::check_activation("bias_forward", s.N, s.C, s.H, s.W);
  const rows::Grid g = rows::make_grid(s.N, s.C, s.H, s.W, {s.x, s.y}, false);
  const auto xo = rows::operand(x, s.x);
  const auto yo = rows::operand(y, s.y);
  const bool aligned = g.plane_size % 4 == 0 && rows::rows_aligned(g, xo, yo);
  launch_rows("bias_forward", bias_forward_kernel<4>, bias_forward_kernel<1>, aligned, g, stream, xo, b, yo);
}

void bias_backward(const ActShape& s, const float* dy, float* db, bool accumulate, GpuStream stream) {
  rows::check_activation("bias_backward", s.N, s.C, s.H, s.W);
  const float* dy_first = dy + s.y.channel_offset * s.y.channel_stride;
  const int64_t plane_size = int64_t(s.H) * s.W;
  const bool aligned = plane_size % 4 == 0 && s.y.batch_stride % 4 == 0 && s.y.channel_stride % 4 == 0 &&
                       reinterpret_cast<uintptr_t>(dy_first) % 16 == 0;
  const dim3 grid(unsigned(std::min<int64_t>(s.C, rows::kMaxBlocks)));
  void (*kernel)(int, int, int64_t, const float*, int64_t, int64_t, float*, bool) =
      aligned ? bias_backward_kernel<4> : bias_backward_kernel<1>;
  launch("bias_backward", kernel, grid, dim3(kBiasThreads), 0, stream, s.N, s.C, plane_size, dy_first, s.y.batch_stride,
         s.y.channel_stride, db, accumulate);
}

void relu_forward(const ActShape& s, const float* x, float* y, GpuStream stream) {
  rows::check_activation("relu_forward", s.N, s.C, s.H, s.W);
  const rows::Grid g = rows::make_grid(s.N, s.C, s.H, s.W, {s.x, s.y});
  const auto xo = rows::operand(x, s.x);
  const auto yo = rows::operand(y, s.y);
  launch_rows("relu_forward", relu_forward_kernel<4>, relu_forward_kernel<1>, rows::rows_aligned(g, xo, yo), g, stream,
              xo, yo);
}

void relu_backward(const ActShape& s, const float* y, const float* dy, float* dx, bool accumulate, GpuStream stream) {
  rows::check_activation("relu_backward", s.N, s.C, s.H, s.W);
  const rows::Grid g = rows::make_grid(s.N, s.C, s.H, s.W, {s.x, s.y});
  const auto yo = rows::operand(y, s.y);
  const auto dyo = rows::operand(dy, s.y);
  const auto dxo = rows::operand(dx, s.x);
  launch_rows("relu_backward", relu_backward_kernel<4>, relu_backward_kernel<1>, rows::rows_aligned(g, yo, dyo, dxo), g,
              stream, yo, dyo, dxo, accumulate);
}

void add_forward(const ActShape& s, const float* a, const Placement& b_place, const float* b, float* y,
                 GpuStream stream) {
  rows::check_activation("add_forward", s.N, s.C, s.H, s.W);
  const rows::Grid g = rows::make_grid(s.N, s.C, s.H, s.W, {s.x, b_place, s.y});
  const auto ao = rows::operand(a, s.x);
  const auto bo = rows::operand(b, b_place);
  const auto yo = rows::operand(y, s.y);
  launch_rows("add_forward", add_forward_kernel<4>, add_forward_kernel<1>, rows::rows_aligned(g, ao, bo, yo), g, stream,
              ao, bo, yo);
}

void copy(const ActShape& s, const float* x, float* y, bool accumulate, GpuStream stream) {
  rows::check_activation("copy", s.N, s.C, s.H, s.W);
  const rows::Grid g = rows::make_grid(s.N, s.C, s.H, s.W, {s.x, s.y});
  const auto xo = rows::operand(x, s.x);
  const auto yo = rows::operand(y, s.y);
  launch_rows("copy", copy_kernel<4>, copy_kernel<1>, rows::rows_aligned(g, xo, yo), g, stream, xo, yo, accumulate);
}

}  // namespace kernels::MASSMAP_GPU_NS
