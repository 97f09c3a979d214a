#pragma once
// Typed reads of configuration JSON (PatchConfig, AugmentConfig): a wrong type is BadConfig naming
// "<config>.<key>" and the value, so a typo in a run's config file points at itself.
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "base/errors.h"

namespace massmap::data::json_fields {

inline double number(const nlohmann::json& v, const std::string& where, const std::string& key) {
  if (!v.is_number()) throw BadConfig(where + "." + key + " must be a number, got " + v.dump());
  return v.get<double>();
}

inline int integer(const nlohmann::json& v, const std::string& where, const std::string& key) {
  if (!v.is_number_integer()) throw BadConfig(where + "." + key + " must be an integer, got " + v.dump());
  // A negative value reads as number_integer, a large one as number_unsigned: check both ends as int64.
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int>::max()))
    throw BadConfig(where + "." + key + " is out of range: " + v.dump());
  const int64_t x = v.get<int64_t>();
  if (x < std::numeric_limits<int>::min() || x > std::numeric_limits<int>::max())
    throw BadConfig(where + "." + key + " is out of range: " + v.dump());
  return int(x);
}

inline bool boolean(const nlohmann::json& v, const std::string& where, const std::string& key) {
  if (!v.is_boolean()) throw BadConfig(where + "." + key + " must be true or false, got " + v.dump());
  return v.get<bool>();
}

inline std::string string(const nlohmann::json& v, const std::string& where, const std::string& key) {
  if (!v.is_string()) throw BadConfig(where + "." + key + " must be a string, got " + v.dump());
  return v.get<std::string>();
}

inline void require_object(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw BadConfig(where + ": expected a JSON object, got " + j.dump());
}

[[noreturn]] inline void unknown_key(const std::string& where, const std::string& key, const std::string& known) {
  throw BadConfig(where + ": unknown key '" + key + "' (known: " + known + ")");
}

}  // namespace massmap::data::json_fields
