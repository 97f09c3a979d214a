#pragma once
// Caffe's learning-rate policies. rate() is a pure function of the iteration (no hidden step counter), so a
// resumed run gets exactly the rates an uninterrupted one would.
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace massmap {

struct LrPolicy {
  std::string type = "fixed";  // fixed | step | exp | inv | multistep | poly | sigmoid
  float base_lr = 0.01f;
  float gamma = 0.1f;
  float power = 1;
  int64_t stepsize = 1;             // step: period; sigmoid: centre
  std::vector<int64_t> stepvalues;  // multistep: iterations where the rate drops, increasing
  int64_t max_iter = 0;             // poly: the rate reaches 0 here

  // fixed      base_lr
  // step       base_lr * gamma^floor(iter / stepsize)
  // exp        base_lr * gamma^iter
  // inv        base_lr * (1 + gamma * iter)^-power
  // multistep  base_lr * gamma^(number of stepvalues <= iter)
  // poly       base_lr * (1 - iter / max_iter)^power, 0 from max_iter on
  // sigmoid    base_lr / (1 + exp(-gamma * (iter - stepsize)))
  double rate(int64_t iter) const;

  // BadConfig for an unknown type or a parameter the type needs that is missing or invalid.
  void validate() const;
};

// JSON with the struct's field names; every key optional (defaults above) except those the type needs:
// stepsize for step and sigmoid, stepvalues for multistep, max_iter for poly. Unknown keys are BadConfig.
LrPolicy lr_policy_from_json(const nlohmann::json& j, const std::string& where = "lr_policy");
nlohmann::json lr_policy_to_json(const LrPolicy& policy);

}  // namespace massmap
