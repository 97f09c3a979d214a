// Learning-rate policies against values worked out by hand, at and around each policy's boundaries.
#include "engine/lr_policy.h"

#include <nlohmann/json.hpp>

#include "base/errors.h"
#include "tests/support/check.h"

using namespace massmap;
using doctest::Approx;

namespace {

LrPolicy policy(const std::string& type, float base_lr, float gamma = 0.1f, float power = 1) {
  LrPolicy p;
  p.type = type;
  p.base_lr = base_lr;
  p.gamma = gamma;
  p.power = power;
  return p;
}

}  // namespace

TEST_CASE("fixed") {
  LrPolicy p = policy("fixed", 0.01f);
  CHECK(p.rate(0) == Approx(0.01));
  CHECK(p.rate(123456) == Approx(0.01));
}

TEST_CASE("step: base_lr * gamma^floor(iter / stepsize)") {
  LrPolicy p = policy("step", 0.01f, 0.1f);
  p.stepsize = 100;
  CHECK(p.rate(0) == Approx(0.01));
  CHECK(p.rate(99) == Approx(0.01));
  CHECK(p.rate(100) == Approx(0.001));
  CHECK(p.rate(199) == Approx(0.001));
  CHECK(p.rate(300) == Approx(0.00001));
}

TEST_CASE("exp: base_lr * gamma^iter") {
  LrPolicy p = policy("exp", 0.1f, 0.5f);
  CHECK(p.rate(0) == Approx(0.1));
  CHECK(p.rate(1) == Approx(0.05));
  CHECK(p.rate(3) == Approx(0.0125));
}

TEST_CASE("inv: base_lr * (1 + gamma * iter)^-power") {
  LrPolicy p = policy("inv", 0.01f, 1e-4f, 0.75f);
  CHECK(p.rate(0) == Approx(0.01));
  CHECK(p.rate(10000) == Approx(0.005946035575));  // 2^-0.75 = 0.5946035575
  CHECK(p.rate(30000) == Approx(0.003535533906));  // 4^-0.75 = 0.3535533906
}

TEST_CASE("multistep: drops by gamma at each stepvalue") {
  LrPolicy p = policy("multistep", 1.0f, 0.5f);
  p.stepvalues = {10, 20, 40};
  CHECK(p.rate(0) == Approx(1.0));
  CHECK(p.rate(9) == Approx(1.0));
  CHECK(p.rate(10) == Approx(0.5));
  CHECK(p.rate(19) == Approx(0.5));
  CHECK(p.rate(20) == Approx(0.25));
  CHECK(p.rate(39) == Approx(0.25));
  CHECK(p.rate(40) == Approx(0.125));
  CHECK(p.rate(100000) == Approx(0.125));
  CHECK(p.rate(15) == Approx(0.5));  // no history: asking out of order gives the same answer
}

TEST_CASE("poly: base_lr * (1 - iter / max_iter)^power") {
  LrPolicy p = policy("poly", 0.02f, 0.1f, 2.0f);
  p.max_iter = 1000;
  CHECK(p.rate(0) == Approx(0.02));
  CHECK(p.rate(500) == Approx(0.005));    // 0.02 * 0.5^2
  CHECK(p.rate(750) == Approx(0.00125));  // 0.02 * 0.25^2
  CHECK(p.rate(1000) == 0.0);
  CHECK(p.rate(1500) == 0.0);
  p.power = 1;
  CHECK(p.rate(250) == Approx(0.015));
}

TEST_CASE("sigmoid: base_lr / (1 + exp(-gamma * (iter - stepsize)))") {
  LrPolicy p = policy("sigmoid", 0.1f, -0.01f);
  p.stepsize = 500;
  CHECK(p.rate(500) == Approx(0.05));
  CHECK(p.rate(0) == Approx(0.0993307149));     // 1 / (1 + e^-5)
  CHECK(p.rate(1000) == Approx(0.0006692851));  // 1 / (1 + e^5)
}

TEST_CASE("validate: unknown type and missing or invalid parameters are BadConfig") {
  CHECK_THROWS_AS(policy("cosine", 0.1f).validate(), BadConfig);
  CHECK_THROWS_AS(policy("cosine", 0.1f).rate(0), BadConfig);
  LrPolicy step = policy("step", 0.1f);
  step.stepsize = 0;
  CHECK_THROWS_AS(step.validate(), BadConfig);
  CHECK_THROWS_AS(step.rate(5), BadConfig);
  CHECK_THROWS_AS(policy("poly", 0.1f).validate(), BadConfig);  // max_iter 0
  CHECK_THROWS_AS(policy("multistep", 0.1f).validate(), BadConfig);
  LrPolicy unordered = policy("multistep", 0.1f);
  unordered.stepvalues = {20, 10};
  CHECK_THROWS_AS(unordered.validate(), BadConfig);
  CHECK_THROWS_AS(policy("fixed", -0.1f).validate(), BadConfig);
  CHECK_NOTHROW(policy("fixed", 0.1f).validate());
}

TEST_CASE("JSON: parse, required keys per type, unknown keys rejected, round trip") {
  using nlohmann::json;
  LrPolicy p = lr_policy_from_json(json::parse(R"({"type": "step", "base_lr": 0.05, "gamma": 0.5, "stepsize": 7})"));
  CHECK(p.type == "step");
  CHECK(p.base_lr == 0.05f);
  CHECK(p.gamma == 0.5f);
  CHECK(p.stepsize == 7);
  CHECK(p.rate(7) == Approx(0.025));

  CHECK_THROWS_AS(lr_policy_from_json(json::parse(R"({"type": "step"})")), BadConfig);
  CHECK_THROWS_AS(lr_policy_from_json(json::parse(R"({"type": "sigmoid", "gamma": -0.1})")), BadConfig);
  CHECK_THROWS_AS(lr_policy_from_json(json::parse(R"({"type": "poly", "power": 0.9})")), BadConfig);
  CHECK_THROWS_AS(lr_policy_from_json(json::parse(R"({"type": "multistep"})")), BadConfig);
  CHECK_THROWS_AS(lr_policy_from_json(json::parse(R"({"type": "step", "stepsize": 1.5})")), BadConfig);
  CHECK_THROWS_AS(lr_policy_from_json(json::parse(R"({"type": "multistep", "stepvalues": [1, "2"]})")), BadConfig);
  CHECK_THROWS_AS(lr_policy_from_json(json::parse(R"({"type": "fixed", "momentum": 0.9})")), BadConfig);
  try {
    lr_policy_from_json(json::parse(R"({"lr": 0.1})"), "solver.lr_policy");
    FAIL_CHECK("no BadConfig");
  } catch (const BadConfig& e) {
    CHECK(std::string(e.what()).find("solver.lr_policy") != std::string::npos);
    CHECK(std::string(e.what()).find("'lr'") != std::string::npos);
  }

  LrPolicy multi = policy("multistep", 0.01f, 0.2f);
  multi.stepvalues = {100, 300};
  LrPolicy back = lr_policy_from_json(lr_policy_to_json(multi));
  CHECK(back.type == "multistep");
  CHECK(back.base_lr == multi.base_lr);
  CHECK(back.gamma == multi.gamma);
  CHECK(back.stepvalues == multi.stepvalues);
  for (int64_t it : {0, 99, 100, 300, 1000}) CHECK(back.rate(it) == multi.rate(it));
}
