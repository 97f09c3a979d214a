#pragma once
// A logical (N, C, H, W) tensor stored as channels [offset, offset + C) of a wider (N, C_total, H, W) buffer, for
// testing kernels on placements. The whole buffer starts with seeded random values, so a test can check that
// entries outside the slice survive a kernel call and that `accumulate` adds to what was there.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/placement.h"
#include "tests/support/check.h"

namespace testing_support {

class PlacedTensor {
 public:
  PlacedTensor(int N, int C, int H, int W, int C_total, int offset, uint64_t fill_seed)
      : N_(N), C_(C), H_(H), W_(W), C_total_(C_total), offset_(offset) {
    REQUIRE(offset + C <= C_total);
    place_ = {int64_t(C_total) * H * W, int64_t(H) * W, offset};
    buffer_ = random_vector(size_t(N) * C_total * H * W, fill_seed);
  }
  // A dense tensor: no room around it.
  PlacedTensor(int N, int C, int H, int W, uint64_t fill_seed) : PlacedTensor(N, C, H, W, C, 0, fill_seed) {}

  const kernels::Placement& place() const { return place_; }
  float* data() { return buffer_.data(); }
  const float* data() const { return buffer_.data(); }
  const std::vector<float>& buffer() const { return buffer_; }
  size_t size() const { return size_t(N_) * C_ * H_ * W_; }  // logical element count

  // The slice as a dense (N, C, H, W) vector.
  std::vector<float> logical() const {
    std::vector<float> out(size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = buffer_[buffer_index(i)];
    return out;
  }
  void set_logical(const std::vector<float>& values) {
    // Throws rather than REQUIRE: this runs inside gradient-check loops, and doctest counts every assertion.
    if (values.size() != size()) throw std::invalid_argument("set_logical: wrong number of values");
    for (size_t i = 0; i < values.size(); ++i) buffer_[buffer_index(i)] = values[i];
  }

  // Checks that every entry outside the slice still equals `before` (a copy of buffer() taken earlier).
  void expect_outside_unchanged(const std::vector<float>& before, const std::string& what) const {
    REQUIRE(before.size() == buffer_.size());
    size_t changed = 0;
    const size_t plane = size_t(H_) * W_;
    for (size_t i = 0; i < buffer_.size(); ++i) {
      const int channel = int(i / plane % size_t(C_total_));
      const bool inside = channel >= offset_ && channel < offset_ + C_;
      if (!inside && buffer_[i] != before[i]) ++changed;
    }
    CHECK_MESSAGE(changed == 0, what << ": " << changed << " entries outside the channel slice changed");
  }

 private:
  // Buffer position of logical element i = ((n*C + c)*H + h)*W + w.
  size_t buffer_index(size_t i) const {
    const size_t plane = size_t(H_) * W_;
    const size_t n = i / (plane * C_), c = i / plane % C_, pixel = i % plane;
    return n * place_.batch_stride + (offset_ + c) * place_.channel_stride + pixel;
  }

  int N_, C_, H_, W_, C_total_, offset_;
  kernels::Placement place_;
  std::vector<float> buffer_;  // (N, C_total, H, W)
};

// The per-entry difference after - before: the gradient a kernel added when it ran with accumulate on.
inline std::vector<float> difference(const std::vector<float>& after, const std::vector<float>& before) {
  std::vector<float> out(after.size());
  for (size_t i = 0; i < after.size(); ++i) out[i] = after[i] - before[i];
  return out;
}

}  // namespace testing_support
