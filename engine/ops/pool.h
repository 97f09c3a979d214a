#pragma once
// The pool family's op names and attributes (engine/typed_attrs.h).
#include <string>

#include "engine/typed_attrs.h"
#include "kernels/pool.h"

namespace massmap {
namespace ops {
inline constexpr char pool[] = "pool";
inline constexpr char pool_grad[] = "pool_grad";
}  // namespace ops

// pool and its gradient: a kernel x kernel window (the whole image when global), Caffe's CEIL output size.
struct PoolAttrs {
  kernels::PoolMethod method = kernels::PoolMethod::max;
  int kernel = 0;
  int stride = 1;
  int pad = 0;
  bool global = false;

  template <class F>
  void fields(F& f) {
    f("method", method, {{"max", kernels::PoolMethod::max}, {"avg", kernels::PoolMethod::avg}});
    f("kernel", kernel);
    f("stride", stride);
    f("pad", pad);
    f("global", global);
  }
  std::string invalid() const {
    if (!global && kernel < 1) return "kernel must be >= 1 (or global 1)";
    if (stride < 1) return "stride must be >= 1";
    if (pad < 0) return "pad must be >= 0";
    return "";
  }
};

}  // namespace massmap
