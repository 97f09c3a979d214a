#pragma once
// The linear family's op names and attributes (engine/typed_attrs.h).
#include <string>

#include "engine/typed_attrs.h"

namespace massmap {
namespace ops {
inline constexpr char linear[] = "linear";
inline constexpr char linear_grad_data[] = "linear_grad_data";
inline constexpr char linear_grad_weight[] = "linear_grad_weight";
}  // namespace ops

// linear and its gradients. num_output, when given (not 0), must agree with the weight's rows.
struct LinearAttrs {
  int num_output = 0;

  template <class F>
  void fields(F& f) {
    f("num_output", num_output);
  }
  std::string invalid() const { return num_output < 0 ? "num_output must be >= 0 (0: the weight's)" : ""; }
};

}  // namespace massmap
