// Resampling between pixel grids. Both grids cover the same field: output pixel o spans input coordinates
// [o * s, (o + 1) * s) with s = in / out per axis, so boxes, masks and pixels stay aligned (data/preprocess.cpp
// maps boxes by the same rule).
//   downsampling (s >= 1): area weighting, i.e. the mean of the input over that span with fractional edge pixels;
//     on integer factors this is the plain box mean, so box sums are preserved;
//   upsampling (s < 1): bilinear between input pixel centres, at the output centre (o + 0.5) s - 0.5, clamped at
//     the borders (the outer half pixel repeats the edge value).
// Separable: the rows first into a (height, out_width) buffer, then the columns.
#include <algorithm>
#include <cmath>

#include "base/errors.h"
#include "data/preprocess.h"

namespace massmap::data {

namespace {

// The weights of one axis: output o reads inputs index[k] with weight[k] for k in [begin[o], begin[o + 1]).
struct AxisWeights {
  std::vector<int> begin;     // (out + 1)
  std::vector<int> index;     // (taps) input indices
  std::vector<float> weight;  // (taps) sums to 1 per output
};

AxisWeights axis_weights(int in, int out) {
  AxisWeights a;
  a.begin.reserve(size_t(out) + 1);
  const double s = double(in) / double(out);
  for (int o = 0; o < out; ++o) {
    a.begin.push_back(int(a.index.size()));
    if (s >= 1) {
      const double lo = o * s, hi = std::min(double(in), (o + 1) * s);
      for (int i = int(std::floor(lo)); i < in && i < hi; ++i) {
        const double overlap = std::min(hi, i + 1.0) - std::max(lo, double(i));
        if (overlap <= 0) continue;
        a.index.push_back(i);
        a.weight.push_back(float(overlap / s));
      }
    } else {
      const double x = std::clamp((o + 0.5) * s - 0.5, 0.0, double(in - 1));
      const int i0 = std::min(int(x), in - 1), i1 = std::min(i0 + 1, in - 1);
      const double f = x - i0;
      a.index.push_back(i0), a.weight.push_back(float(1 - f));
      if (f > 0) a.index.push_back(i1), a.weight.push_back(float(f));
    }
  }
  a.begin.push_back(int(a.index.size()));
  return a;
}

void check_sizes(size_t n, int width, int height, int out_width, int out_height, const char* what) {
  if (width <= 0 || height <= 0 || out_width <= 0 || out_height <= 0 || n != size_t(width) * size_t(height))
    throw BadInput(std::string(what) + ": sizes " + std::to_string(width) + "x" + std::to_string(height) + " -> " +
                   std::to_string(out_width) + "x" + std::to_string(out_height) + " with " + std::to_string(n) +
                   " pixels");
}

}  // namespace

std::vector<float> resample_area(const std::vector<float>& in, int width, int height, int out_width, int out_height) {
  check_sizes(in.size(), width, height, out_width, out_height, "resample_area");
  const AxisWeights ax = axis_weights(width, out_width), ay = axis_weights(height, out_height);
  std::vector<float> rows(size_t(height) * size_t(out_width));  // (height, out_width) rows resampled
#pragma omp parallel for schedule(static)
  for (int y = 0; y < height; ++y) {
    const float* src = in.data() + size_t(y) * size_t(width);
    float* dst = rows.data() + size_t(y) * size_t(out_width);
    for (int o = 0; o < out_width; ++o) {
      float sum = 0;
      for (int k = ax.begin[size_t(o)]; k < ax.begin[size_t(o) + 1]; ++k)
        sum += ax.weight[size_t(k)] * src[ax.index[size_t(k)]];
      dst[o] = sum;
    }
  }
  std::vector<float> out(size_t(out_height) * size_t(out_width), 0.f);  // (out_height, out_width)
#pragma omp parallel for schedule(static)
  for (int o = 0; o < out_height; ++o) {
    float* dst = out.data() + size_t(o) * size_t(out_width);
    for (int k = ay.begin[size_t(o)]; k < ay.begin[size_t(o) + 1]; ++k) {  // whole rows: contiguous reads
      const float wk = ay.weight[size_t(k)];
      const float* src = rows.data() + size_t(ay.index[size_t(k)]) * size_t(out_width);
      for (int x = 0; x < out_width; ++x) dst[x] += wk * src[x];
    }
  }
  return out;
}

std::vector<uint8_t> resample_nearest(const std::vector<uint8_t>& in, int width, int height, int out_width,
                                      int out_height) {
  check_sizes(in.size(), width, height, out_width, out_height, "resample_nearest");
  // The input pixel under each output pixel's centre.
  auto table = [](int n, int out) {
    std::vector<int> t(static_cast<size_t>(out));  // (out) input index per output index
    const double s = double(n) / double(out);
    for (int o = 0; o < out; ++o) t[size_t(o)] = std::min(n - 1, int(std::floor((o + 0.5) * s)));
    return t;
  };
  const std::vector<int> tx = table(width, out_width), ty = table(height, out_height);
  std::vector<uint8_t> out(size_t(out_height) * size_t(out_width));  // (out_height, out_width)
#pragma omp parallel for schedule(static)
  for (int o = 0; o < out_height; ++o) {
    const uint8_t* src = in.data() + size_t(ty[size_t(o)]) * size_t(width);
    uint8_t* dst = out.data() + size_t(o) * size_t(out_width);
    for (int x = 0; x < out_width; ++x) dst[x] = src[tx[size_t(x)]];
  }
  return out;
}

}  // namespace massmap::data
