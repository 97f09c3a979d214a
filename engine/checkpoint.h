#pragma once
// Checkpoints as safetensors: every parameter under its graph name ("conv1.weight"), the momentum history of a
// training run under "history/<name>", and __metadata__ holding the graph's metadata (builder, options,
// preprocessing, classes), the iteration and the solver configuration. Written to a temp file and renamed.
#include <map>
#include <string>

#include "engine/executor.h"
#include "engine/solver.h"

namespace massmap {

// solver may be null (weights only). extra metadata is merged over the graph's.
void save_checkpoint(const std::string& path, Executor& executor, const Solver* solver,
                     const std::map<std::string, std::string>& extra_metadata = {});
// Loads parameters (and, with a solver, the history and iteration). A missing, extra or mis-shaped tensor is a
// BadInput naming it; history tensors in the file are ignored when solver is null (inference from a training
// checkpoint). Returns the file's metadata.
std::map<std::string, std::string> load_checkpoint(const std::string& path, Executor& executor, Solver* solver);

}  // namespace massmap
