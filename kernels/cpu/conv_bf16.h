#pragma once
// Convolution in bfloat16: the operands rounded to bfloat16 (nearest even), their products summed in float32, every
// input and output buffer float32 NCHW as everywhere else. Two engines run the same layouts and loops:
//   tiles (Intel AMX): a tile multiply-add (TDPBF16PS: a 16 x 32 by 32 x 16 product added into 16 x 16 floats) does 16
//     times the work per cycle of an AVX-512 FMA, so a convolution's multiply-adds stop being its cost; what remains is
//     rounding and laying out the operands, one pass over each.
//   dot products (AVX512-BF16, on CPUs without tiles: AMD Zen 4, Intel Cooper Lake): VDPBF16PS adds two products into
//     each of 16 floats, twice an FMA's multiply-adds at the same rate (measured on Zen 4: one a cycle), so the
//     convolution's arithmetic takes half float32's time; each tile product becomes a block of register accumulators,
//     one weight pair (or input pair) broadcast against 16 lanes of the other operand's pairs.
//
// Precision: each operand carries 8 significant bits instead of 24 (relative rounding error up to 2^-9), the sums
// keep float32's, so a result differs from the float32 kernels by about 2^-9 times the sum of the products' magnitudes
// over sqrt of their count (random signs), not by the float32 tolerance of kernels/cpu/cpu_isa.h. Against a float32
// reference fed the operands already rounded to bfloat16, only the summation order differs (tests/conv_bf16_test).
// Results are bit-identical for any thread count and from run to run: every output is summed by one work item in an
// order fixed by the shape. The two engines add the same products in different orders: their results differ in the
// last bits.
//
// Layouts (per image and group; L = W + 2 pad_w is the padded row pitch, so output (p, q) is flat position j = p L + q
// and filter tap (r, t) reads padded input position j + r L + t, across rows, for every output at once; with strides,
// the padded input is split into stride_h x stride_w phase planes first, and each tap reads one of them):
//   forward: Y (Kg, P L) = sum over taps and 32-channel chunks of W_tap (Kg, 32) x X (32, P L shifted by the tap),
//            X in pairs of channels interleaved per position (the tile unit's VNNI layout for its B operand), W plain.
//   backward data: the forward pass of dy padded by R-1-pad with the filters turned 180 degrees, in and out swapped.
//   backward filter: dW^T_tap (Cg, Kg) = sum over positions of X (Cg, positions shifted by the tap) x dY^T (positions,
//            Kg), dY in pairs of positions interleaved per output channel; per block of images, the blocks added in
//            order at the end.
#include <string>

#include "kernels/conv.h"

namespace kernels {
namespace cpu {

// Which arithmetic the fast CPU convolution uses where conv_bf16_applies: float32 (the default) or bfloat16 operands
// with float32 sums. Process-wide, like the instruction set (kernels/cpu/cpu_isa.h); set before kernels run.
enum class ConvPrecision { float32, bfloat16 };
const char* conv_precision_name(ConvPrecision precision);
// "float32" or "bfloat16"; throws std::invalid_argument naming the accepted values.
ConvPrecision parse_conv_precision(const std::string& name);
ConvPrecision active_conv_precision();
// bfloat16 on a CPU or system with neither engine throws std::runtime_error saying so. Not to be called while
// kernels run on other threads.
void set_conv_precision(ConvPrecision precision);

enum class Bf16Engine { tiles, dot_products };
const char* bf16_engine_name(Bf16Engine engine);
// "tiles" or "dot_products"; throws std::invalid_argument naming the accepted values.
Bf16Engine parse_bf16_engine(const std::string& name);
// Whether this CPU has AMX-TILE, AMX-BF16 and AVX512-BF16 and the operating system grants the process the tile state
// (asked for once, on first call).
bool bf16_tiles_available();
// Whether this CPU has AVX-512 (F, BW, VL) with AVX512-BF16.
bool bf16_dot_products_available();
bool bf16_engine_available(Bf16Engine engine);
// Either engine.
bool bf16_available();
// The engine the passes below use: tiles where available, else dot products (what a CPU with neither has is never
// used). Process-wide; set_bf16_engine throws std::runtime_error for an engine this CPU lacks. Not to be called while
// kernels run on other threads.
Bf16Engine active_bf16_engine();
void set_bf16_engine(Bf16Engine engine);
// Whether kernels::cpu::conv_forward and conv_backward_filter run s in bfloat16: the active precision is bfloat16
// and s has at least 16 channels in and out per group (with fewer, most of each 32-deep tile product would be zeros:
// a first layer on grey images stays float32).
bool conv_bf16_applies(const ConvShape& s);
// The same for conv_backward_data, which also needs conv_bf16_backward_data_supports(s); strided backward data runs by
// phases of dx (kernels/cpu/conv_phase_bwd_data.h), whose stride-1 problems this applies to in turn.
bool conv_bf16_backward_data_applies(const ConvShape& s);

// Forward and backward filter take any checked shape (strides by phase planes of the input: below); backward data
// takes stride 1 with pad_h < R and pad_w < S, where it is a forward pass of dy.
bool conv_bf16_backward_data_supports(const ConvShape& s);

// The passes of kernels/conv.h on bfloat16 operands, on the active engine. Each throws std::runtime_error when
// !bf16_available(), and backward data std::invalid_argument naming the shape when
// !conv_bf16_backward_data_supports(s).
void conv_forward_bf16(const ConvShape& s, const float* x, const float* w, const float* b /* nullable */, float* y,
                       ConvEpilogue epilogue);
void conv_backward_data_bf16(const ConvShape& s, const float* dy, const float* w, float* dx, bool accumulate);
void conv_backward_filter_bf16(const ConvShape& s, const float* x, const float* dy, float* dw, bool accumulate);

// Nearest-even rounding of a float to bfloat16 and back (NaN stays NaN): what the kernels do to every operand; the
// tests' references use it.
float round_to_bf16(float value);

// The kernels (conv_bf16_amx.cpp forward, conv_bf16_filter_amx.cpp backward filter, both compiled for AMX and
// AVX512-BF16), on the engine given; called by the functions above after their checks.
namespace bf16 {
// y (=, or += when accumulate) epilogue(b + the stride-1 correlation of x with w). With turned, w holds the weights of
// the convolution whose backward data s is (s its turned shape), read turned by 180 degrees with in and out swapped.
void conv_forward(Bf16Engine engine, const ConvShape& s, const float* x, const float* w, const float* b, float* y,
                  ConvEpilogue epilogue, bool accumulate, bool turned);
// The backward filter's two loop orders, which add the same products in the same order (the same bits): images
// outer, every image adding into all of its work item's partial sums (by_shape's choice unless those exceed L2), or
// accumulators outer, each block of them held in the tiles over the whole batch packed at once. The tests pin each.
enum class FilterOrder { by_shape, images_outer, accumulators_outer };
void conv_backward_filter(Bf16Engine engine, const ConvShape& s, const float* x, const float* dy, float* dw,
                          bool accumulate, FilterOrder order = FilterOrder::by_shape);
}  // namespace bf16

}  // namespace cpu
}  // namespace kernels
