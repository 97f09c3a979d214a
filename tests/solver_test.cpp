// The solver through the executor: per-parameter lr_mult / decay_mult, the policy's rate at each iteration and
// Caffe's update order, checked step by step against the update written out in double precision here; a NaN loss
// is a NumericalError naming the iteration.
#include "engine/solver.h"

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/errors.h"
#include "engine/autograd.h"
#include "nets/layers.h"
#include "tests/support/check.h"

using namespace massmap;

namespace {

Graph tiny_classifier() {
  Graph g;
  nets::LayerBuilder b(g);
  nets::Filler f;  // weights: lr_mult 1, decay_mult 1; biases: lr_mult 2, decay_mult 0 (Caffe's convention)
  ValueId x = g.add_input("data", {4, 3});
  ValueId label = g.add_input("label", {4});
  b.softmax_loss("loss", b.linear("fc", x, 2, f), label);
  return g;
}

}  // namespace

TEST_CASE("solver: lr_mult, decay_mult, the step policy and momentum, step by step") {
  ExecutorOptions opt;
  opt.training = true;
  Executor ex(tiny_classifier(), opt);
  SolverConfig config;
  config.lr.type = "step";
  config.lr.base_lr = 0.1f;
  config.lr.stepsize = 2;
  config.lr.gamma = 0.5f;
  config.momentum = 0.8f;
  config.weight_decay = 0.05f;
  Solver solver(ex, config);
  solver.initialise_parameters(9);
  auto x = testing_support::random_vector(12, 4);
  std::memcpy(ex.tensor("data").data(), x.data(), x.size() * sizeof(float));
  for (int i = 0; i < 4; ++i) ex.tensor("label").at(i) = float(i % 2);
  // fc.weight is gaussian(0.01) and fc.bias is 0: start from something less trivial.
  auto w0 = testing_support::random_vector(6, 5);
  std::memcpy(ex.tensor("fc.weight").data(), w0.data(), w0.size() * sizeof(float));

  const double rates[] = {0.1, 0.1, 0.05, 0.05, 0.025};
  for (int it = 0; it < 5; ++it) {
    CAPTURE(it);
    struct Expect {
      std::string name;
      double lr_mult, decay_mult;
      std::vector<float> w, h;
    };
    std::vector<Expect> before = {{"fc.weight", 1, 1, {}, {}}, {"fc.bias", 2, 0, {}, {}}};
    for (auto& e : before) {
      e.w = ex.tensor(e.name).to_vector();
      e.h = ex.tensor("history/" + e.name).to_vector();
    }
    CHECK(solver.context(true).lr == doctest::Approx(rates[it]));
    solver.step();
    CHECK(solver.iteration() == it + 1);
    for (const auto& e : before) {
      std::vector<float> g = ex.tensor(gradient_name(e.name)).to_vector();
      std::vector<float> w_expect(e.w.size()), h_expect(e.w.size());
      for (size_t i = 0; i < e.w.size(); ++i) {
        const double g_reg = double(g[i]) + 0.05 * e.decay_mult * e.w[i];
        const double h = 0.8 * e.h[i] + rates[it] * e.lr_mult * g_reg;
        h_expect[i] = float(h);
        w_expect[i] = float(e.w[i] - h);
      }
      testing_support::expect_close(ex.tensor("history/" + e.name).to_vector(), h_expect, 1e-7f, 1e-5f,
                                    "history of " + e.name);
      testing_support::expect_close(ex.tensor(e.name).to_vector(), w_expect, 1e-7f, 1e-5f, e.name);
    }
  }
}

TEST_CASE("solver: a NaN loss stops training with a NumericalError naming the iteration") {
  ExecutorOptions opt;
  opt.training = true;
  Executor ex(tiny_classifier(), opt);
  Solver solver(ex, SolverConfig{});
  solver.initialise_parameters(1);
  Tensor data = ex.tensor("data");
  data.fill(1.f);
  data.at(5) = std::nanf("");
  ex.tensor("label").fill(0.f);
  std::vector<float> w = ex.tensor("fc.weight").to_vector();
  try {
    solver.step();
    FAIL("a NaN loss was accepted");
  } catch (const NumericalError& e) {
    CHECK(std::string(e.what()).find("iteration 0") != std::string::npos);
  }
  CHECK(ex.tensor("fc.weight").to_vector() == w);  // nothing was updated
  CHECK(solver.iteration() == 0);
}

TEST_CASE("solver: configuration from JSON rejects unknown keys and bad values") {
  auto j = nlohmann::json::parse(R"({"lr_policy": {"type": "poly", "base_lr": 0.02, "power": 0.5, "max_iter": 100},
                                     "momentum": 0.9, "weight_decay": 0.0002, "max_iter": 100})");
  SolverConfig c = solver_config_from_json(j);
  CHECK(c.lr.rate(50) == doctest::Approx(0.02 * std::sqrt(0.5)));
  CHECK(c.weight_decay == doctest::Approx(2e-4));
  CHECK_THROWS_AS(solver_config_from_json(nlohmann::json::parse(R"({"momentun": 0.9})")), BadConfig);
  CHECK_THROWS_AS(solver_config_from_json(nlohmann::json::parse(R"({"momentum": 1.5})")), BadConfig);
}
