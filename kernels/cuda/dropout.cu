// Inverted dropout: out (+)= in * keep / (1 - p), keep = uniform_at(seed, step, i) >= p at logical index
// i = ((n*C + c)*H + h)*W + w. Memory-bound: rows of activation_rows.h, 4 floats per thread where aligned; then
// i is a multiple of 4 and one Philox call yields the chunk's four uniforms.
// Shapes: x, y, dx, dy (N, C, H, W).
#include "kernels/cuda/portable.h"
// (first: MASSMAP_GPU_NS and the CUDA vocabulary of this build)
#include <cstdint>
#include <stdexcept>
#include <string>

#include "base/philox.h"
#include "kernels/cuda/activation_rows.h"

namespace kernels::MASSMAP_GPU_NS {
namespace {

using rows::Chunk;
using rows::Operand;

// uniform_at(seed, stream, first + k) for k < V. With V == 4, first % 4 == 0: the four words of one Philox block.
template <int V>
__device__ inline Chunk<V> uniforms_at(uint64_t seed, uint64_t stream, uint64_t first) {
  Chunk<V> u;
  if constexpr (V == 4) {
    const uint64_t block = first >> 2;
    const uint32_t counter[4] = {uint32_t(block), uint32_t(block >> 32), uint32_t(stream), uint32_t(stream >> 32)};
    const uint32_t key[2] = {uint32_t(seed), uint32_t(seed >> 32)};
    const massmap::Philox4x32Result bits = massmap::philox4x32(counter, key);
    MASSMAP_UNROLL
    for (int k = 0; k < 4; ++k) u.v[k] = float(bits.v[k] >> 8) * (1.0f / 16777216.0f);  // as uniform_at
  } else {
    MASSMAP_UNROLL
    for (int k = 0; k < V; ++k) u.v[k] = massmap::uniform_at(seed, stream, first + k);
  }
  return u;
}

// out (+)= in * keep / (1 - p). keep_scale = 1 / (1 - p) comes from the host, the same float as the reference's.
template <int V>
__global__ void dropout_kernel(rows::Grid g, Operand<const float> in, Operand<float> out, float p, float keep_scale,
                               uint64_t seed, uint64_t step, bool accumulate) {
  rows::for_each_chunk<V>(g, [&](int row, int64_t col) {
    Chunk<V> v = rows::load<V>(in.row(row, g), col);
    if (p > 0.f) {  // p == 0 copies, as the reference (which draws nothing then)
      const Chunk<V> u = uniforms_at<V>(seed, step, uint64_t(row) * uint64_t(g.cols) + uint64_t(col));
      MASSMAP_UNROLL
      for (int k = 0; k < V; ++k) v.v[k] = u.v[k] >= p ? v.v[k] * keep_scale : 0.f;
    }
    float* out_row = out.row(row, g);
    if (accumulate) {
      const Chunk<V> old = rows::load<V>(out_row, col);
      MASSMAP_UNROLL
      for (int k = 0; k < V; ++k) v.v[k] = old.v[k] + v.v[k];
    }
    rows::store<V>(out_row, col, v);
  });
}

void masked_scale(const char* kernel, const DropoutShape& s, const Placement& in_place, const float* in,
                  const Placement& out_place, float* out, bool accumulate, GpuStream stream) {
  rows::check_activation(kernel, s.N, s.C, s.H, s.W);
  if (!(s.p >= 0.f && s.p < 1.f))  // also rejects NaN
    throw std::invalid_argument(std::string(kernel) + ": drop probability must be in [0, 1), got " +
                                std::to_string(s.p));
  const float keep_scale = 1.f / (1.f - s.p);
  const rows::Grid g = rows::make_grid(s.N, s.C, s.H, s.W, {in_place, out_place});
  const auto in_rows = rows::operand(in, in_place);
  const auto out_rows = rows::operand(out, out_place);
  const bool aligned = rows::rows_aligned(g, in_rows, out_rows);
  const rows::Launch shape = rows::launch_shape(g, aligned ? 4 : 1);
  launch(kernel, aligned ? dropout_kernel<4> : dropout_kernel<1>, shape.grid, shape.block, 0, stream, g, in_rows,
         out_rows, s.p, keep_scale, s.seed, s.step, accumulate);
}

}  // namespace

void dropout_forward(const DropoutShape& s, const float* x, float* y, GpuStream stream) {
  masked_scale("dropout_forward", s, s.x, x, s.y, y, false, stream);
}

void dropout_backward(const DropoutShape& s, const float* dy, float* dx, bool accumulate, GpuStream stream) {
  masked_scale("dropout_backward", s, s.y, dy, s.x, dx, accumulate, stream);
}

}  // namespace kernels::MASSMAP_GPU_NS
