#pragma once
// The lrn family's op names and attributes (engine/typed_attrs.h).
#include <string>

#include "engine/typed_attrs.h"

namespace massmap {
namespace ops {
inline constexpr char lrn[] = "lrn";
inline constexpr char lrn_grad[] = "lrn_grad";
}  // namespace ops

// lrn and its gradient: y = x / (k + alpha/size * sum x^2)^beta over `size` neighbouring channels (Caffe).
struct LrnAttrs {
  int size = 5;
  double alpha = 1e-4;
  double beta = 0.75;
  double k = 1;

  template <class F>
  void fields(F& f) {
    f("size", size);
    f("alpha", alpha);
    f("beta", beta);
    f("k", k);
  }
  std::string invalid() const { return size < 1 || size % 2 == 0 ? "size must be odd and positive" : ""; }
};

}  // namespace massmap
