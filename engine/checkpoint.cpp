#include "engine/checkpoint.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/errors.h"
#include "base/parse_number.h"
#include "engine/checkpoint_metadata.h"
#include "engine/safetensors.h"

namespace massmap {

namespace {
const char* kHistory = "history/";
const char* kFormat = "massmap-checkpoint-1";

// Non-finite weights give NaN outputs with every appearance of success (nets forward wrote NaN probabilities).
void check_finite(const std::string& path, const Graph& g, const std::map<std::string, Tensor>& tensors) {
  for (ValueId p : g.params()) {
    const std::string& name = g.value(p).name;
    const Tensor& t = tensors.at(name);
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(t.at(i)))
        throw NumericalError("'" + path + "': tensor '" + name + "' holds " + std::to_string(t.at(i)) + " at element " +
                             std::to_string(i) + " (non-finite weights)");
  }
}
}  // namespace

void save_checkpoint(const std::string& path, Executor& executor, const Solver* solver,
                     const std::map<std::string, std::string>& extra_metadata) {
  const Graph& g = executor.graph();
  TensorFile file;
  file.metadata = g.metadata;
  for (const auto& [k, v] : extra_metadata) file.metadata[k] = v;
  file.metadata["format"] = kFormat;
  for (ValueId p : g.params())
    file.tensors[g.value(p).name] = executor.tensor(p).to(Device::cpu).reshape(g.value(p).file_shape());
  if (solver) {
    for (ValueId p : g.params()) {
      const std::string name = kHistory + g.value(p).name;
      file.tensors[name] = executor.tensor(name).to(Device::cpu).reshape(g.value(p).file_shape());
    }
    file.metadata["iteration"] = std::to_string(solver->iteration());
    file.metadata["solver"] = solver_config_to_json(solver->config()).dump();
  }
  write_safetensors(path, file);
}

std::map<std::string, std::string> load_checkpoint(const std::string& path, Executor& executor, Solver* solver) {
  const Graph& g = executor.graph();
  TensorFile file = read_safetensors(path);
  std::map<std::string, Shape> expected;
  for (ValueId p : g.params()) {
    expected[g.value(p).name] = g.value(p).file_shape();
    if (solver) expected[kHistory + g.value(p).name] = g.value(p).file_shape();
  }
  if (!solver)
    for (auto it = file.tensors.begin(); it != file.tensors.end();)
      it = it->first.rfind(kHistory, 0) == 0 ? file.tensors.erase(it) : std::next(it);
  check_tensor_set(path, expected, file.tensors);
  check_finite(path, g, file.tensors);
  for (const auto& [name, t] : file.tensors) executor.tensor(name).copy_from(t);
  if (solver) {
    auto it = file.metadata.find("iteration");
    if (it == file.metadata.end())
      throw BadInput(path + ": no 'iteration' in __metadata__: a weights-only file cannot resume training");
    solver->set_iteration(metadata::integer(it->second, metadata::iteration, path, 0, metadata::kMaxIteration));
  }
  return file.metadata;
}

std::vector<std::string> load_inference_weights(const std::string& path, const TensorFile& file, Executor& executor,
                                                const std::set<std::string>& ignorable) {
  const Graph& g = executor.graph();
  std::map<std::string, Shape> expected;
  for (ValueId p : g.params()) expected[g.value(p).name] = g.value(p).file_shape();
  std::map<std::string, Tensor> used;
  std::vector<std::string> ignored;
  for (const auto& [name, t] : file.tensors) {
    if (!expected.count(name) && (name.rfind(kHistory, 0) == 0 || ignorable.count(name)))
      ignored.push_back(name);
    else
      used[name] = t;
  }
  check_tensor_set(path, expected, used);
  check_finite(path, g, used);
  for (ValueId p : g.params()) executor.tensor(p).copy_from(used.at(g.value(p).name));
  return ignored;
}

namespace metadata {

const std::string& require(const std::map<std::string, std::string>& m, const std::string& key, const std::string& file,
                           const std::string& needed_by) {
  auto it = m.find(key);
  if (it == m.end())
    throw BadInput(file + ": __metadata__ has no '" + key + "', which " + needed_by +
                   " needs (README: checkpoint metadata)");
  return it->second;
}

int64_t integer(const std::string& value, const std::string& key, const std::string& file, int64_t lo, int64_t hi) {
  const auto v = parse_integer(value, lo, hi);
  if (!v)
    throw BadInput(file + ": __metadata__ " + key + " '" + value + "' is not an integer in " + range_text(lo, hi));
  return *v;
}

double number(const std::string& value, const std::string& key, const std::string& file, double lo, double hi) {
  const auto v = parse_decimal(value);
  if (!v || *v < lo || *v > hi) {
    char range[64];
    std::snprintf(range, sizeof range, "[%g, %g]", lo, hi);
    throw BadInput(file + ": __metadata__ " + key + " '" + value + "' is not a number in " + range);
  }
  return *v;
}

}  // namespace metadata

}  // namespace massmap
