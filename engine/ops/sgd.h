#pragma once
// The sgd family's op name and attributes (engine/typed_attrs.h).
#include <string>

#include "engine/typed_attrs.h"

namespace massmap {
namespace ops {
inline constexpr char sgd_update[] = "sgd_update";
}  // namespace ops

// sgd_update: the parameter's multipliers of the solver's learning rate and weight decay (its ParamSpec).
struct SgdAttrs {
  double lr_mult = 1;
  double decay_mult = 1;

  template <class F>
  void fields(F& f) {
    f("lr_mult", lr_mult);
    f("decay_mult", decay_mult);
  }
  std::string invalid() const { return ""; }
};

}  // namespace massmap
