#pragma once
// The concat family's op names and attributes (engine/typed_attrs.h). concat, flatten and flatten_grad take none.
#include <cstdint>
#include <string>

#include "engine/typed_attrs.h"

namespace massmap {
namespace ops {
inline constexpr char concat[] = "concat";
inline constexpr char concat_grad[] = "concat_grad";
inline constexpr char flatten[] = "flatten";
inline constexpr char flatten_grad[] = "flatten_grad";
}  // namespace ops

// concat_grad: dx_i is the slice of dy at channels [channel_offset, channel_offset + C_i).
struct ConcatGradAttrs {
  int64_t channel_offset = 0;

  template <class F>
  void fields(F& f) {
    f.required("channel_offset", channel_offset);
  }
  std::string invalid() const { return channel_offset < 0 ? "channel_offset must be >= 0" : ""; }
};

}  // namespace massmap
