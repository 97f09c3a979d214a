#pragma once
// Small helpers shared by the op definitions: shape checks and kernel-argument conversions.
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/op.h"
#include "kernels/elementwise.h"

namespace massmap::ops {

inline void require_rank(const Node& n, const std::vector<Shape>& in, size_t i, size_t rank, const char* what) {
  if (in.at(i).size() != rank)
    shape_error(
        n, in, std::string(what) + " must have " + std::to_string(rank) + " dimensions, has shape " + shape_str(in[i]));
}

inline int64_t bytes_of(const std::vector<Shape>& in, const std::vector<Shape>& out) {
  int64_t elems = 0;
  for (const Shape& s : in) elems += shape_numel(s);
  for (const Shape& s : out) elems += shape_numel(s);
  return elems * int64_t(sizeof(float));
}

// The (N, C, H, W) shape of an op reading x and writing y, each with its placement: N, C, H, W taken from x.
// ActShape for per-element ops; SoftmaxShape has the same fields.
template <class S = kernels::ActShape>
S act(const TensorArg& x, const TensorArg& y) {
  S s;
  s.N = x.n();
  s.C = x.c();
  s.H = x.h();
  s.W = x.w();
  s.x = x.place;
  s.y = y.place;
  return s;
}

inline Cost elementwise_cost(const Node&, const std::vector<Shape>& in, const std::vector<Shape>& out) {
  return {0, bytes_of(in, out)};
}

}  // namespace massmap::ops
