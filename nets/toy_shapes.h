#pragma once
// A generated two-class image task for proving that the engine learns: every image is smooth noise with one
// bright object; class 1 objects are round blobs (a stand-in for a mass), class 0 objects are thin bars of the
// same brightness at a random angle (a stand-in for a vessel). Size, position, angle and contrast vary, so the
// net must learn shape, not intensity. Image i of a set is a pure function of (seed, i).
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace massmap::nets {

struct ToyShapesOptions {
  int count = 1024;
  int size = 24;        // image height and width
  float noise = 0.35f;  // standard deviation of the background noise
  uint64_t seed = 1;
};

struct ToyShapes {
  Tensor images;              // (count, 1, size, size)
  std::vector<float> labels;  // (count): 0 bar, 1 blob; classes alternate so every batch is balanced
};

ToyShapes make_toy_shapes(const ToyShapesOptions& options);

}  // namespace massmap::nets
