#pragma once
// The conv family's op names and attributes (engine/typed_attrs.h).
#include <string>

#include "engine/typed_attrs.h"

namespace massmap {
namespace ops {
inline constexpr char conv2d[] = "conv2d";
inline constexpr char conv2d_grad_data[] = "conv2d_grad_data";
inline constexpr char conv2d_grad_filter[] = "conv2d_grad_filter";
}  // namespace ops

// conv2d and its gradients. The filter's size comes from the weight; num_output and kernel_h/kernel_w, when
// given (not 0), must agree with it.
struct ConvAttrs {
  int num_output = 0;
  int kernel_h = 0, kernel_w = 0;
  int stride = 1;
  int pad = 0;
  int groups = 1;
  bool relu = false;  // y = relu(conv(x, w) + b) in one kernel (the fuse_conv_bias_relu pass sets it)

  template <class F>
  void fields(F& f) {
    f("num_output", num_output);
    f("kernel_h", kernel_h);
    f("kernel_w", kernel_w);
    f("stride", stride);
    f("pad", pad);
    f("groups", groups);
    f("relu", relu);
  }
  std::string invalid() const {
    if (num_output < 0) return "num_output must be >= 0 (0: the weight's)";
    if (kernel_h < 0 || kernel_w < 0) return "kernel_h and kernel_w must be >= 0 (0: the weight's)";
    if (stride < 1) return "stride must be >= 1";
    if (pad < 0) return "pad must be >= 0";
    if (groups < 1) return "groups must be >= 1";
    return "";
  }
};

}  // namespace massmap
