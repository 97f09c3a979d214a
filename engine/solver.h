#pragma once
// SGD with momentum and weight decay (Caffe's update order, see kernels/sgd.h), a learning-rate policy, and the
// iteration counter. The counter is the only random state of a step: dropout masks are drawn from
// (node seed, iteration), so a resumed run repeats the same steps exactly.
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "engine/executor.h"
#include "engine/lr_policy.h"

namespace massmap {

struct SolverConfig {
  LrPolicy lr;
  float momentum = 0.9f;
  float weight_decay = 5e-4f;
  int64_t max_iter = 1000;
};

SolverConfig solver_config_from_json(const nlohmann::json& j, const std::string& where = "solver");
nlohmann::json solver_config_to_json(const SolverConfig& c);

class Solver {
 public:
  Solver(Executor& executor, SolverConfig config);

  // Fills every parameter from its ParamSpec's initialiser, seeded per parameter name.
  void initialise_parameters(uint64_t seed);
  // One step on the inputs already set: forward with dropout, a finite-loss check, backward, update.
  // Returns the loss before the update. Throws NumericalError naming the iteration on a NaN or infinite loss.
  double step();

  int64_t iteration() const { return iteration_; }
  void set_iteration(int64_t it) { iteration_ = it; }
  RunContext context(bool training) const;
  const SolverConfig& config() const { return config_; }
  Executor& executor() { return executor_; }

 private:
  Executor& executor_;
  SolverConfig config_;
  int64_t iteration_ = 0;
};

}  // namespace massmap
