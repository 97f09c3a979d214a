#include "engine/init.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "base/errors.h"
#include "base/philox.h"

namespace massmap {
namespace {

// Caffe's fan_in, the number of inputs feeding one output unit.
double fan_in(const Tensor& t, const std::string& name, const std::string& type) {
  if (t.rank() == 0)
    throw BadConfig("parameter '" + name + "': " + type + " initialisation needs a tensor of rank >= 1");
  return double(t.numel() / t.dim(0));
}

void fill_uniform(Tensor& t, float lo, float hi, uint64_t seed, uint64_t stream) {
  float* p = t.data();
  for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = lo + (hi - lo) * uniform_at(seed, stream, uint64_t(i));
}

void fill_gaussian(Tensor& t, float mean, float std, uint64_t seed, uint64_t stream) {
  float* p = t.data();
  for (int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = mean + std * normal_at(seed, stream, uint64_t(i));
}

float number(const nlohmann::json& v, const std::string& key, const std::string& where) {
  if (!v.is_number()) throw BadConfig(where + ": '" + key + "' must be a number, got " + v.dump());
  return v.get<float>();
}

}  // namespace

void validate(const InitSpec& spec, const std::string& where) {
  const std::string& type = spec.type;
  if (type != "constant" && type != "gaussian" && type != "uniform" && type != "xavier" && type != "msra")
    throw BadConfig(where + ": unknown init type '" + type + "' (known: constant, gaussian, uniform, xavier, msra)");
  if (type == "gaussian" && !(spec.std >= 0 && std::isfinite(spec.std) && std::isfinite(spec.mean)))
    throw BadConfig(where + ": gaussian init needs a finite mean and std >= 0, got mean " + std::to_string(spec.mean) +
                    ", std " + std::to_string(spec.std));
  if (type == "uniform" && !(spec.min <= spec.max && std::isfinite(spec.min) && std::isfinite(spec.max)))
    throw BadConfig(where + ": uniform init needs finite min <= max, got [" + std::to_string(spec.min) + ", " +
                    std::to_string(spec.max) + "]");
  if (type == "constant" && !std::isfinite(spec.value)) throw BadConfig(where + ": constant init value must be finite");
}

uint64_t init_stream_id(const std::string& name) {
  uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a 64-bit offset basis
  for (unsigned char c : name) hash = (hash ^ c) * 0x100000001b3ull;
  return hash;
}

void initialise(Tensor& t, const InitSpec& spec, uint64_t seed, const std::string& name) {
  validate(spec, "parameter '" + name + "'");
  if (!t.defined() || t.device() != Device::cpu)
    throw Error("initialise: parameter '" + name + "' is undefined or not on the CPU");
  if (t.numel() == 0) return;
  const uint64_t stream = init_stream_id(name);
  if (spec.type == "constant") {
    t.fill(spec.value);
  } else if (spec.type == "gaussian") {
    fill_gaussian(t, spec.mean, spec.std, seed, stream);
  } else if (spec.type == "uniform") {
    fill_uniform(t, spec.min, spec.max, seed, stream);
  } else if (spec.type == "xavier") {
    const float scale = float(std::sqrt(3.0 / fan_in(t, name, spec.type)));
    fill_uniform(t, -scale, scale, seed, stream);
  } else if (spec.type == "msra") {
    fill_gaussian(t, 0.f, float(std::sqrt(2.0 / fan_in(t, name, spec.type))), seed, stream);
  }
}

InitSpec init_spec_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw BadConfig(where + ": an init spec must be a JSON object, got " + j.dump());
  InitSpec spec;
  for (const auto& item : j.items()) {
    const std::string& key = item.key();
    const nlohmann::json& v = item.value();
    if (key == "type") {
      if (!v.is_string()) throw BadConfig(where + ": 'type' must be a string, got " + v.dump());
      spec.type = v.get<std::string>();
    } else if (key == "value") {
      spec.value = number(v, key, where);
    } else if (key == "std") {
      spec.std = number(v, key, where);
    } else if (key == "mean") {
      spec.mean = number(v, key, where);
    } else if (key == "min") {
      spec.min = number(v, key, where);
    } else if (key == "max") {
      spec.max = number(v, key, where);
    } else {
      throw BadConfig(where + ": unknown key '" + key + "' (known: type, value, std, mean, min, max)");
    }
  }
  validate(spec, where);
  return spec;
}

nlohmann::json init_spec_to_json(const InitSpec& spec) {
  return {{"type", spec.type}, {"value", spec.value}, {"std", spec.std},
          {"mean", spec.mean}, {"min", spec.min},     {"max", spec.max}};
}

}  // namespace massmap
