#pragma once
// The batch-norm family's op names and attributes (engine/typed_attrs.h).
#include <string>

#include "base/text.h"
#include "engine/typed_attrs.h"

namespace massmap {
namespace ops {
inline constexpr char batch_norm[] = "batch_norm";
inline constexpr char batch_norm_grad[] = "batch_norm_grad";
}  // namespace ops

// batch_norm and its gradient (kernels/batch_norm.h): eps under the square root, momentum the weight of each batch
// in the running statistics.
struct BatchNormAttrs {
  double eps = 1e-5;
  double momentum = 0.1;
  bool relu = false;  // y = relu(batch_norm(x)) in one kernel (the fuse_batch_norm_relu pass sets it)

  template <class F>
  void fields(F& f) {
    f("eps", eps);
    f("momentum", momentum);
    f("relu", relu);
  }
  std::string invalid() const {
    if (!(eps > 0)) return "eps must be > 0, is " + decimal_text(eps);
    if (!(momentum >= 0 && momentum <= 1)) return "momentum must lie in [0, 1], is " + decimal_text(momentum);
    return "";
  }
};

}  // namespace massmap
