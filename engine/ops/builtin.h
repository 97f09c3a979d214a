#pragma once
// Registration of the built-in ops, one function per op family (engine/ops/<family>.cpp).
namespace massmap {

void register_conv_ops();
void register_linear_ops();
void register_elementwise_ops();  // bias, relu, add, copy
void register_pool_ops();
void register_lrn_ops();
void register_concat_ops();  // concat, flatten
void register_dropout_ops();
void register_softmax_ops();  // softmax, softmax_loss
void register_sgd_ops();

inline void register_builtin_ops() {
  register_conv_ops();
  register_linear_ops();
  register_elementwise_ops();
  register_pool_ops();
  register_lrn_ops();
  register_concat_ops();
  register_dropout_ops();
  register_softmax_ops();
  register_sgd_ops();
}

}  // namespace massmap
