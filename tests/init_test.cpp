// Initialisers: reproducible per (seed, name), independent across names, and with the distribution each filler
// promises (sample statistics of a large tensor within a few standard errors).
#include "engine/init.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

#include "base/errors.h"
#include "tests/support/check.h"

using namespace massmap;

namespace {

struct Stats {
  double mean = 0, std = 0, min = 0, max = 0;
};

Stats stats_of(const Tensor& t) {
  std::vector<float> v = t.to_vector();
  Stats s;
  double sum = 0, sum_sq = 0;
  for (float x : v) sum += x;
  s.mean = sum / double(v.size());
  for (float x : v) sum_sq += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(sum_sq / double(v.size() - 1));
  s.min = *std::min_element(v.begin(), v.end());
  s.max = *std::max_element(v.begin(), v.end());
  return s;
}

Tensor initialised(Shape shape, const InitSpec& spec, uint64_t seed = 42, const std::string& name = "w") {
  Tensor t(std::move(shape));
  initialise(t, spec, seed, name);
  return t;
}

InitSpec spec_of(const std::string& type) {
  InitSpec s;
  s.type = type;
  return s;
}

constexpr int64_t kLarge = 1 << 20;  // standard error of a mean: std / 1024

}  // namespace

TEST_CASE("same seed and name give the same values; another seed or name gives others") {
  InitSpec gaussian = spec_of("gaussian");
  Tensor a = initialised({64, 10}, gaussian, 1, "conv1/weight");
  Tensor b = initialised({64, 10}, gaussian, 1, "conv1/weight");
  CHECK(a.to_vector() == b.to_vector());
  CHECK(initialised({64, 10}, gaussian, 2, "conv1/weight").to_vector() != a.to_vector());
  CHECK(initialised({64, 10}, gaussian, 1, "conv2/weight").to_vector() != a.to_vector());

  // Values depend on the element index only, not on the tensor around it: a prefix of a longer tensor matches.
  Tensor longer = initialised({1000}, spec_of("uniform"), 5, "fc/weight");
  Tensor shorter = initialised({10}, spec_of("uniform"), 5, "fc/weight");
  for (int i = 0; i < 10; ++i) CHECK(shorter.at(i) == longer.at(i));
}

TEST_CASE("stream ids are FNV-1a of the name") {
  CHECK(init_stream_id("") == 0xcbf29ce484222325ull);
  CHECK(init_stream_id("a") == 0xaf63dc4c8601ec8cull);
  CHECK(init_stream_id("conv1/weight") != init_stream_id("conv1/bias"));
}

TEST_CASE("constant") {
  InitSpec spec = spec_of("constant");
  spec.value = 0.2f;
  for (float x : initialised({3, 4}, spec).to_vector()) CHECK(x == 0.2f);
  Tensor scalar = initialised({}, spec);
  CHECK(scalar.at(0) == 0.2f);
}

TEST_CASE("gaussian: mean and std") {
  InitSpec spec = spec_of("gaussian");
  spec.mean = 1.0f;
  spec.std = 2.0f;
  Stats s = stats_of(initialised({kLarge}, spec));
  CHECK(std::fabs(s.mean - 1.0) < 5 * 2.0 / 1024);
  CHECK(std::fabs(s.std - 2.0) < 0.01 * 2.0);
  CHECK(s.max > 1.0 + 4 * 2.0);  // 1M normal draws reach past 4 sigma (a Box-Muller tail check)
  CHECK(s.min < 1.0 - 4 * 2.0);
}

TEST_CASE("uniform: range, mean and std") {
  InitSpec spec = spec_of("uniform");
  spec.min = -3;
  spec.max = 5;
  Stats s = stats_of(initialised({kLarge}, spec));
  const double std = 8 / std::sqrt(12.0);
  CHECK(s.min >= -3.0);
  CHECK(s.max < 5.0);
  CHECK(s.min < -3.0 + 0.001);
  CHECK(s.max > 5.0 - 0.001);
  CHECK(std::fabs(s.mean - 1.0) < 5 * std / 1024);
  CHECK(std::fabs(s.std - std) < 0.01 * std);
}

TEST_CASE("xavier: uniform within +-sqrt(3 / fan_in), fan_in = numel / shape[0]") {
  Tensor t = initialised({128, 32, 16, 16}, spec_of("xavier"));  // fan_in 8192, 1M elements
  const double bound = std::sqrt(3.0 / 8192);
  Stats s = stats_of(t);
  CHECK(s.min >= -bound);
  CHECK(s.max <= bound);
  CHECK(s.max > 0.999 * bound);
  CHECK(s.min < -0.999 * bound);
  CHECK(std::fabs(s.std - std::sqrt(1.0 / 8192)) < 0.01 * std::sqrt(1.0 / 8192));
  CHECK(std::fabs(s.mean) < 5 * std::sqrt(1.0 / 8192) / 1024);
}

TEST_CASE("msra: gaussian with std sqrt(2 / fan_in)") {
  Tensor t = initialised({256, 4096}, spec_of("msra"));  // fan_in 4096, 1M elements
  const double std = std::sqrt(2.0 / 4096);
  Stats s = stats_of(t);
  CHECK(std::fabs(s.mean) < 5 * std / 1024);
  CHECK(std::fabs(s.std - std) < 0.01 * std);
}

TEST_CASE("bad specs are BadConfig") {
  Tensor t({4, 4});
  CHECK_THROWS_AS(initialise(t, spec_of("kaiming"), 1, "w"), BadConfig);
  InitSpec negative = spec_of("gaussian");
  negative.std = -1;
  CHECK_THROWS_AS(initialise(t, negative, 1, "w"), BadConfig);
  InitSpec reversed = spec_of("uniform");
  reversed.min = 2;
  reversed.max = 1;
  CHECK_THROWS_AS(initialise(t, reversed, 1, "w"), BadConfig);
  Tensor scalar(Shape{});
  CHECK_THROWS_AS(initialise(scalar, spec_of("xavier"), 1, "w"), BadConfig);
  try {
    initialise(t, spec_of("kaiming"), 1, "conv3/weight");
  } catch (const BadConfig& e) {
    CHECK(std::string(e.what()).find("conv3/weight") != std::string::npos);
    CHECK(std::string(e.what()).find("kaiming") != std::string::npos);
  }
}

TEST_CASE("JSON: parse, reject unknown keys and wrong types, round trip") {
  using nlohmann::json;
  InitSpec s = init_spec_from_json(json::parse(R"({"type": "gaussian", "std": 0.005, "mean": 1})"));
  CHECK(s.type == "gaussian");
  CHECK(s.std == 0.005f);
  CHECK(s.mean == 1.0f);
  CHECK(init_spec_from_json(json::object()).type == "constant");

  CHECK_THROWS_AS(init_spec_from_json(json::parse(R"({"type": "xavier", "sdt": 0.1})")), BadConfig);
  CHECK_THROWS_AS(init_spec_from_json(json::parse(R"({"type": "gaussian", "std": "0.1"})")), BadConfig);
  CHECK_THROWS_AS(init_spec_from_json(json::parse(R"({"type": 3})")), BadConfig);
  CHECK_THROWS_AS(init_spec_from_json(json::parse(R"({"type": "gaussain"})")), BadConfig);
  CHECK_THROWS_AS(init_spec_from_json(json::parse("[1]")), BadConfig);
  try {
    init_spec_from_json(json::parse(R"({"sdt": 0.1})"), "layers.conv1.weight_init");
  } catch (const BadConfig& e) {
    CHECK(std::string(e.what()).find("layers.conv1.weight_init") != std::string::npos);
    CHECK(std::string(e.what()).find("sdt") != std::string::npos);
  }

  InitSpec u = spec_of("uniform");
  u.min = -0.5f;
  u.max = 0.25f;
  InitSpec back = init_spec_from_json(init_spec_to_json(u));
  CHECK(back.type == u.type);
  CHECK(back.min == u.min);
  CHECK(back.max == u.max);
  CHECK(back.std == u.std);
  CHECK(back.mean == u.mean);
  CHECK(back.value == u.value);
}
