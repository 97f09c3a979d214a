#pragma once
// The fast LRN's loops, included by lrn_<isa>.cpp so that each is compiled with that ISA's flags (the compiler
// vectorises the pixel loops: 16 floats a step with AVX-512, 8 with AVX2, 4 with SSE2). Internal linkage only.
//
// Work is cut into (image, run of kLrnChunk pixels) items; inside one, channels run in order with every buffer a
// (C, chunk) block in L1/L2. Each element's arithmetic is fixed by the shape, so any thread count gives the same
// bits. Sums are in float (the reference sums in double): |error| ~ 1e-7 relative.
//   forward   scale = k + alpha/size * sum_{window(c)} x^2, y = x * scale^-beta
//   backward  dx = dy * scale^-beta - 2 alpha beta / size * x * sum_{c' : c in window(c')} dy y / scale  (at c')
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "kernels/cpu/parallel_threshold.h"
#include "kernels/lrn.h"

namespace kernels {
namespace cpu {
namespace {

constexpr int kLrnChunk = 128;  // pixels per item: 512 B per channel row

// scale^-beta over n pixels; beta 0.75 (every net here) as 1 / (sqrt(s) * sqrt(sqrt(s))). The square roots are
// intrinsics: with errno semantics (the default) the compiler will not vectorise std::sqrt.
inline void pow_minus_beta(const float* scale, float beta, int n, float* out) {
  if (beta != 0.75f) {
    for (int i = 0; i < n; ++i) out[i] = std::pow(scale[i], -beta);
    return;
  }
  int i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) {
    const __m512 r =
        _mm512_maskz_sqrt_ps(0xFFFF, _mm512_loadu_ps(scale + i));  // (maskz: GCC 12 warns on the plain one)
    _mm512_storeu_ps(out + i, _mm512_div_ps(_mm512_set1_ps(1.f), _mm512_mul_ps(r, _mm512_maskz_sqrt_ps(0xFFFF, r))));
  }
#elif defined(__AVX__)
  for (; i + 8 <= n; i += 8) {
    const __m256 r = _mm256_sqrt_ps(_mm256_loadu_ps(scale + i));
    _mm256_storeu_ps(out + i, _mm256_div_ps(_mm256_set1_ps(1.f), _mm256_mul_ps(r, _mm256_sqrt_ps(r))));
  }
#elif defined(__SSE2__)
  for (; i + 4 <= n; i += 4) {
    const __m128 r = _mm_sqrt_ps(_mm_loadu_ps(scale + i));
    _mm_storeu_ps(out + i, _mm_div_ps(_mm_set1_ps(1.f), _mm_mul_ps(r, _mm_sqrt_ps(r))));
  }
#endif
  for (; i < n; ++i) {  // the same IEEE operations, one lane at a time
    const float r = std::sqrt(scale[i]);
    out[i] = 1.f / (r * std::sqrt(r));
  }
}

// scale (n) at channel c from x's planes at pixel offset i0 (sum of the window's squares in channel order).
inline void window_scale(const LrnShape& s, const float* x_n, int c, int64_t i0, int n, float* scale) {
  const int first = std::max(c - (s.size - 1) / 2, 0), last = std::min(c + s.size / 2, s.C - 1);
  const float a = s.alpha / float(s.size);
  for (int i = 0; i < n; ++i) scale[i] = 0.f;
  for (int cc = first; cc <= last; ++cc) {
    const float* xc = x_n + cc * s.x.channel_stride + i0;  // (n)
    for (int i = 0; i < n; ++i) scale[i] += xc[i] * xc[i];
  }
  for (int i = 0; i < n; ++i) scale[i] = s.k + a * scale[i];
}

inline int64_t lrn_items(const LrnShape& s, int64_t* chunks) {
  *chunks = (int64_t(s.H) * s.W + kLrnChunk - 1) / kLrnChunk;
  return int64_t(s.N) * *chunks;
}

void lrn_forward_body(const LrnShape& s, const float* x, float* y) {
  int64_t chunks;
  const int64_t items = lrn_items(s, &chunks), plane = int64_t(s.H) * s.W;
#pragma omp parallel for schedule(static) if (int64_t(s.N) * s.C * plane * s.size >= kParallelMinElements)
  for (int64_t item = 0; item < items; ++item) {
    const int64_t n = item / chunks, i0 = item % chunks * kLrnChunk;
    const int len = int(std::min<int64_t>(kLrnChunk, plane - i0));
    const float* x_n = x + s.x.plane(n, 0);  // (C, H, W) planes
    float* y_n = y + s.y.plane(n, 0);
    float scale[kLrnChunk], powed[kLrnChunk];  // at channel c: (len)
    for (int c = 0; c < s.C; ++c) {
      window_scale(s, x_n, c, i0, len, scale);
      pow_minus_beta(scale, s.beta, len, powed);
      const float* xc = x_n + c * s.x.channel_stride + i0;
      float* yc = y_n + c * s.y.channel_stride + i0;
      for (int i = 0; i < len; ++i) yc[i] = xc[i] * powed[i];
    }
  }
}

void lrn_backward_body(const LrnShape& s, const float* x, const float* y, const float* dy, float* dx, bool accumulate) {
  int64_t chunks;
  const int64_t items = lrn_items(s, &chunks), plane = int64_t(s.H) * s.W;
  const float cross_factor = 2.f * s.alpha * s.beta / float(s.size);
#pragma omp parallel if (int64_t(s.N) * s.C * plane * s.size >= kParallelMinElements)
  {
    // (C, kLrnChunk) each: scale^-beta and dy * y / scale per channel, for this item's pixels.
    std::vector<float> powed(size_t(s.C) * kLrnChunk), ratio(size_t(s.C) * kLrnChunk);
#pragma omp for schedule(static)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t n = item / chunks, i0 = item % chunks * kLrnChunk;
      const int len = int(std::min<int64_t>(kLrnChunk, plane - i0));
      const float* x_n = x + s.x.plane(n, 0);  // (C, H, W) planes; dx placed as x
      const float* y_n = y + s.y.plane(n, 0);  // dy placed as y
      const float* dy_n = dy + s.y.plane(n, 0);
      float* dx_n = dx + s.x.plane(n, 0);
      float scale[kLrnChunk];  // (len)
      for (int c = 0; c < s.C; ++c) {
        window_scale(s, x_n, c, i0, len, scale);
        float* p = powed.data() + int64_t(c) * kLrnChunk;
        float* r = ratio.data() + int64_t(c) * kLrnChunk;
        pow_minus_beta(scale, s.beta, len, p);
        const float* yc = y_n + c * s.y.channel_stride + i0;
        const float* dyc = dy_n + c * s.y.channel_stride + i0;
        for (int i = 0; i < len; ++i) r[i] = dyc[i] * yc[i] / scale[i];
      }
      float cross[kLrnChunk];  // (len)
      for (int c = 0; c < s.C; ++c) {
        // The channels whose window holds c, in channel order.
        const int first = std::max(c - s.size / 2, 0), last = std::min(c + (s.size - 1) / 2, s.C - 1);
        for (int i = 0; i < len; ++i) cross[i] = 0.f;
        for (int cc = first; cc <= last; ++cc) {
          const float* r = ratio.data() + int64_t(cc) * kLrnChunk;
          for (int i = 0; i < len; ++i) cross[i] += r[i];
        }
        const float* p = powed.data() + int64_t(c) * kLrnChunk;
        const float* xc = x_n + c * s.x.channel_stride + i0;
        const float* dyc = dy_n + c * s.y.channel_stride + i0;
        float* dxc = dx_n + c * s.x.channel_stride + i0;
        if (accumulate) {
          for (int i = 0; i < len; ++i) dxc[i] += dyc[i] * p[i] - cross_factor * xc[i] * cross[i];
        } else {
          for (int i = 0; i < len; ++i) dxc[i] = dyc[i] * p[i] - cross_factor * xc[i] * cross[i];
        }
      }
    }
  }
}

}  // namespace
}  // namespace cpu
}  // namespace kernels
