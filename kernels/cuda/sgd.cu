// The fused SGD update with momentum and L2 decay, in Caffe's order. Memory-bound (reads w, g, h; writes w, h):
// 4 floats per thread with 16-byte accesses when the three arrays are aligned, the last count % 4 entries scalar.
// Shapes: w, g, history (count).
#include "kernels/cuda/portable.h"
// (first: MASSMAP_GPU_NS and the CUDA vocabulary of this build)
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/activation_rows.h"

namespace kernels::MASSMAP_GPU_NS {
namespace {

using rows::Chunk;

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;

__device__ inline void update(const SgdStep& s, float& w, float g, float& h) {
  const float regularised = g + s.decay * w;
  h = s.momentum * h + s.lr * regularised;
  w -= h;
}

// V floats per thread per step of a grid-stride loop over the first count / V * V entries; then the remaining
// count % V entries, one per thread of the grid's start.
template <int V>
__global__ void sgd_kernel(SgdStep s, float* w, const float* g, float* history) {
  const int64_t thread = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, threads = int64_t(gridDim.x) * blockDim.x;
  const int64_t whole = s.count / V * V;
  for (int64_t i = thread * V; i < whole; i += threads * V) {
    Chunk<V> wv = rows::load<V>(w, i), hv = rows::load<V>(history, i);
    const Chunk<V> gv = rows::load<V>(g, i);
    MASSMAP_UNROLL
    for (int k = 0; k < V; ++k) update(s, wv.v[k], gv.v[k], hv.v[k]);
    rows::store<V>(w, i, wv);
    rows::store<V>(history, i, hv);
  }
  const int64_t tail = whole + thread;
  if (tail < s.count) update(s, w[tail], g[tail], history[tail]);
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

}  // namespace

void sgd_update(const SgdStep& s, float* w, const float* g, float* history, GpuStream stream) {
  if (s.count < 0) throw std::invalid_argument("sgd_update: negative count " + std::to_string(s.count));
  if (s.count == 0) return;  // no launch: an empty grid is an error on simt
  const bool vector = aligned16(w) && aligned16(g) && aligned16(history);
  const int width = vector ? 4 : 1;
  const int64_t chunks = (s.count + width - 1) / width;
  const dim3 grid(unsigned(std::min((chunks + kThreads - 1) / kThreads, kMaxBlocks)));
  if (vector) {
    launch("sgd_update", sgd_kernel<4>, grid, dim3(kThreads), 0, stream, s, w, g, history);
  } else {
    launch("sgd_update", sgd_kernel<1>, grid, dim3(kThreads), 0, stream, s, w, g, history);
  }
}

}  // namespace kernels::MASSMAP_GPU_NS
