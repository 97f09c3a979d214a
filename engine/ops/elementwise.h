#pragma once
// The elementwise family's op names; none of its ops takes attributes.
namespace massmap::ops {
inline constexpr char bias[] = "bias";
inline constexpr char bias_grad[] = "bias_grad";
inline constexpr char relu[] = "relu";
inline constexpr char relu_grad[] = "relu_grad";
inline constexpr char add[] = "add";
inline constexpr char copy[] = "copy";
}  // namespace massmap::ops
