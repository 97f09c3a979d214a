#pragma once
// What the three convolution passes share on the GPU: the geometry in the form kernels want it, the implicit-GEMM
// operand sources (im2col and its transposes, never materialised: each element is gathered from x, dy or w when a
// tile is loaded) and the store of an activation-shaped result. Include after kernels/cuda/portable.h.
//
// Shape letters as in kernels/cpu/conv_ref.cpp: N batch, C/K input/output channels, H/W input, P/Q output, R/S
// filter, G groups, Cg = C/G, Kg = K/G. Each pass is a GEMM per group g (blockIdx.z):
//   forward          y  (Kg, N*P*Q)   = w (Kg, Cg*R*S)        * im2col(x) (Cg*R*S, N*P*Q)
//   backward data    dx (Cg, N*H*W)   = w^T (Cg, Kg*R*S)      * gather(dy) (Kg*R*S, N*H*W)
//   backward filter  dw (Kg, Cg*R*S)  = dy (Kg, N*P*Q)        * im2col(x)^T (N*P*Q, Cg*R*S)
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/conv.h"
#include "kernels/cuda/gemm_core.cuh"

namespace kernels::MASSMAP_GPU_NS {
namespace conv {

// Division by a divisor fixed at launch as a multiply-high, an add and a shift (Granlund and Montgomery, "Division
// by invariant integers using multiplication", 1994) instead of the ~20-instruction integer division of a GPU. The
// implicit-GEMM gathers split every k index of every slice into (channel, r, s) or (n, p, q): with a true division
// that index arithmetic, not the FMAs, would set the pace. Valid for 0 <= n < 2^31.
struct FastDivisor {
  uint32_t divisor, multiplier, shift;

  static FastDivisor of(int d) {  // d >= 1
    uint32_t shift = 0;
    while ((uint64_t(1) << shift) < uint64_t(d)) ++shift;  // shift = ceil(log2(d))
    const uint64_t multiplier = (uint64_t(1) << 32) * ((uint64_t(1) << shift) - uint64_t(d)) / uint64_t(d) + 1;
    return {uint32_t(d), uint32_t(multiplier), shift};
  }
  __device__ int divide(int n) const {
    const uint32_t high = uint32_t((uint64_t(uint32_t(n)) * multiplier) >> 32);  // floor(n * multiplier / 2^32)
    return int((high + uint32_t(n)) >> shift);                                   // no overflow: n < 2^31
  }
};

// A ConvShape with the derived sizes precomputed, passed to kernels by value.
struct Geometry {
  int N, C, H, W, K, R, S, P, Q;
  int stride_h, stride_w, pad_h, pad_w, groups;
  int Cg, Kg, RS, HW, PQ;
  int64_t x_batch, x_channel, x_offset;  // placement of x and dx
  int64_t y_batch, y_channel, y_offset;  // placement of y and dy
  FastDivisor by_S, by_RS, by_Q, by_PQ, by_W, by_HW, by_stride_h, by_stride_w;
};

inline Geometry geometry(const ConvShape& s) {
  Geometry g;
  g.N = s.N, g.C = s.C, g.H = s.H, g.W = s.W, g.K = s.K, g.R = s.R, g.S = s.S, g.P = s.P, g.Q = s.Q;
  g.stride_h = s.stride_h, g.stride_w = s.stride_w, g.pad_h = s.pad_h, g.pad_w = s.pad_w, g.groups = s.groups;
  g.Cg = s.C / s.groups, g.Kg = s.K / s.groups, g.RS = s.R * s.S, g.HW = s.H * s.W, g.PQ = s.P * s.Q;
  g.x_batch = s.x.batch_stride, g.x_channel = s.x.channel_stride, g.x_offset = s.x.channel_offset;
  g.y_batch = s.y.batch_stride, g.y_channel = s.y.channel_stride, g.y_offset = s.y.channel_offset;
  g.by_S = FastDivisor::of(g.S), g.by_RS = FastDivisor::of(g.RS), g.by_Q = FastDivisor::of(g.Q);
  g.by_PQ = FastDivisor::of(g.PQ), g.by_W = FastDivisor::of(g.W), g.by_HW = FastDivisor::of(g.HW);
  g.by_stride_h = FastDivisor::of(g.stride_h), g.by_stride_w = FastDivisor::of(g.stride_w);
  return g;
}

// check_conv_shape, plus the limits of 32-bit index arithmetic and of the grid, with the kernel named.
inline Geometry checked_geometry(const ConvShape& s, const char* kernel) {
  try {
    check_conv_shape(s);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string(kernel) + ": " + e.what());
  }
  // Offsets inside one image (channel * channel stride + pixel) and inside w are 32-bit in the kernels: an address
  // is then a pointer plus an int, one instruction. Columns and reductions of the GEMMs are 32-bit too.
  const int64_t limit = int64_t(1) << 31;
  const int64_t x_image = (s.x.channel_offset + s.C) * s.x.channel_stride;
  const int64_t y_image = (s.y.channel_offset + s.K) * s.y.channel_stride;
  const int64_t columns = int64_t(s.N) * (s.H * s.W > s.P * s.Q ? s.H * s.W : s.P * s.Q);
  const int64_t weights = int64_t(s.K) * (s.C / s.groups) * s.R * s.S;
  const int64_t margin = 1 << 16;  // a tile's indices run up to 127 past the last column or reduction index
  if (x_image >= limit || y_image >= limit || columns >= limit - margin || weights >= limit - margin ||
      s.groups > 65535)
    throw std::invalid_argument(std::string(kernel) + ": conv shape too large for 32-bit offsets or the grid (N " +
                                std::to_string(s.N) + ", C " + std::to_string(s.C) + ", K " + std::to_string(s.K) +
                                ", H " + std::to_string(s.H) + ", W " + std::to_string(s.W) + ", groups " +
                                std::to_string(s.groups) + ")");
  return geometry(s);
}

inline unsigned blocks_for(int64_t count, int per_block) {
  return unsigned((count + per_block - 1) / per_block);
}

// ---- forward -------------------------------------------------------------------------------------------------
// Each gathered element costs a few integer adds, a bounds test and a load at pointer + int: the i part of the
// address (image pointer and window origin) and the k part (channel, r, s) were computed once.

// B of the forward GEMM: im2col(x) (Cg*R*S, N*P*Q) of group g. Column i = (n, p, q), row k = (c, r, s):
// B[k][i] = x[n, g*Cg + c, p*stride - pad + r, q*stride - pad + s], zero in the padding.
struct ForwardImageSource {
  const float* x;
  Geometry geo;
  int group;

  struct IState {
    const float* window;  // x at (n, first channel of the group, h0, w0); (h0, w0) may lie in the padding, so
                          // this may point before the image: it is only read at in-image offsets
    int h0, w0;           // the window's top-left corner
    bool valid;
  };
  struct KState {
    int offset;  // c * channel stride + r * W + s
    int r, s;
    bool valid;
  };
  __device__ IState at_i(int i) const {
    const int n = geo.by_PQ.divide(i), pq = i - n * geo.PQ, p = geo.by_Q.divide(pq), q = pq - p * geo.Q;
    const int h0 = p * geo.stride_h - geo.pad_h, w0 = q * geo.stride_w - geo.pad_w;
    const int64_t image = n * geo.x_batch + (geo.x_offset + int64_t(group) * geo.Cg) * geo.x_channel;
    return {x + (image + h0 * geo.W + w0), h0, w0, i < geo.N * geo.PQ};
  }
  __device__ KState at_k(int k) const {
    const int c = geo.by_RS.divide(k), rs = k - c * geo.RS, r = geo.by_S.divide(rs), s = rs - r * geo.S;
    return {c * int(geo.x_channel) + r * geo.W + s, r, s, k < geo.Cg * geo.RS};
  }
  __device__ float load(const IState& i, const KState& k) const {
    const int h = i.h0 + k.r, w = i.w0 + k.s;
    const bool inside = unsigned(h) < unsigned(geo.H) && unsigned(w) < unsigned(geo.W);  // negative -> huge
    return i.valid && k.valid && inside ? i.window[k.offset] : 0.f;                      // pointer + int: one IMAD.WIDE
  }
};

// A of the forward GEMM as a plain matrix: w (Kg, Cg*R*S) of group g, rows Cg*R*S apart.
__device__ inline gemm::MatrixSource forward_weight_source(const float* w, const Geometry& geo, int group) {
  const int k_count = geo.Cg * geo.RS;
  return {w + int64_t(group) * geo.Kg * k_count, k_count, 1, geo.Kg, k_count};
}

// ---- backward data -------------------------------------------------------------------------------------------

// A of backward data: w^T (Cg, Kg*R*S) of group g. Row i = c, column k = (kk, r, s):
// A[i][k] = w[g*Kg + kk, c, r, s]. Along k, the r, s of one filter are contiguous.
struct BackwardDataWeightSource {
  const float* w;
  Geometry geo;
  int group;

  struct IState {
    int offset;  // c * R*S
    bool valid;
  };
  struct KState {
    const float* filter;  // w at (g*Kg + kk, 0, r, s)
    bool valid;
  };
  __device__ IState at_i(int i) const { return {i * geo.RS, i < geo.Cg}; }
  __device__ KState at_k(int k) const {
    const int kk = geo.by_RS.divide(k), rs = k - kk * geo.RS;
    return {w + (int64_t(group) * geo.Kg + kk) * geo.Cg * geo.RS + rs, k < geo.Kg * geo.RS};
  }
  __device__ float load(const IState& i, const KState& k) const {
    return i.valid && k.valid ? k.filter[i.offset] : 0.f;
  }
};

// B of backward data: the dy entries each dx position gathers, (Kg*R*S, N*H*W). Column i = (n, h, w), row k =
// (kk, r, s): B[k][i] = dy[n, g*Kg + kk, p, q] where h = p*stride - pad + r and w = q*stride - pad + s for an
// integer output position (p, q) inside the output; zero where there is none (the stride skips it, or it falls
// off the edge). UNIT_STRIDE drops the divisibility tests.
template <bool UNIT_STRIDE>
struct BackwardDataGradSource {
  const float* dy;
  Geometry geo;
  int group;

  struct IState {
    const float* image;  // dy at (n, first channel of the group, 0, 0)
    int hp, wp;          // h + pad, w + pad: p*stride + r
    bool valid;
  };
  struct KState {
    int offset;  // kk * channel stride of dy
    int r, s;
    bool valid;
  };
  __device__ IState at_i(int i) const {
    const int n = geo.by_HW.divide(i), hw = i - n * geo.HW, h = geo.by_W.divide(hw), w = hw - h * geo.W;
    return {dy + n * geo.y_batch + (geo.y_offset + int64_t(group) * geo.Kg) * geo.y_channel, h + geo.pad_h,
            w + geo.pad_w, i < geo.N * geo.HW};
  }
  __device__ KState at_k(int k) const {
    const int kk = geo.by_RS.divide(k), rs = k - kk * geo.RS, r = geo.by_S.divide(rs);
    return {kk * int(geo.y_channel), r, rs - r * geo.S, k < geo.Kg * geo.RS};
  }
  __device__ float load(const IState& i, const KState& k) const {
    int p = i.hp - k.r, q = i.wp - k.s;  // p*stride and q*stride
    if (!UNIT_STRIDE) {
      if (p < 0 || q < 0) return 0.f;  // (negative values would divide toward zero into row 0)
      const int ps = geo.by_stride_h.divide(p), qs = geo.by_stride_w.divide(q);
      if (ps * geo.stride_h != p || qs * geo.stride_w != q) return 0.f;  // between two outputs of the stride
      p = ps, q = qs;
    }
    const bool inside = unsigned(p) < unsigned(geo.P) && unsigned(q) < unsigned(geo.Q);
    return i.valid && k.valid && inside ? i.image[k.offset + p * geo.Q + q] : 0.f;
  }
};

// ---- backward filter -----------------------------------------------------------------------------------------

// A of backward filter: dy (Kg, N*P*Q) of group g. Row i = kk, column k = (n, p, q): A[i][k] = dy[n, g*Kg+kk, p, q].
struct BackwardFilterGradSource {
  const float* dy;
  Geometry geo;
  int group;

  struct IState {
    int offset;  // (channel offset + g*Kg + kk) * channel stride of dy
    bool valid;
  };
  struct KState {
    const float* pixel;  // dy at (n, 0, p, q)
    bool valid;
  };
  __device__ IState at_i(int i) const {
    return {int((geo.y_offset + int64_t(group) * geo.Kg + i) * geo.y_channel), i < geo.Kg};
  }
  __device__ KState at_k(int k) const {
    const int n = geo.by_PQ.divide(k);
    return {dy + n * geo.y_batch + (k - n * geo.PQ), k < geo.N * geo.PQ};
  }
  __device__ float load(const IState& i, const KState& k) const { return i.valid && k.valid ? k.pixel[i.offset] : 0.f; }
};

// B of backward filter: im2col(x)^T (N*P*Q, Cg*R*S). Column i = (c, r, s), row k = (n, p, q):
// B[k][i] = x[n, g*Cg + c, p*stride - pad + r, q*stride - pad + s].
struct BackwardFilterImageSource {
  const float* x;
  Geometry geo;
  int group;

  struct IState {
    int offset;  // (channel offset + g*Cg + c) * channel stride of x + r * W + s
    int r, s;
    bool valid;
  };
  struct KState {
    const float* window;  // x at (n, 0, h0, w0), the top-left corner of output (p, q)'s window (may lie in the
                          // padding, before the image: only read at in-image offsets)
    int h0, w0;
    bool valid;
  };
  __device__ IState at_i(int i) const {
    const int c = geo.by_RS.divide(i), rs = i - c * geo.RS, r = geo.by_S.divide(rs), s = rs - r * geo.S;
    return {int((geo.x_offset + int64_t(group) * geo.Cg + c) * geo.x_channel) + r * geo.W + s, r, s,
            i < geo.Cg * geo.RS};
  }
  __device__ KState at_k(int k) const {
    const int n = geo.by_PQ.divide(k), pq = k - n * geo.PQ, p = geo.by_Q.divide(pq), q = pq - p * geo.Q;
    const int h0 = p * geo.stride_h - geo.pad_h, w0 = q * geo.stride_w - geo.pad_w;
    return {x + (n * geo.x_batch + h0 * geo.W + w0), h0, w0, k < geo.N * geo.PQ};
  }
  __device__ float load(const IState& i, const KState& k) const {
    const int h = k.h0 + i.r, w = k.w0 + i.s;
    const bool inside = unsigned(h) < unsigned(geo.H) && unsigned(w) < unsigned(geo.W);
    return i.valid && k.valid && inside ? k.window[i.offset] : 0.f;
  }
};

// ---- the store of an activation-shaped result ----------------------------------------------------------------

// C (channels of group g, N * plane) into a placed (N, channels, plane) tensor: y of forward (plane P*Q) or dx of
// backward data (plane H*W). Row m = channel, column i = (n, pixel). y = relu(b + sum) or dx (+)= sum.
struct PlanesStore {
  float* out;
  int64_t batch, channel, first_channel;  // placement; first_channel = channel offset + g * channels per group
  int channels, count;                    // rows, columns (N * plane)
  FastDivisor plane;                      // pixels per plane
  const float* bias;                      // (channels of the group) or null
  bool accumulate, relu;

  struct Row {
    int64_t offset;
    float bias;
    bool valid;
  };
  struct Col {
    int64_t offset;
    bool valid;
  };
  __device__ Row row(int m) const {
    const bool valid = m < channels;
    return {(first_channel + m) * channel, valid && bias ? bias[m] : 0.f, valid};
  }
  __device__ Col col(int i) const {
    const int n = plane.divide(i);
    return {n * batch + (i - n * int(plane.divisor)), i < count};
  }
  __device__ void write(const Row& r, const Col& c, float sum) const {
    if (!r.valid || !c.valid) return;
    float* at = out + r.offset + c.offset;
    float v = sum + r.bias;
    if (accumulate) v = *at + v;
    if (relu) v = v < 0.f ? 0.f : v;
    *at = v;
  }
};

}  // namespace conv
}  // namespace kernels::MASSMAP_GPU_NS
