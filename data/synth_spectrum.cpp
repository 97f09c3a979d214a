// synth-v1: our radix-2 FFT, the power-law field, and the spectrum fit the tests use.
#include <algorithm>
#include <cmath>
#include <vector>

#include "data/synth_internal.h"

namespace massmap::data {

namespace synth {

int next_pow2(int n) {
  int p = 1;
  while (p < n) p *= 2;
  return p;
}

namespace {

// The butterflies' twiddles for n points: entry len / 2 - 1 + k is w_len^k for butterfly length len (2 .. n), formed
// by the running product w *= w_len (not by cos and sin of each angle): synth-v1's images are pinned to the values
// that recurrence gives.
std::vector<std::complex<double>> twiddles(int n, bool inverse) {
  std::vector<std::complex<double>> table(size_t(std::max(n - 1, 0)));  // (n - 1): lengths 2, 4, .., n
  for (int len = 2; len <= n; len <<= 1) {
    const double angle = 2 * kPi / len * (inverse ? 1 : -1);
    const std::complex<double> w_len(std::cos(angle), std::sin(angle));
    std::complex<double> w(1, 0);
    for (int k = 0; k < len / 2; ++k) {
      table[size_t(len / 2 - 1 + k)] = w;
      w *= w_len;
    }
  }
  return table;
}

// One butterfly on `count` adjacent complex values: (u, v) -> (u + v w, u - v w), with v w formed as the complex
// product does it (real ac - bd, imaginary ad + bc), spelled out in doubles so that the loop over values vectorises.
void butterfly(std::complex<double>* top, std::complex<double>* bottom, std::complex<double> w, int count) {
  double* u = reinterpret_cast<double*>(top);     // (count, 2)
  double* v = reinterpret_cast<double*>(bottom);  // (count, 2)
  const double wr = w.real(), wi = w.imag();
  for (int c = 0; c < count; ++c) {
    const double vr = v[2 * c] * wr - v[2 * c + 1] * wi, vi = v[2 * c] * wi + v[2 * c + 1] * wr;
    const double ur = u[2 * c], ui = u[2 * c + 1];
    u[2 * c] = ur + vr;
    u[2 * c + 1] = ui + vi;
    v[2 * c] = ur - vr;
    v[2 * c + 1] = ui - vi;
  }
}

// Iterative Cooley-Tukey on n = 2^k "points" that are each a run of `width` adjacent complex values, point i at
// a + i * width: width 1 is one transform of n points; width = cols transforms every column of a (n, cols) array
// at once, each butterfly a pass along whole rows.
void fft_points(std::complex<double>* a, int n, int width, const std::vector<std::complex<double>>& table) {
  for (int i = 1, j = 0; i < n; ++i) {  // bit-reversal permutation: j is i's bits reversed
    int bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j)
      std::swap_ranges(a + size_t(i) * size_t(width), a + size_t(i + 1) * size_t(width), a + size_t(j) * size_t(width));
  }
  for (int len = 2; len <= n; len <<= 1) {
    const std::complex<double>* w = table.data() + len / 2 - 1;  // (len / 2)
    for (int i = 0; i < n; i += len)
      for (int k = 0; k < len / 2; ++k)
        butterfly(a + size_t(i + k) * size_t(width), a + size_t(i + k + len / 2) * size_t(width), w[k], width);
  }
}

}  // namespace

void fft2d(std::vector<std::complex<double>>& a, int rows, int cols, bool inverse) {
  const std::vector<std::complex<double>> row_table = twiddles(cols, inverse);
  for (int r = 0; r < rows; ++r) fft_points(a.data() + size_t(r) * size_t(cols), cols, 1, row_table);
  fft_points(a.data(), rows, cols, twiddles(rows, inverse));  // the columns, a row at a time
}

}  // namespace synth

using synth::kPi;

std::vector<float> power_law_field(int width, int height, double spacing_mm, double beta, double f0_per_mm,
                                   uint64_t seed, uint64_t stream) {
  // A power-of-two grid at least as large as the image; the field is cropped from its corner, so the
  // periodic wrap-around of the FFT does not show up as a seam inside the image when the grid is larger.
  const int cols = synth::next_pow2(width), rows = synth::next_pow2(height);
  std::vector<std::complex<double>> spec(size_t(rows) * size_t(cols));  // (rows, cols)
  for (int r = 0; r < rows; ++r) {
    const double fy = double(r <= rows / 2 ? r : r - rows) / (rows * spacing_mm);
    for (int c = 0; c < cols; ++c) {
      const double fx = double(c <= cols / 2 ? c : c - cols) / (cols * spacing_mm);
      const double f2 = fx * fx + fy * fy;
      const size_t i = size_t(r) * size_t(cols) + size_t(c);
      if (r == 0 && c == 0) continue;  // zero mean
      const double amplitude = std::pow(f2 + f0_per_mm * f0_per_mm, -beta / 4);
      spec[i] = amplitude * std::complex<double>(normal_at(seed, stream, 2 * i), normal_at(seed, stream, 2 * i + 1));
    }
  }
  synth::fft2d(spec, rows, cols, true);
  std::vector<float> out(size_t(width) * size_t(height));
  double sum = 0, sum2 = 0;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const double v = spec[size_t(y) * size_t(cols) + size_t(x)].real();
      sum += v;
      sum2 += v * v;
    }
  const double n = double(width) * height, mean = sum / n, sd = std::sqrt(std::max(sum2 / n - mean * mean, 1e-30));
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      out[size_t(y) * size_t(width) + size_t(x)] =
          float((spec[size_t(y) * size_t(cols) + size_t(x)].real() - mean) / sd);
  return out;
}

double fitted_power_law_exponent(const std::vector<float>& field, int width, int height, double spacing_mm, double f_lo,
                                 double f_hi) {
  const int cols = synth::next_pow2(width), rows = synth::next_pow2(height);
  double mean = 0;
  for (float v : field) mean += v;
  mean /= double(field.size());
  std::vector<std::complex<double>> a(size_t(rows) * size_t(cols));  // zero-padded (rows, cols)
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const double wy = 0.5 - 0.5 * std::cos(2 * kPi * (y + 0.5) / height);
      const double wx = 0.5 - 0.5 * std::cos(2 * kPi * (x + 0.5) / width);
      a[size_t(y) * size_t(cols) + size_t(x)] = (field[size_t(y) * size_t(width) + size_t(x)] - mean) * wx * wy;
    }
  synth::fft2d(a, rows, cols, false);
  // Radial average in 24 logarithmic bins between f_lo and f_hi, then a least-squares line in log-log space.
  const int bins = 24;
  std::vector<double> power(bins, 0), count(bins, 0);
  for (int r = 0; r < rows; ++r) {
    const double fy = double(r <= rows / 2 ? r : r - rows) / (rows * spacing_mm);
    for (int c = 0; c < cols; ++c) {
      const double fx = double(c <= cols / 2 ? c : c - cols) / (cols * spacing_mm);
      const double f = std::sqrt(fx * fx + fy * fy);
      if (f < f_lo || f >= f_hi) continue;
      const int b = int(bins * std::log(f / f_lo) / std::log(f_hi / f_lo));
      power[size_t(b)] += std::norm(a[size_t(r) * size_t(cols) + size_t(c)]);
      count[size_t(b)] += 1;
    }
  }
  double sx = 0, sy = 0, sxx = 0, sxy = 0, n = 0;
  for (int b = 0; b < bins; ++b) {
    if (count[size_t(b)] == 0) continue;
    const double x = std::log(f_lo) + (b + 0.5) * std::log(f_hi / f_lo) / bins;
    const double y = std::log(power[size_t(b)] / count[size_t(b)]);
    sx += x, sy += y, sxx += x * x, sxy += x * y, n += 1;
  }
  const double slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
  return -slope;
}

}  // namespace massmap::data
