#pragma once
// The softmax family's op names and attributes (engine/typed_attrs.h). softmax and softmax_grad take none.
#include <string>

#include "engine/typed_attrs.h"

namespace massmap {
namespace ops {
inline constexpr char softmax[] = "softmax";
inline constexpr char softmax_grad[] = "softmax_grad";
inline constexpr char softmax_loss[] = "softmax_loss";
inline constexpr char softmax_loss_grad[] = "softmax_loss_grad";
}  // namespace ops

// softmax_loss and its gradient. loss_weight scales the loss and its gradient (GoogLeNet's auxiliary heads: 0.3);
// locations labelled ignore_label count for nothing.
struct SoftmaxLossAttrs {
  double loss_weight = 1.0;
  int ignore_label = -1;

  template <class F>
  void fields(F& f) {
    f("loss_weight", loss_weight);
    f("ignore_label", ignore_label);
  }
  std::string invalid() const { return loss_weight >= 0 ? "" : "loss_weight must be >= 0"; }
};

}  // namespace massmap
