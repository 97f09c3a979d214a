#pragma once
// The dropout family's op names and attributes (engine/typed_attrs.h).
#include <cstdint>
#include <string>

#include "base/text.h"
#include "engine/typed_attrs.h"

namespace massmap {
namespace ops {
inline constexpr char dropout[] = "dropout";
inline constexpr char dropout_grad[] = "dropout_grad";
}  // namespace ops

// dropout and its gradient: drop with probability ratio; the mask is drawn from (seed, iteration), the seed per
// node so that two dropout layers draw different masks.
struct DropoutAttrs {
  double ratio = 0.5;
  int64_t seed = 0;

  template <class F>
  void fields(F& f) {
    f("ratio", ratio);
    f("seed", seed);
  }
  std::string invalid() const {
    return ratio >= 0 && ratio < 1 ? "" : "ratio must be in [0, 1), is " + decimal_text(ratio);
  }
};

}  // namespace massmap
