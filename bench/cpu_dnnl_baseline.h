#pragma once
// oneDNN as the CPU baseline: convolution (algorithm convolution_direct) and inner product, f32, one primitive per
// pass. Inputs and outputs are given in our layouts (nchw, oihw / goihw, nc, oi); oneDNN picks its own layouts
// (format_tag::any) and the reorders between the two run outside run(), which times the primitive alone. The
// reorders can be timed separately with run_with_reorders().
#ifdef MASSMAP_HAVE_DNNL
#include <oneapi/dnnl/dnnl_debug.h>

#include <algorithm>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench/bench_support.h"
#include "kernels/conv.h"
#include "kernels/linear.h"

namespace bench {

class DnnlPrimitive {
 public:
  using dims = dnnl::memory::dims;
  using tag = dnnl::memory::format_tag;

  // An input in our layout `user`, copied in and reordered to what the primitive wants.
  void add_input(int arg, const dnnl::memory::desc& want, const dims& shape, tag user, const float* data) {
    dnnl::memory user_mem({shape, dnnl::memory::data_type::f32, user}, engine());
    std::copy(data, data + user_mem.get_desc().get_size() / sizeof(float),
              static_cast<float*>(user_mem.get_data_handle()));
    dnnl::memory mem = user_mem;
    if (want != user_mem.get_desc()) {
      mem = dnnl::memory(want, engine());
      input_reorders_.push_back({dnnl::reorder(user_mem, mem), user_mem, mem});
      input_reorders_.back().run();
    }
    args_[arg] = mem;
    describe(arg, want, user_mem.get_desc());
  }

  void set_output(int arg, const dnnl::memory::desc& got, const dims& shape, tag user) {
    dnnl::memory user_mem({shape, dnnl::memory::data_type::f32, user}, engine());
    dnnl::memory mem = got == user_mem.get_desc() ? user_mem : dnnl::memory(got, engine());
    output_reorder_ = {dnnl::reorder(mem, user_mem), mem, user_mem};
    args_[arg] = mem;
    describe(arg, got, user_mem.get_desc());
  }

  void run() {
    primitive_.execute(stream(), args_);
    stream().wait();
  }
  // The primitive plus the reorders a caller holding our layouts would pay.
  void run_with_reorders() {
    for (auto& r : input_reorders_) r.run();
    run();
    output_reorder_.run();
  }
  // The result of the last run(), in our layout.
  std::vector<float> output() {
    output_reorder_.run();
    const auto* p = static_cast<const float*>(output_reorder_.to.get_data_handle());
    return std::vector<float>(p, p + output_reorder_.to.get_desc().get_size() / sizeof(float));
  }
  // "jit:avx512_core src:aBcd16b* ..." where * marks a tensor reordered from or to our layout.
  const std::string& description() const { return description_; }
  bool has_reorders() const { return reorders_ > 0; }

  static dnnl::engine& engine() {
    static dnnl::engine e(dnnl::engine::kind::cpu, 0);
    return e;
  }
  static dnnl::stream& stream() {
    static dnnl::stream s(engine());
    return s;
  }

  void set_primitive(const dnnl::primitive& p, const char* impl) {
    primitive_ = p;
    description_ = std::string(impl) + description_;
  }

 private:
  struct Reorder {
    dnnl::reorder op;
    dnnl::memory from, to;
    void run() {
      if (from.get_data_handle() == to.get_data_handle()) return;
      op.execute(stream(), from, to);
      stream().wait();
    }
  };

  void describe(int arg, const dnnl::memory::desc& internal, const dnnl::memory::desc& user) {
    const bool reordered = internal != user;
    reorders_ += reordered;
    description_ += std::string(" ") + arg_name(arg) + ":" + layout_name(internal) + (reordered ? "*" : "");
  }

  static const char* arg_name(int arg) {
    switch (arg) {
      case DNNL_ARG_SRC:
        return "src";
      case DNNL_ARG_WEIGHTS:
        return "wei";
      case DNNL_ARG_BIAS:
        return "bias";
      case DNNL_ARG_DST:
        return "dst";
      case DNNL_ARG_DIFF_SRC:
        return "dsrc";
      case DNNL_ARG_DIFF_WEIGHTS:
        return "dwei";
      case DNNL_ARG_DIFF_DST:
        return "ddst";
      default:
        return "?";
    }
  }

  // oneDNN's tag notation from the blocking descriptor: dimensions a, b, c... outermost first by stride, upper
  // case where blocked, then the inner blocks ("aBcd16b": nchw with channels in blocks of 16).
  static std::string layout_name(const dnnl::memory::desc& md) {
    const auto& d = md.data;
    if (d.format_kind != dnnl_blocked) return "non-blocked";
    const auto& blk = d.format_desc.blocking;
    std::vector<int> order(d.ndims);
    for (int i = 0; i < d.ndims; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return blk.strides[x] > blk.strides[y]; });
    std::string name;
    for (int i : order) {
      bool blocked = false;
      for (int j = 0; j < blk.inner_nblks; ++j) blocked |= blk.inner_idxs[j] == i;
      name += char((blocked ? 'A' : 'a') + i);
    }
    for (int j = 0; j < blk.inner_nblks; ++j) name += std::to_string(blk.inner_blks[j]) + char('a' + blk.inner_idxs[j]);
    return name;
  }

  dnnl::primitive primitive_;
  std::unordered_map<int, dnnl::memory> args_;
  std::vector<Reorder> input_reorders_;
  Reorder output_reorder_;
  std::string description_;
  int reorders_ = 0;
};

// The convolution of shape s (dense placements) for one pass. in0, in1, bias: forward x, w, b; backward-data dy, w;
// backward-filter x, dy. With bf16, x, w and dy are bfloat16 inside oneDNN (reordered from our float32 outside the
// timing, as every layout change) and its outputs float32: the arithmetic of our bfloat16 kernels.
inline std::unique_ptr<DnnlPrimitive> dnnl_convolution(const kernels::ConvShape& s, Pass pass, const float* in0,
                                                       const float* in1, const float* bias, bool bf16 = false) {
  using namespace dnnl;
  using tag = memory::format_tag;
  const memory::dims x_dims{s.N, s.C, s.H, s.W}, y_dims{s.N, s.K, s.P, s.Q}, b_dims{s.K};
  const memory::dims w_dims = s.groups > 1 ? memory::dims{s.groups, s.K / s.groups, s.C / s.groups, s.R, s.S}
                                           : memory::dims{s.K, s.C, s.R, s.S};
  const tag w_tag = s.groups > 1 ? tag::goihw : tag::oihw;
  // Right/bottom padding that makes oneDNN's output size equal ours (Caffe's floor rule).
  const memory::dims strides{s.stride_h, s.stride_w}, pad_l{s.pad_h, s.pad_w},
      pad_r{(s.P - 1) * s.stride_h + s.R - s.H - s.pad_h, (s.Q - 1) * s.stride_w + s.S - s.W - s.pad_w};
  auto any = [](const memory::dims& d) { return memory::desc(d, memory::data_type::f32, tag::any); };
  // Operands: float32, or bfloat16 with bf16.
  auto operand = [bf16](const memory::dims& d) {
    return memory::desc(d, bf16 ? memory::data_type::bf16 : memory::data_type::f32, tag::any);
  };
  const auto algo = algorithm::convolution_direct;

  convolution_forward::primitive_desc fwd(
      convolution_forward::desc(prop_kind::forward_training, algo, operand(x_dims), operand(w_dims),
                                memory::desc(b_dims, memory::data_type::f32, tag::x), any(y_dims), strides, pad_l,
                                pad_r),
      DnnlPrimitive::engine());
  auto p = std::make_unique<DnnlPrimitive>();
  if (pass == Pass::forward) {
    p->add_input(DNNL_ARG_SRC, fwd.src_desc(), x_dims, tag::nchw, in0);
    p->add_input(DNNL_ARG_WEIGHTS, fwd.weights_desc(), w_dims, w_tag, in1);
    p->add_input(DNNL_ARG_BIAS, fwd.bias_desc(), b_dims, tag::x, bias);
    p->set_output(DNNL_ARG_DST, fwd.dst_desc(), y_dims, tag::nchw);
    p->set_primitive(convolution_forward(fwd), fwd.impl_info_str());
  } else if (pass == Pass::backward_data) {
    convolution_backward_data::primitive_desc pd(
        convolution_backward_data::desc(algo, any(x_dims), operand(w_dims), operand(y_dims), strides, pad_l, pad_r),
        DnnlPrimitive::engine(), fwd);
    p->add_input(DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), y_dims, tag::nchw, in0);
    p->add_input(DNNL_ARG_WEIGHTS, pd.weights_desc(), w_dims, w_tag, in1);
    p->set_output(DNNL_ARG_DIFF_SRC, pd.diff_src_desc(), x_dims, tag::nchw);
    p->set_primitive(convolution_backward_data(pd), pd.impl_info_str());
  } else {
    convolution_backward_weights::primitive_desc pd(
        convolution_backward_weights::desc(algo, operand(x_dims), any(w_dims), operand(y_dims), strides, pad_l, pad_r),
        DnnlPrimitive::engine(), fwd);
    p->add_input(DNNL_ARG_SRC, pd.src_desc(), x_dims, tag::nchw, in0);
    p->add_input(DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), y_dims, tag::nchw, in1);
    p->set_output(DNNL_ARG_DIFF_WEIGHTS, pd.diff_weights_desc(), w_dims, w_tag);
    p->set_primitive(convolution_backward_weights(pd), pd.impl_info_str());
  }
  return p;
}

// The inner product of shape s (dense rows) for one pass; inputs as for dnnl_convolution.
inline std::unique_ptr<DnnlPrimitive> dnnl_inner_product(const kernels::LinearShape& s, Pass pass, const float* in0,
                                                         const float* in1, const float* bias) {
  using namespace dnnl;
  using tag = memory::format_tag;
  const memory::dims x_dims{s.N, s.I}, w_dims{s.O, s.I}, y_dims{s.N, s.O}, b_dims{s.O};
  auto any = [](const memory::dims& d) { return memory::desc(d, memory::data_type::f32, tag::any); };

  inner_product_forward::primitive_desc fwd(
      inner_product_forward::desc(prop_kind::forward_training, any(x_dims), any(w_dims),
                                  memory::desc(b_dims, memory::data_type::f32, tag::x), any(y_dims)),
      DnnlPrimitive::engine());
  auto p = std::make_unique<DnnlPrimitive>();
  if (pass == Pass::forward) {
    p->add_input(DNNL_ARG_SRC, fwd.src_desc(), x_dims, tag::nc, in0);
    p->add_input(DNNL_ARG_WEIGHTS, fwd.weights_desc(), w_dims, tag::oi, in1);
    p->add_input(DNNL_ARG_BIAS, fwd.bias_desc(), b_dims, tag::x, bias);
    p->set_output(DNNL_ARG_DST, fwd.dst_desc(), y_dims, tag::nc);
    p->set_primitive(inner_product_forward(fwd), fwd.impl_info_str());
  } else if (pass == Pass::backward_data) {
    inner_product_backward_data::primitive_desc pd(
        inner_product_backward_data::desc(any(x_dims), any(w_dims), any(y_dims)), DnnlPrimitive::engine(), fwd);
    p->add_input(DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), y_dims, tag::nc, in0);
    p->add_input(DNNL_ARG_WEIGHTS, pd.weights_desc(), w_dims, tag::oi, in1);
    p->set_output(DNNL_ARG_DIFF_SRC, pd.diff_src_desc(), x_dims, tag::nc);
    p->set_primitive(inner_product_backward_data(pd), pd.impl_info_str());
  } else {
    inner_product_backward_weights::primitive_desc pd(
        inner_product_backward_weights::desc(any(x_dims), any(w_dims), any(y_dims)), DnnlPrimitive::engine(), fwd);
    p->add_input(DNNL_ARG_SRC, pd.src_desc(), x_dims, tag::nc, in0);
    p->add_input(DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), y_dims, tag::nc, in1);
    p->set_output(DNNL_ARG_DIFF_WEIGHTS, pd.diff_weights_desc(), w_dims, tag::oi);
    p->set_primitive(inner_product_backward_weights(pd), pd.impl_info_str());
  }
  return p;
}

}  // namespace bench
#endif  // MASSMAP_HAVE_DNNL
