#pragma once
// Checkpoints as safetensors: every parameter under its graph name ("conv1.weight"), the momentum history of a
// training run under "history/<name>", and __metadata__ holding the graph's metadata (builder, options,
// preprocessing, classes), the iteration and the solver configuration. Written to a temp file and renamed.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/executor.h"
#include "engine/safetensors.h"
#include "engine/solver.h"

namespace massmap {

// solver may be null (weights only). extra metadata is merged over the graph's.
void save_checkpoint(const std::string& path, Executor& executor, const Solver* solver,
                     const std::map<std::string, std::string>& extra_metadata = {});
// Loads parameters (and, with a solver, the history and iteration). A missing, extra or mis-shaped tensor is a
// BadInput naming it; a parameter holding NaN or infinity a NumericalError naming the first (graph order); history
// tensors in the file are ignored when solver is null (inference from a training checkpoint). Returns the file's
// metadata.
std::map<std::string, std::string> load_checkpoint(const std::string& path, Executor& executor, Solver* solver);

// Loads the parameters of an inference graph (after for_inference, convolutionalize) from a training checkpoint
// or a plain weights file `file` read from `path`. Each parameter must be there in its checkpoint shape
// (Value::file_shape: a convolutionalized fc weight is stored as the classifier's); a missing or mis-shaped tensor
// is a BadInput naming it, a NaN or infinity a NumericalError naming the first such parameter. Solver history
// ("history/...") and the tensors named in `ignorable` (parameters of the training graph that inference drops:
// auxiliary heads) are skipped; any other tensor is a BadInput naming it. Returns the skipped tensors' names, sorted.
std::vector<std::string> load_inference_weights(const std::string& path, const TensorFile& file, Executor& executor,
                                                const std::set<std::string>& ignorable);

}  // namespace massmap
