// Reference 2-D convolution (cross-correlation): plain loops, the ground truth every other path is checked against.
//
// Shape letters: N batch, C input channels, H/W input size, K output channels, R/S filter size, P/Q output size,
// G groups; Cg = C/G input and Kg = K/G output channels per group, output channel k belongs to group g = k / Kg.
//
//   forward:          y[n,k,p,q]  = b[k] + sum_{c<Cg, r<R, s<S} w[k,c,r,s] * x[n, g*Cg+c, p*sh-ph+r, q*sw-pw+s]
//   backward data:    dx[n,g*Cg+c,h,v] = sum_{k in group g, r, s, with h = p*sh-ph+r and v = q*sw-pw+s}
//                                          w[k,c,r,s] * dy[n,k,p,q]
//   backward filter:  dw[k,c,r,s] = sum_{n,p,q} dy[n,k,p,q] * x[n, g*Cg+c, p*sh-ph+r, q*sw-pw+s]
//
// x positions outside the image read as zero (padding). Sums run in double so the reference is more accurate than
// any float path compared with it.
#include <sstream>
#include <stdexcept>

#include "kernels/conv.h"

namespace kernels {

namespace {

// Output size of one dimension (floor, as Caffe); 0 when the filter does not fit or the stride is invalid.
int output_size(int in, int filter, int stride, int pad) {
  if (stride < 1 || in + 2 * pad < filter) return 0;
  return (in + 2 * pad - filter) / stride + 1;
}

void check_placement(const Placement& p, const char* name, int N, int64_t plane_size, std::ostringstream& bad) {
  if (p.channel_stride < plane_size)
    bad << name << " placement channel_stride " << p.channel_stride << " < plane size " << plane_size << "; ";
  if (N > 1 && p.batch_stride < plane_size)
    bad << name << " placement batch_stride " << p.batch_stride << " < plane size " << plane_size << "; ";
  if (p.channel_offset < 0) bad << name << " placement channel_offset " << p.channel_offset << " < 0; ";
}

}  // namespace

ConvShape conv_shape(int N, int C, int H, int W, int K, int R, int S, int stride, int pad, int groups) {
  ConvShape s;
  s.N = N, s.C = C, s.H = H, s.W = W, s.K = K, s.R = R, s.S = S;
  s.stride_h = s.stride_w = stride;
  s.pad_h = s.pad_w = pad;
  s.groups = groups;
  s.P = output_size(H, R, stride, pad);
  s.Q = output_size(W, S, stride, pad);
  s.x = Placement::dense(C, H, W);
  s.y = Placement::dense(K, s.P, s.Q);
  check_conv_shape(s);
  return s;
}

void check_conv_shape(const ConvShape& s) {
  std::ostringstream bad;
  if (s.N < 1 || s.C < 1 || s.H < 1 || s.W < 1 || s.K < 1 || s.R < 1 || s.S < 1)
    bad << "sizes must be positive (N " << s.N << ", C " << s.C << ", H " << s.H << ", W " << s.W << ", K " << s.K
        << ", R " << s.R << ", S " << s.S << "); ";
  if (s.stride_h < 1 || s.stride_w < 1) bad << "stride " << s.stride_h << "x" << s.stride_w << " must be >= 1; ";
  if (s.pad_h < 0 || s.pad_w < 0) bad << "padding " << s.pad_h << "x" << s.pad_w << " must be >= 0; ";
  if (s.groups < 1) {
    bad << "groups " << s.groups << " must be >= 1; ";
  } else {
    if (s.C % s.groups != 0) bad << "groups " << s.groups << " does not divide C " << s.C << "; ";
    if (s.K % s.groups != 0) bad << "groups " << s.groups << " does not divide K " << s.K << "; ";
  }
  if (s.H + 2 * s.pad_h < s.R || s.W + 2 * s.pad_w < s.S)
    bad << "filter " << s.R << "x" << s.S << " larger than padded input " << s.H + 2 * s.pad_h << "x"
        << s.W + 2 * s.pad_w << "; ";
  const int P = output_size(s.H, s.R, s.stride_h, s.pad_h), Q = output_size(s.W, s.S, s.stride_w, s.pad_w);
  if (s.P != P || s.Q != Q) bad << "output " << s.P << "x" << s.Q << " should be " << P << "x" << Q << "; ";
  check_placement(s.x, "x", s.N, int64_t(s.H) * s.W, bad);
  check_placement(s.y, "y", s.N, int64_t(s.P) * s.Q, bad);
  const std::string message = bad.str();
  if (!message.empty()) {
    throw std::invalid_argument("conv shape (N " + std::to_string(s.N) + ", C " + std::to_string(s.C) + ", H " +
                                std::to_string(s.H) + ", W " + std::to_string(s.W) + ", K " + std::to_string(s.K) +
                                "): " + message.substr(0, message.size() - 2));
  }
}

namespace ref {

void conv_forward(const ConvShape& s, const float* x, const float* w, const float* b, float* y) {
  check_conv_shape(s);
  const int Cg = s.C / s.groups, Kg = s.K / s.groups;
  for (int n = 0; n < s.N; ++n) {
    for (int k = 0; k < s.K; ++k) {
      const int g = k / Kg;
      const float* w_k = w + int64_t(k) * Cg * s.R * s.S;  // (Cg, R, S)
      float* y_nk = y + s.y.plane(n, k);                   // (P, Q)
      for (int p = 0; p < s.P; ++p) {
        for (int q = 0; q < s.Q; ++q) {
          double sum = b ? b[k] : 0.0;
          for (int c = 0; c < Cg; ++c) {
            const float* x_nc = x + s.x.plane(n, g * Cg + c);  // (H, W)
            for (int r = 0; r < s.R; ++r) {
              const int h = p * s.stride_h - s.pad_h + r;
              if (h < 0 || h >= s.H) continue;
              for (int t = 0; t < s.S; ++t) {
                const int v = q * s.stride_w - s.pad_w + t;
                if (v < 0 || v >= s.W) continue;
                sum += double(w_k[(c * s.R + r) * s.S + t]) * x_nc[h * s.W + v];
              }
            }
          }
          y_nk[p * s.Q + q] = float(sum);
        }
      }
    }
  }
}

// Gather form: each dx entry sums the (k, r, s) taps whose window covers it, so every entry is written once.
void conv_backward_data(const ConvShape& s, const float* dy, const float* w, float* dx, bool accumulate) {
  check_conv_shape(s);
  const int Cg = s.C / s.groups, Kg = s.K / s.groups;
  for (int n = 0; n < s.N; ++n) {
    for (int ci = 0; ci < s.C; ++ci) {
      const int g = ci / Cg, c = ci % Cg;
      float* dx_nc = dx + s.x.plane(n, ci);  // (H, W)
      for (int h = 0; h < s.H; ++h) {
        for (int v = 0; v < s.W; ++v) {
          double sum = 0;
          for (int k = g * Kg; k < (g + 1) * Kg; ++k) {
            const float* dy_nk = dy + s.y.plane(n, k);  // (P, Q)
            for (int r = 0; r < s.R; ++r) {
              // h = p * stride - pad + r must hold for an integer output row p in [0, P).
              const int p_scaled = h + s.pad_h - r;
              if (p_scaled < 0 || p_scaled % s.stride_h != 0 || p_scaled / s.stride_h >= s.P) continue;
              const int p = p_scaled / s.stride_h;
              for (int t = 0; t < s.S; ++t) {
                const int q_scaled = v + s.pad_w - t;
                if (q_scaled < 0 || q_scaled % s.stride_w != 0 || q_scaled / s.stride_w >= s.Q) continue;
                const int q = q_scaled / s.stride_w;
                sum += double(w[((int64_t(k) * Cg + c) * s.R + r) * s.S + t]) * dy_nk[p * s.Q + q];
              }
            }
          }
          float& out = dx_nc[h * s.W + v];
          out = accumulate ? float(out + sum) : float(sum);
        }
      }
    }
  }
}

void conv_backward_filter(const ConvShape& s, const float* x, const float* dy, float* dw, bool accumulate) {
  check_conv_shape(s);
  const int Cg = s.C / s.groups, Kg = s.K / s.groups;
  for (int k = 0; k < s.K; ++k) {
    const int g = k / Kg;
    for (int c = 0; c < Cg; ++c) {
      for (int r = 0; r < s.R; ++r) {
        for (int t = 0; t < s.S; ++t) {
          double sum = 0;
          for (int n = 0; n < s.N; ++n) {
            const float* x_nc = x + s.x.plane(n, g * Cg + c);  // (H, W)
            const float* dy_nk = dy + s.y.plane(n, k);         // (P, Q)
            for (int p = 0; p < s.P; ++p) {
              const int h = p * s.stride_h - s.pad_h + r;
              if (h < 0 || h >= s.H) continue;
              for (int q = 0; q < s.Q; ++q) {
                const int v = q * s.stride_w - s.pad_w + t;
                if (v < 0 || v >= s.W) continue;
                sum += double(dy_nk[p * s.Q + q]) * x_nc[h * s.W + v];
              }
            }
          }
          float& out = dw[((int64_t(k) * Cg + c) * s.R + r) * s.S + t];  // dw (K, Cg, R, S)
          out = accumulate ? float(out + sum) : float(sum);
        }
      }
    }
  }
}

}  // namespace ref
}  // namespace kernels
