#include "engine/lr_policy.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "base/errors.h"

namespace massmap {
namespace {

bool known_type(const std::string& type) {
  for (const char* t : {"fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid"})
    if (type == t) return true;
  return false;
}

float number(const nlohmann::json& v, const std::string& key, const std::string& where) {
  if (!v.is_number()) throw BadConfig(where + ": '" + key + "' must be a number, got " + v.dump());
  return v.get<float>();
}

int64_t integer(const nlohmann::json& v, const std::string& key, const std::string& where) {
  if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)))
    throw BadConfig(where + ": '" + key + "' must be an integer, got " + v.dump());
  return v.get<int64_t>();
}

}  // namespace

double LrPolicy::rate(int64_t iter) const {
  validate();  // cheap, and keeps a bad policy (stepsize 0) from dividing by zero
  const double base = base_lr, g = gamma, p = power, it = double(iter);
  if (type == "fixed") return base;
  if (type == "step") return base * std::pow(g, double(iter / stepsize));
  if (type == "exp") return base * std::pow(g, it);
  if (type == "inv") return base * std::pow(1.0 + g * it, -p);
  if (type == "multistep") {
    // As Caffe's current_step, recomputed from the start so the rate does not depend on history.
    size_t step = 0;
    while (step < stepvalues.size() && iter >= stepvalues[step]) ++step;
    return base * std::pow(g, double(step));
  }
  if (type == "poly") {
    // Past max_iter Caffe's formula takes a power of a negative number; the rate stays at 0 instead.
    if (iter >= max_iter) return 0.0;
    return base * std::pow(1.0 - it / double(max_iter), p);
  }
  if (type == "sigmoid") return base / (1.0 + std::exp(-g * (it - double(stepsize))));
  return base;  // unreachable: validate() knows every type handled above
}

void LrPolicy::validate() const {
  if (!known_type(type))
    throw BadConfig("unknown lr policy '" + type + "' (known: fixed, step, exp, inv, multistep, poly, sigmoid)");
  if (!std::isfinite(base_lr) || base_lr < 0) throw BadConfig("lr policy: base_lr must be finite and >= 0");
  if (!std::isfinite(gamma) || !std::isfinite(power))
    throw BadConfig("lr policy '" + type + "': gamma and power must be finite");
  if (type == "step" && stepsize <= 0)
    throw BadConfig("lr policy 'step' needs stepsize > 0, got " + std::to_string(stepsize));
  if (type == "sigmoid" && stepsize < 0)
    throw BadConfig("lr policy 'sigmoid' needs stepsize >= 0 (the centre iteration), got " + std::to_string(stepsize));
  if (type == "poly" && max_iter <= 0)
    throw BadConfig("lr policy 'poly' needs max_iter > 0, got " + std::to_string(max_iter));
  if (type == "multistep") {
    if (stepvalues.empty()) throw BadConfig("lr policy 'multistep' needs at least one stepvalue");
    for (size_t i = 0; i < stepvalues.size(); ++i)
      if (stepvalues[i] < 0 || (i > 0 && stepvalues[i] <= stepvalues[i - 1]))
        throw BadConfig("lr policy 'multistep' needs non-negative, strictly increasing stepvalues");
  }
}

LrPolicy lr_policy_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw BadConfig(where + ": an lr policy must be a JSON object, got " + j.dump());
  LrPolicy policy;
  for (const auto& item : j.items()) {
    const std::string& key = item.key();
    const nlohmann::json& v = item.value();
    if (key == "type") {
      if (!v.is_string()) throw BadConfig(where + ": 'type' must be a string, got " + v.dump());
      policy.type = v.get<std::string>();
    } else if (key == "base_lr") {
      policy.base_lr = number(v, key, where);
    } else if (key == "gamma") {
      policy.gamma = number(v, key, where);
    } else if (key == "power") {
      policy.power = number(v, key, where);
    } else if (key == "stepsize") {
      policy.stepsize = integer(v, key, where);
    } else if (key == "max_iter") {
      policy.max_iter = integer(v, key, where);
    } else if (key == "stepvalues") {
      if (!v.is_array()) throw BadConfig(where + ": 'stepvalues' must be an array of integers, got " + v.dump());
      for (const auto& s : v) policy.stepvalues.push_back(integer(s, key, where));
    } else {
      throw BadConfig(where + ": unknown key '" + key +
                      "' (known: type, base_lr, gamma, power, stepsize, stepvalues, max_iter)");
    }
  }
  // Defaults that would silently change the schedule must be stated.
  auto require = [&](const char* type, const char* key) {
    if (policy.type == type && !j.contains(key))
      throw BadConfig(where + ": lr policy '" + policy.type + "' needs '" + key + "'");
  };
  require("step", "stepsize");
  require("sigmoid", "stepsize");
  require("multistep", "stepvalues");
  require("poly", "max_iter");
  try {
    policy.validate();
  } catch (const BadConfig& e) {
    throw BadConfig(where + ": " + e.what());
  }
  return policy;
}

nlohmann::json lr_policy_to_json(const LrPolicy& policy) {
  return {{"type", policy.type},        {"base_lr", policy.base_lr},   {"gamma", policy.gamma},
          {"power", policy.power},      {"stepsize", policy.stepsize}, {"stepvalues", policy.stepvalues},
          {"max_iter", policy.max_iter}};
}

}  // namespace massmap
