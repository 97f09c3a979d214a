#pragma once
// Shared test helpers: seeded random data, element-wise comparison with a named first mismatch, and a
// central-difference gradient check (Caffe style: step eps, error relative to max(|analytic|, |numeric|, 1)).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace testing_support {

// splitmix64: a tiny seeded generator for test data (the engine's own RNG is tested separately).
class TestRng {
 public:
  explicit TestRng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform(float lo = -1.f, float hi = 1.f) { return lo + (hi - lo) * float((next() >> 40) * 0x1.0p-24); }
  int integer(int lo, int hi) { return lo + int(next() % uint64_t(hi - lo + 1)); }  // inclusive

 private:
  uint64_t state_;
};

inline std::vector<float> random_vector(size_t n, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  TestRng rng(seed);
  std::vector<float> v(n);
  for (auto& e : v) e = rng.uniform(lo, hi);
  return v;
}

// Asserts |a[i] - b[i]| <= atol + rtol * |b[i]| for all i; reports the first failing index and the count.
inline void expect_close(const std::vector<float>& a, const std::vector<float>& b, float atol, float rtol,
                         const std::string& what) {
  REQUIRE_MESSAGE(a.size() == b.size(), what << ": sizes " << a.size() << " vs " << b.size());
  size_t bad = 0, first = 0;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double err = std::fabs(double(a[i]) - double(b[i]));
    bool ok = err <= atol + rtol * std::fabs(double(b[i])) && std::isfinite(a[i]) == std::isfinite(b[i]);
    if (!ok) {
      if (bad == 0) first = i;
      ++bad;
    }
    if (err > worst) worst = err;
  }
  std::ostringstream msg;
  if (bad)
    msg << what << ": " << bad << " of " << a.size() << " differ; first at " << first << ": " << a[first] << " vs "
        << b[first] << " (max abs err " << worst << ")";
  CHECK_MESSAGE(bad == 0, msg.str());
}

// |got - want| <= rel (max(1, max |want|) + |want|): a tolerance relative to the buffer's magnitude.
inline void expect_near_scaled(const std::vector<float>& got, const std::vector<float>& want, float rel,
                               const std::string& what) {
  float scale = 1.f;
  for (float v : want) scale = std::max(scale, std::fabs(v));
  expect_close(got, want, rel * scale, rel, what);
}

struct GradCheckOptions {
  float eps = 1e-2f;         // central-difference step
  float tolerance = 2e-2f;   // allowed |analytic - numeric| / max(|analytic|, |numeric|, 1)
  size_t max_entries = 150;  // entries checked per tensor (a seeded sample when the tensor is larger)
  uint64_t seed = 1;
};

// Checks analytic[i] == d loss / d x[i] for entries of x by central differences. loss() must evaluate the scalar
// loss from the current contents of x (in double). skip(i) lets a caller skip entries at a kink (ReLU at 0, a
// max-pool tie) where the derivative does not exist. Returns the number of entries checked.
inline size_t check_gradient(std::vector<float>& x, const std::vector<float>& analytic,
                             const std::function<double()>& loss, const std::string& what, GradCheckOptions opt = {},
                             const std::function<bool(size_t)>& skip = nullptr) {
  REQUIRE_MESSAGE(x.size() == analytic.size(),
                  what << ": gradient has " << analytic.size() << " entries, x has " << x.size());
  std::vector<size_t> entries;
  if (x.size() <= opt.max_entries) {
    for (size_t i = 0; i < x.size(); ++i) entries.push_back(i);
  } else {
    TestRng rng(opt.seed);
    for (size_t k = 0; k < opt.max_entries; ++k) entries.push_back(size_t(rng.next() % x.size()));
  }
  size_t checked = 0, bad = 0;
  std::ostringstream first;
  for (size_t i : entries) {
    if (skip && skip(i)) continue;
    const float saved = x[i];
    x[i] = saved + opt.eps;
    const double up = loss();
    x[i] = saved - opt.eps;
    const double down = loss();
    x[i] = saved;
    const double numeric = (up - down) / (2.0 * opt.eps);
    const double scale = std::max({std::fabs(numeric), std::fabs(double(analytic[i])), 1.0});
    if (std::fabs(numeric - analytic[i]) > opt.tolerance * scale || !std::isfinite(analytic[i])) {
      if (bad == 0) first << "entry " << i << ": analytic " << analytic[i] << ", numeric " << numeric;
      ++bad;
    }
    ++checked;
  }
  CHECK_MESSAGE(bad == 0, what << ": " << bad << " of " << checked << " entries wrong; first " << first.str());
  CHECK_MESSAGE(checked > 0, what << ": no entry was checked");
  return checked;
}

// sum_i y[i] * r[i] in double: the scalar loss whose gradient with respect to y is r.
inline double weighted_sum(const std::vector<float>& y, const std::vector<float>& r) {
  double s = 0;
  for (size_t i = 0; i < y.size(); ++i) s += double(y[i]) * double(r[i]);
  return s;
}

}  // namespace testing_support
