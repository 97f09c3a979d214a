#include "apps/cli.h"

#include "engine/errors.h"

namespace massmap::cli {

Args::Args(std::vector<std::string> argv, std::string usage) : usage_(std::move(usage)) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "--help" || a == "-h") {
      help_ = true;
    } else if (a.rfind("--", 0) == 0) {
      std::string name = a.substr(2), value;
      size_t eq = name.find('=');
      if (eq != std::string::npos) {
        values_[name.substr(0, eq)].push_back(name.substr(eq + 1));
      } else if (i + 1 < argv.size() && argv[i + 1].rfind("--", 0) != 0) {
        values_[name].push_back(argv[++i]);
      } else {
        flags_.insert(name);
      }
    } else {
      positional_.push_back(a);
    }
  }
}

std::string Args::str(const std::string& name, const std::string& fallback) {
  used_.insert(name);
  if (flags_.count(name)) throw UsageError("option --" + name + " needs a value");
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  if (it->second.size() > 1) throw UsageError("option --" + name + " given " + std::to_string(it->second.size()) +
                                              " times; it takes one value");
  return it->second.front();
}

std::vector<std::string> Args::list(const std::string& name) {
  used_.insert(name);
  if (flags_.count(name)) throw UsageError("option --" + name + " needs a value");
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::string Args::required(const std::string& name) {
  used_.insert(name);
  if (values_.find(name) == values_.end()) throw UsageError("missing option --" + name + "\n\n" + usage_);
  return str(name, "");
}

int64_t Args::integer(const std::string& name, int64_t fallback) {
  std::string v = str(name, "");
  if (v.empty()) return fallback;
  try {
    size_t used = 0;
    int64_t x = std::stoll(v, &used);
    if (used != v.size()) throw std::invalid_argument(v);
    return x;
  } catch (const std::exception&) {
    throw UsageError("option --" + name + " expects an integer, got '" + v + "'");
  }
}

double Args::number(const std::string& name, double fallback) {
  std::string v = str(name, "");
  if (v.empty()) return fallback;
  try {
    size_t used = 0;
    double x = std::stod(v, &used);
    if (used != v.size()) throw std::invalid_argument(v);
    return x;
  } catch (const std::exception&) {
    throw UsageError("option --" + name + " expects a number, got '" + v + "'");
  }
}

bool Args::flag(const std::string& name) {
  used_.insert(name);
  if (values_.count(name)) throw UsageError("option --" + name + " takes no value");
  return flags_.count(name) != 0;
}

std::string Args::shift_positional() {
  if (positional_.empty()) return "";
  std::string first = positional_.front();
  positional_.erase(positional_.begin());
  return first;
}

void Args::finish() const {
  for (const auto& [name, value] : values_)
    if (!used_.count(name)) throw UsageError("unknown option --" + name + "\n\n" + usage_);
  for (const auto& name : flags_)
    if (!used_.count(name)) throw UsageError("unknown option --" + name + "\n\n" + usage_);
  if (!positional_.empty()) throw UsageError("unexpected argument '" + positional_.front() + "'\n\n" + usage_);
}

}  // namespace massmap::cli
