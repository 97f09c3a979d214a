#pragma once
// Square block transposes of floats for the direct convolution kernels (conv_direct_filter_kvec_body.h: dy and the
// sums; conv_direct_kvec_body.h: the packed weights), one vector wide per instruction set: included by each ISA's
// file through the bodies. Internal linkage only.
#include <cstdint>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace kernels {
namespace cpu {
namespace {

// v_transpose: dst row i (kTransposeLanes floats) = column i of the kTransposeLanes x kTransposeLanes block src (rows
// src_stride apart).
#if defined(__AVX512F__)
constexpr int kTransposeLanes = 16;
// (maskz forms: GCC 12 warns on the plain ones' undefined first operand.)
inline void v_transpose(const float* src, int64_t src_stride, float* dst, int64_t dst_stride) {
  __m512 r[16], a[16], b[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * src_stride);
  for (int i = 0; i < 8; ++i) {  // pairs of rows interleaved within each 128-bit lane
    a[2 * i] = _mm512_maskz_unpacklo_ps(0xFFFF, r[2 * i], r[2 * i + 1]);
    a[2 * i + 1] = _mm512_maskz_unpackhi_ps(0xFFFF, r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // b[4i + j], lane l: column 4l + j of rows 4i .. 4i + 3
    b[4 * i] = _mm512_maskz_shuffle_ps(0xFFFF, a[4 * i], a[4 * i + 2], 0x44);
    b[4 * i + 1] = _mm512_maskz_shuffle_ps(0xFFFF, a[4 * i], a[4 * i + 2], 0xEE);
    b[4 * i + 2] = _mm512_maskz_shuffle_ps(0xFFFF, a[4 * i + 1], a[4 * i + 3], 0x44);
    b[4 * i + 3] = _mm512_maskz_shuffle_ps(0xFFFF, a[4 * i + 1], a[4 * i + 3], 0xEE);
  }
  for (int j = 0; j < 4; ++j) {  // column 4l + j: lane l of b[j], b[4 + j], b[8 + j], b[12 + j]
    const __m512 even0 = _mm512_maskz_shuffle_f32x4(0xFFFF, b[j], b[4 + j], 0x88),
                 odd0 = _mm512_maskz_shuffle_f32x4(0xFFFF, b[j], b[4 + j], 0xDD);
    const __m512 even1 = _mm512_maskz_shuffle_f32x4(0xFFFF, b[8 + j], b[12 + j], 0x88);
    const __m512 odd1 = _mm512_maskz_shuffle_f32x4(0xFFFF, b[8 + j], b[12 + j], 0xDD);
    _mm512_storeu_ps(dst + j * dst_stride, _mm512_maskz_shuffle_f32x4(0xFFFF, even0, even1, 0x88));
    _mm512_storeu_ps(dst + (8 + j) * dst_stride, _mm512_maskz_shuffle_f32x4(0xFFFF, even0, even1, 0xDD));
    _mm512_storeu_ps(dst + (4 + j) * dst_stride, _mm512_maskz_shuffle_f32x4(0xFFFF, odd0, odd1, 0x88));
    _mm512_storeu_ps(dst + (12 + j) * dst_stride, _mm512_maskz_shuffle_f32x4(0xFFFF, odd0, odd1, 0xDD));
  }
}
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kTransposeLanes = 8;
inline void v_transpose(const float* src, int64_t src_stride, float* dst, int64_t dst_stride) {
  __m256 r[8], a[8], b[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * src_stride);
  for (int i = 0; i < 4; ++i) {
    a[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    a[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {  // b[4i + j], lane l: column 4l + j of rows 4i .. 4i + 3
    b[4 * i] = _mm256_shuffle_ps(a[4 * i], a[4 * i + 2], 0x44);
    b[4 * i + 1] = _mm256_shuffle_ps(a[4 * i], a[4 * i + 2], 0xEE);
    b[4 * i + 2] = _mm256_shuffle_ps(a[4 * i + 1], a[4 * i + 3], 0x44);
    b[4 * i + 3] = _mm256_shuffle_ps(a[4 * i + 1], a[4 * i + 3], 0xEE);
  }
  for (int j = 0; j < 4; ++j) {
    _mm256_storeu_ps(dst + j * dst_stride, _mm256_permute2f128_ps(b[j], b[4 + j], 0x20));
    _mm256_storeu_ps(dst + (4 + j) * dst_stride, _mm256_permute2f128_ps(b[j], b[4 + j], 0x31));
  }
}
#elif defined(__SSE2__)
constexpr int kTransposeLanes = 4;
inline void v_transpose(const float* src, int64_t src_stride, float* dst, int64_t dst_stride) {
  __m128 r0 = _mm_loadu_ps(src), r1 = _mm_loadu_ps(src + src_stride), r2 = _mm_loadu_ps(src + 2 * src_stride),
         r3 = _mm_loadu_ps(src + 3 * src_stride);
  _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
  _mm_storeu_ps(dst, r0);
  _mm_storeu_ps(dst + dst_stride, r1);
  _mm_storeu_ps(dst + 2 * dst_stride, r2);
  _mm_storeu_ps(dst + 3 * dst_stride, r3);
}
#else  // plain C++
constexpr int kTransposeLanes = 4;
inline void v_transpose(const float* src, int64_t src_stride, float* dst, int64_t dst_stride) {
  for (int i = 0; i < kTransposeLanes; ++i)
    for (int j = 0; j < kTransposeLanes; ++j) dst[i * dst_stride + j] = src[j * src_stride + i];
}
#endif

}  // namespace
}  // namespace cpu
}  // namespace kernels
