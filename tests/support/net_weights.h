#pragma once
// Seeded He-scaled weights for whole nets in tests: every parameter drawn from its name (so a classifier and its
// convolutionalized twin get the same values), weights normal(0, sqrt(2 / fan_in)) so activations stay alive
// through deep nets, biases normal(0, 0.05) so a wrong bias shows, batch norms' running variances uniform(0.5, 2).
#include <cstdint>

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

}  // namespace testing_support
