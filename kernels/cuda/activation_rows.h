#pragma once
// Shared by the memory-bound kernels (elementwise.cu, dropout.cu, sgd.cu): an (N, C, H, W) activation seen as rows
// of contiguous floats, so consecutive threads touch consecutive addresses (coalesced, 16-byte where aligned).
//   every operand dense (batch_stride == C*H*W, channel_stride == H*W): the whole tensor is one row;
//   channels packed (channel_stride == H*W): one row per image, C*H*W long, so a 7x7 map still gives long rows (a
//     concat slice is packed: only its batch stride is wider);
//   otherwise: one row per (image, channel) plane, H*W long.
// Element `col` of row `r` has the logical index r * cols + col = ((n*C + c)*H + h)*W + w in every case; without
// the whole-tensor row its channel is r % rows_per_image + col / plane_size.
// Include after kernels/cuda/portable.h.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>

#include "kernels/placement.h"

namespace kernels::MASSMAP_GPU_NS {
namespace rows {

constexpr int kThreads = 256;         // threads per block of a row kernel
constexpr int64_t kMaxBlocks = 4096;  // enough to fill any current GPU twice over; the rest is grid-stride
constexpr int64_t kMaxGridY = 65535;

struct Grid {
  int rows = 0;            // 1 (whole tensor), N (packed) or N*C
  int rows_per_image = 1;  // 1 (whole tensor or packed) or C
  int64_t cols = 0;        // N*C*H*W (whole tensor), C*H*W (packed) or H*W
  int64_t plane_size = 0;  // H*W
};

// Where one operand's rows start. T is float or const float.
template <typename T>
struct Operand {
  T* data;  // already advanced to the operand's first channel
  int64_t image_stride, channel_stride;

  __device__ T* row(int r, const Grid& g) const {
    return data + int64_t(r / g.rows_per_image) * image_stride + int64_t(r % g.rows_per_image) * channel_stride;
  }
};

template <typename T>
Operand<T> operand(T* data, const Placement& p) {
  return {data + p.channel_offset * p.channel_stride, p.batch_stride, p.channel_stride};
}

// Rows for an (N, C, H, W) activation whose operands are placed as `places`. whole_tensor = false keeps one row
// per image at most (the bias kernel finds channels with 32-bit arithmetic within an image).
inline Grid make_grid(int N, int C, int H, int W, std::initializer_list<Placement> places, bool whole_tensor = true) {
  Grid g;
  g.plane_size = int64_t(H) * W;
  const int64_t image_size = C * g.plane_size;
  auto all = [&](auto predicate) { return std::all_of(places.begin(), places.end(), predicate); };
  const bool packed = all([&](const Placement& p) { return p.channel_stride == g.plane_size; });
  const bool dense = packed && all([&](const Placement& p) { return p.batch_stride == image_size; });
  if (dense && whole_tensor) {
    g.rows = 1, g.rows_per_image = 1, g.cols = N * image_size;
  } else if (packed) {
    g.rows = N, g.rows_per_image = 1, g.cols = image_size;
  } else {
    g.rows = N * C, g.rows_per_image = C, g.cols = g.plane_size;
  }
  return g;
}

// Whether every row of every operand starts on a 16-byte boundary and rows hold whole float4s.
template <typename T>
bool row_starts_aligned(const Grid& g, const Operand<T>& o) {
  const bool strides_ok = o.image_stride % 4 == 0 && (g.rows_per_image == 1 || o.channel_stride % 4 == 0);
  return strides_ok && reinterpret_cast<uintptr_t>(o.data) % 16 == 0;
}

template <typename... T>
bool rows_aligned(const Grid& g, const Operand<T>&... operands) {
  return g.cols % 4 == 0 && (row_starts_aligned(g, operands) && ...);
}

// The launch of a row kernel with `vector_width` floats per thread: blocks along a row (x) and over rows (y);
// short rows get narrow blocks rather than idle threads.
struct Launch {
  dim3 grid, block;
};

inline Launch launch_shape(const Grid& g, int vector_width) {
  const int64_t chunks = (g.cols + vector_width - 1) / vector_width;
  const int64_t threads = std::min<int64_t>(kThreads, (chunks + 31) / 32 * 32);
  const int64_t grid_y = std::min<int64_t>(g.rows, kMaxGridY);
  const int64_t grid_x = std::min((chunks + threads - 1) / threads, std::max<int64_t>(1, kMaxBlocks / grid_y));
  return {dim3(unsigned(grid_x), unsigned(grid_y)), dim3(unsigned(threads))};
}

// Throws std::invalid_argument naming the kernel unless N, C, H, W are positive and an image and the count of planes
// fit 31 bits (rows and in-image offsets are ints).
inline void check_activation(const char* kernel, int N, int C, int H, int W) {
  if (N <= 0 || C <= 0 || H <= 0 || W <= 0 || int64_t(C) * H * W > INT32_MAX || int64_t(N) * C > INT32_MAX) {
    std::ostringstream msg;
    msg << kernel << ": bad activation shape (N " << N << ", C " << C << ", H " << H << ", W " << W << ")";
    throw std::invalid_argument(msg.str());
  }
}

// V consecutive floats row[col .. col + V), moved with one 16-byte access when V == 4 (then col % 4 == 0 and the
// caller checked that the row is 16-byte aligned). The address is formed in float4 units: from `row + col` nvcc
// cannot always see the alignment and splits the store into four.
template <int V>
struct Chunk {
  float v[V];
};

template <int V>
__device__ inline Chunk<V> load(const float* row, int64_t col) {
  Chunk<V> c;
  if constexpr (V == 4) {
    const float4 t = reinterpret_cast<const float4*>(row)[col >> 2];
    c.v[0] = t.x, c.v[1] = t.y, c.v[2] = t.z, c.v[3] = t.w;
  } else {
    MASSMAP_UNROLL
    for (int k = 0; k < V; ++k) c.v[k] = row[col + k];
  }
  return c;
}

template <int V>
__device__ inline void store(float* row, int64_t col, const Chunk<V>& c) {
  if constexpr (V == 4) {
    reinterpret_cast<float4*>(row)[col >> 2] = make_float4(c.v[0], c.v[1], c.v[2], c.v[3]);
  } else {
    MASSMAP_UNROLL
    for (int k = 0; k < V; ++k) row[col + k] = c.v[k];
  }
}

// The loop of every row kernel: body(row, col) for each chunk of V floats this thread owns, col its first column.
// Grid-stride in both directions, so any launch_grid covers the whole activation.
template <int V, typename Body>
__device__ inline void for_each_chunk(const Grid& g, Body body) {
  const int64_t first_col = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * V;
  const int64_t col_step = int64_t(gridDim.x) * blockDim.x * V;
  for (int row = int(blockIdx.y); row < g.rows; row += int(gridDim.y))
    for (int64_t col = first_col; col < g.cols; col += col_step) body(row, col);
}

}  // namespace rows
}  // namespace kernels::MASSMAP_GPU_NS
