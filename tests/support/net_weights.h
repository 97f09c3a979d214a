#pragma once
// Seeded He-scaled weights for whole nets in tests: every parameter drawn from its name (so a classifier and its
// convolutionalized twin get the same values), weights normal(0, sqrt(2 / fan_in)) so activations stay alive
// through deep nets, biases normal(0, 0.05) so a wrong bias shows, batch norms' running variances uniform(0.5, 2).
#include <cstdint>
#include <memory>

#include "engine/executor.h"
#include "engine/init.h"

namespace testing_support {

inline void he_weights(massmap::Executor& ex, uint64_t seed) {
  using namespace massmap;
  const Graph& g = ex.graph();
  for (ValueId p : g.params()) {
    const Value& v = g.value(p);
    Tensor t(v.file_shape());
    InitSpec spec;
    const bool variance = v.name.size() > 12 && v.name.compare(v.name.size() - 12, 12, ".running_var") == 0;
    if (variance) {  // a batch norm's running variance must be positive
      spec.type = "uniform";
      spec.min = 0.5f;
      spec.max = 2.f;
    } else if (v.shape.size() == 1) {
      spec.type = "gaussian";
      spec.std = 0.05f;
    } else {
      spec.type = "msra";
    }
    initialise(t, spec, seed, v.name);
    ex.tensor(p).copy_from(t);
  }
}

// One training step (forward and backward) of g on x and labels from he_weights(seed 4). dropout: dropout on with its
// seeded masks (RunContext::training); off, the step is a deterministic function of the weights.
inline std::unique_ptr<massmap::Executor> training_step(const massmap::Graph& g, massmap::Device device,
                                                        const massmap::Tensor& x, const massmap::Tensor& labels,
                                                        bool dropout) {
  using namespace massmap;
  ExecutorOptions eo;
  eo.device = device;
  eo.training = true;
  auto ex = std::make_unique<Executor>(g, eo);
  he_weights(*ex, 4);
  ex->set_input("data", x);
  ex->set_input("label", labels);
  RunContext run;
  run.training = dropout;
  ex->forward(run);
  ex->backward(run);
  return ex;
}

}  // namespace testing_support
