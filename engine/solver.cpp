#include "engine/solver.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "base/errors.h"
#include "engine/init.h"

namespace massmap {

SolverConfig solver_config_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw BadConfig(where + ": expected a JSON object");
  SolverConfig c;
  for (const auto& [key, value] : j.items()) {
    try {
      if (key == "lr_policy")
        c.lr = lr_policy_from_json(value, where + ".lr_policy");
      else if (key == "momentum")
        c.momentum = value.get<float>();
      else if (key == "weight_decay")
        c.weight_decay = value.get<float>();
      else if (key == "max_iter")
        c.max_iter = value.get<int64_t>();
      else
        throw BadConfig(where + ": unknown key '" + key + "' (keys: lr_policy, momentum, weight_decay, max_iter)");
    } catch (const nlohmann::json::exception& e) {
      throw BadConfig(where + "." + key + ": " + e.what());
    }
  }
  if (c.momentum < 0 || c.momentum >= 1) throw BadConfig(where + ".momentum must be in [0, 1)");
  if (c.weight_decay < 0) throw BadConfig(where + ".weight_decay must be >= 0");
  if (c.max_iter < 0) throw BadConfig(where + ".max_iter must be >= 0");
  c.lr.validate();
  return c;
}

nlohmann::json solver_config_to_json(const SolverConfig& c) {
  return {{"lr_policy", lr_policy_to_json(c.lr)},
          {"momentum", c.momentum},
          {"weight_decay", c.weight_decay},
          {"max_iter", c.max_iter}};
}

Solver::Solver(Executor& executor, SolverConfig config) : executor_(executor), config_(std::move(config)) {
  if (!executor_.options().training) throw BadConfig("a solver needs an executor built for training");
  config_.lr.validate();
}

void Solver::initialise_parameters(uint64_t seed) {
  const Graph& g = executor_.graph();
  for (ValueId p : g.params()) {
    Tensor host(g.value(p).shape);  // initialisers run on the host
    initialise(host, g.value(p).param.init, seed, g.value(p).name);
    executor_.tensor(p).copy_from(host);
  }
}

RunContext Solver::context(bool training) const {
  RunContext run;
  run.iteration = iteration_;
  run.training = training;
  run.lr = float(config_.lr.rate(iteration_));
  run.momentum = config_.momentum;
  run.weight_decay = config_.weight_decay;
  return run;
}

double Solver::step() {
  RunContext run = context(true);
  executor_.forward(run);
  const double loss = executor_.loss();
  if (!std::isfinite(loss))
    throw NumericalError("loss is " + std::to_string(loss) + " at iteration " + std::to_string(iteration_) +
                         " (learning rate " + std::to_string(run.lr) + ")");
  executor_.backward(run);
  executor_.update(run);
  ++iteration_;
  return loss;
}

}  // namespace massmap
