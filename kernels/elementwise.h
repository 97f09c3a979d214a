#pragma once
// Per-element ops on (N, C, H, W) activations: bias add and its reduction, ReLU, elementwise add, copy.
#include "kernels/placement.h"

namespace kernels {

struct ActShape {
  int N = 0, C = 0, H = 0, W = 0;
  Placement x, y;  // input and output (gradients placed like them); x and y may be the same memory (in place)
};

inline ActShape act_shape(int N, int C, int H, int W) {
  Placement p = Placement::dense(C, H, W);
  return {N, C, H, W, p, p};
}

namespace ref {
// y[n,c,h,w] = x[n,c,h,w] + b[c]
void bias_forward(const ActShape& s, const float* x, const float* b, float* y);
// db[c] (+)= sum_{n,h,w} dy[n,c,h,w]   (dy placed as s.y)
void bias_backward(const ActShape& s, const float* dy, float* db, bool accumulate);
// y = max(x, 0)
void relu_forward(const ActShape& s, const float* x, float* y);
// dx (+)= dy * (y > 0): reads the output, so it works after an in-place forward
void relu_backward(const ActShape& s, const float* y, const float* dy, float* dx, bool accumulate);
// y = a + b; a placed as s.x, b as b_place, y as s.y
void add_forward(const ActShape& s, const float* a, const Placement& b_place, const float* b, float* y);
// y (+)= x: the gradient of add, and concat when producers cannot write in place
void copy(const ActShape& s, const float* x, float* y, bool accumulate);
}  // namespace ref

}  // namespace kernels
