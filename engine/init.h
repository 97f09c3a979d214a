#pragma once
// Parameter initialisers, as Caffe's fillers. Each draw comes from Philox at (seed, stream, index) where the
// stream is a hash of the parameter's name, so a parameter's initial values depend only on the seed, its name
// and its shape: adding, removing or reordering other parameters changes nothing.
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "engine/tensor.h"

namespace massmap {

struct InitSpec {
  std::string type = "constant";  // constant | gaussian | uniform | xavier | msra
  float value = 0;                // constant
  float std = 0.01f, mean = 0;    // gaussian
  float min = 0, max = 1;         // uniform
};

// Throws BadConfig for an unknown type or impossible parameters (negative std, min > max); `where` names the
// parameter or config entry in the message.
void validate(const InitSpec& spec, const std::string& where);

// Fills a CPU tensor:
//   constant  value
//   gaussian  normal(mean, std)
//   uniform   uniform [min, max)
//   xavier    uniform in +-sqrt(3 / fan_in), fan_in = numel / shape[0] (Caffe's default FAN_IN)
//   msra      normal(0, sqrt(2 / fan_in))
void initialise(Tensor& t, const InitSpec& spec, uint64_t seed, const std::string& name);

// The Philox stream of a parameter: FNV-1a of its name (stable across runs, compilers and platforms).
uint64_t init_stream_id(const std::string& name);

// JSON {"type": ..., "value": ..., "std": ..., "mean": ..., "min": ..., "max": ...}; every key optional (defaults
// above), unknown keys and wrongly typed values are BadConfig naming `where`.
InitSpec init_spec_from_json(const nlohmann::json& j, const std::string& where = "init");
nlohmann::json init_spec_to_json(const InitSpec& spec);

}  // namespace massmap
