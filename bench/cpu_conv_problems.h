#pragma once
// The layers benchmarked by cpu_conv_bench and, for one layer pass at one batch size, its inputs, its napkin math
// and how each implementation runs it: our fast CPU kernel, the reference loops, the GEMMs of an im2col path, and
// oneDNN.
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_support.h"
#include "bench/cpu_dnnl_baseline.h"
#include "bench/cpu_gemm_ceiling.h"
#include "kernels/conv.h"
#include "kernels/cpu/conv_bf16.h"
#include "kernels/linear.h"

namespace bench {

// Whether a convolution's problem runs in bfloat16 (cpu_conv_bench --precision=bfloat16, for the shapes our kernels
// take in bfloat16: kernels::cpu::conv_bf16_applies): its inputs are then bfloat16 values already (rounded when made),
// so that ours, oneDNN's bfloat16 convolution and the float32 reference all multiply the same numbers and differ only
// in the order of their float32 sums, and the correctness checks keep their float32 tolerances.
inline bool conv_in_bfloat16(const kernels::ConvShape& s) {
  return kernels::cpu::conv_bf16_applies(s);
}

// A convolution (is_conv) or a fully connected layer (I inputs, O outputs).
struct Layer {
  const char* name;
  bool is_conv;
  int C, H, W, K, R, S, stride, pad, groups;
  int I, O;
  int default_batch;
  bool in_suite = true;  // false: reported row by row and in a total of its own, outside the suite's totals
};

inline Layer conv_layer(const char* name, int C, int H, int W, int K, int RS, int stride, int pad, int groups,
                        int batch) {
  return {name, true, C, H, W, K, RS, RS, stride, pad, groups, 0, 0, batch};
}
// A layer of the demo's net (mapnet_bn_fine on one grey channel): rows of their own, outside the suite's totals.
inline Layer demo_layer(const char* name, int C, int H, int W, int K, int RS, int stride, int batch) {
  Layer layer = conv_layer(name, C, H, W, K, RS, stride, 0, 1, batch);
  layer.in_suite = false;
  return layer;
}
inline Layer linear_layer(const char* name, int I, int O, int batch) {
  return {name, false, 0, 0, 0, 0, 0, 0, 0, 0, 0, I, O, batch};
}

inline const char* pass_name(const Layer& layer, Pass pass) {
  return !layer.is_conv && pass == Pass::backward_filter ? "backward_weight" : pass_name(pass);
}

// One pass of one layer at batch N, with deterministic inputs (seeded per tensor, so batch 1's are a prefix of
// batch N's). in0, in1, bias: forward x, w, b; backward-data dy, w; backward-filter x, dy.
struct Problem {
  Layer layer;
  Pass pass;
  int N;
  kernels::ConvShape conv;
  kernels::LinearShape linear;
  std::vector<float> in0, in1, bias;
  size_t out_elems = 0;

  double multiply_adds() const {
    if (!layer.is_conv) return double(N) * linear.I * linear.O;
    return double(N) * conv.K * conv.P * conv.Q * (conv.C / conv.groups) * conv.R * conv.S;
  }
  double flops() const { return 2 * multiply_adds(); }
  // The least a pass must move: read its inputs and weights once, write its output once (float32).
  double min_bytes() const { return 4.0 * double(in0.size() + in1.size() + bias.size() + out_elems); }
  // Forward and backward-data outputs hold one slice per image, image 0's first; backward-filter sums the batch.
  bool output_per_image() const { return pass != Pass::backward_filter; }
};

inline Problem make_problem(const Layer& layer, Pass pass, int N) {
  Problem p{layer, pass, N, {}, {}, {}, {}, {}, 0};
  size_t x_size, w_size, b_size, y_size;
  if (layer.is_conv) {
    p.conv = kernels::conv_shape(N, layer.C, layer.H, layer.W, layer.K, layer.R, layer.S, layer.stride, layer.pad,
                                 layer.groups);
    const auto& s = p.conv;
    x_size = size_t(N) * s.C * s.H * s.W;
    w_size = size_t(s.K) * (s.C / s.groups) * s.R * s.S;
    b_size = size_t(s.K);
    y_size = size_t(N) * s.K * s.P * s.Q;
  } else {
    p.linear = kernels::linear_shape(N, layer.I, layer.O);
    x_size = size_t(N) * layer.I;
    w_size = size_t(layer.O) * layer.I;
    b_size = size_t(layer.O);
    y_size = size_t(N) * layer.O;
  }
  enum Seed : uint64_t { kX = 1, kW, kB, kDy };
  if (pass == Pass::forward) {
    p.in0 = random_vector(x_size, kX), p.in1 = random_vector(w_size, kW), p.bias = random_vector(b_size, kB);
    p.out_elems = y_size;
  } else if (pass == Pass::backward_data) {
    p.in0 = random_vector(y_size, kDy), p.in1 = random_vector(w_size, kW);
    p.out_elems = x_size;
  } else {
    p.in0 = random_vector(x_size, kX), p.in1 = random_vector(y_size, kDy);
    p.out_elems = w_size;
  }
  if (layer.is_conv && conv_in_bfloat16(p.conv))
    for (std::vector<float>* v : {&p.in0, &p.in1})
      for (float& value : *v) value = kernels::cpu::round_to_bf16(value);
  return p;
}

// The six entry points of one CPU implementation, so that one function runs a problem on ours or the reference.
struct CpuKernels {
  void (*conv_forward)(const kernels::ConvShape&, const float*, const float*, const float*, float*);
  void (*conv_backward_data)(const kernels::ConvShape&, const float*, const float*, float*, bool);
  void (*conv_backward_filter)(const kernels::ConvShape&, const float*, const float*, float*, bool);
  void (*linear_forward)(const kernels::LinearShape&, const float*, const float*, const float*, float*);
  void (*linear_backward_data)(const kernels::LinearShape&, const float*, const float*, float*, bool);
  void (*linear_backward_weight)(const kernels::LinearShape&, const float*, const float*, float*, bool);
};
inline const CpuKernels kOurKernels{kernels::cpu::conv_forward,         kernels::cpu::conv_backward_data,
                                    kernels::cpu::conv_backward_filter, kernels::cpu::linear_forward,
                                    kernels::cpu::linear_backward_data, kernels::cpu::linear_backward_weight};
// The reference loops, the ground truth.
inline const CpuKernels kReferenceKernels{kernels::ref::conv_forward,         kernels::ref::conv_backward_data,
                                          kernels::ref::conv_backward_filter, kernels::ref::linear_forward,
                                          kernels::ref::linear_backward_data, kernels::ref::linear_backward_weight};

// One pass of the problem on `k`, overwriting out (accumulate off).
inline void run_pass(const CpuKernels& k, const Problem& p, float* out) {
  const float *a = p.in0.data(), *b = p.in1.data();
  if (p.layer.is_conv) {
    if (p.pass == Pass::forward) k.conv_forward(p.conv, a, b, p.bias.data(), out);
    if (p.pass == Pass::backward_data) k.conv_backward_data(p.conv, a, b, out, false);
    if (p.pass == Pass::backward_filter) k.conv_backward_filter(p.conv, a, b, out, false);
  } else {
    if (p.pass == Pass::forward) k.linear_forward(p.linear, a, b, p.bias.data(), out);
    if (p.pass == Pass::backward_data) k.linear_backward_data(p.linear, a, b, out, false);
    if (p.pass == Pass::backward_filter) k.linear_backward_weight(p.linear, a, b, out, false);
  }
}

// The GEMMs an im2col path calls for this pass, per image and group (Kg = K/G, CgRS = C/G*R*S, PQ positions):
//   forward          Y_g (Kg, PQ)     = W_g (Kg, CgRS) * col (CgRS, PQ)
//   backward data    col (CgRS, PQ)   = W_g^T * dY_g (Kg, PQ)
//   backward filter  dW_g (Kg, CgRS) += dY_g (Kg, PQ) * col^T, over the images
// and for a linear layer Y = X W^T, dX = dY W, dW = dY^T X.
inline GemmBatch im2col_gemms(const Problem& p) {
  GemmBatch g;
  if (p.layer.is_conv) {
    const auto& s = p.conv;
    const int64_t kg = s.K / s.groups, crs = int64_t(s.C / s.groups) * s.R * s.S, pq = int64_t(s.P) * s.Q;
    g.images = s.N, g.groups = s.groups;
    if (p.pass == Pass::forward) g.m = kg, g.n = pq, g.k = crs;
    if (p.pass == Pass::backward_data) g.m = crs, g.n = pq, g.k = kg, g.a_transposed = true;
    if (p.pass == Pass::backward_filter) {
      g.m = kg, g.n = crs, g.k = pq, g.b_transposed = true, g.c_summed_over_images = true;
    }
  } else {
    const auto& s = p.linear;
    if (p.pass == Pass::forward) g.m = s.N, g.n = s.O, g.k = s.I, g.b_transposed = true;
    if (p.pass == Pass::backward_data) g.m = s.N, g.n = s.I, g.k = s.O;
    if (p.pass == Pass::backward_filter) g.m = s.O, g.n = s.I, g.k = s.N, g.a_transposed = true;
  }
  return g;
}

#ifdef MASSMAP_HAVE_DNNL
inline std::unique_ptr<DnnlPrimitive> make_dnnl(const Problem& p) {
  if (p.layer.is_conv)
    return dnnl_convolution(p.conv, p.pass, p.in0.data(), p.in1.data(), p.bias.data(), conv_in_bfloat16(p.conv));
  return dnnl_inner_product(p.linear, p.pass, p.in0.data(), p.in1.data(), p.bias.data());
}
#endif

}  // namespace bench
