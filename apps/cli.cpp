#include "apps/cli.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "base/errors.h"
#include "base/parse_number.h"

namespace massmap::cli {

namespace {

// An empty value is never meant: `--out ''` once wrote into the filesystem root.
UsageError empty_value(const std::string& name) {
  return UsageError("option --" + name + " has an empty value");
}

}  // namespace

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
      if (a.empty()) throw UsageError("an empty argument ('') where a name or a path belongs");
      positional_.push_back(a);
    }
  }
}

std::string Args::str(const std::string& name, const std::string& fallback) {
  used_.insert(name);
  if (flags_.count(name)) throw UsageError("option --" + name + " needs a value");
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  if (it->second.size() > 1)
    throw UsageError("option --" + name + " given " + std::to_string(it->second.size()) + " times; it takes one value");
  if (it->second.front().empty()) throw empty_value(name);
  return it->second.front();
}

std::vector<std::string> Args::list(const std::string& name) {
  used_.insert(name);
  if (flags_.count(name)) throw UsageError("option --" + name + " needs a value");
  auto it = values_.find(name);
  if (it == values_.end()) return {};
  for (const std::string& v : it->second)
    if (v.empty()) throw empty_value(name);
  return it->second;
}

std::string Args::required(const std::string& name) {
  used_.insert(name);
  if (values_.find(name) == values_.end()) throw UsageError("missing option --" + name + "\n\n" + usage_);
  return str(name, "");
}

int64_t Args::integer(const std::string& name, int64_t fallback, int64_t lo, int64_t hi) {
  const std::string v = str(name, "");  // "" only when the option is absent: str refuses an empty value
  if (v.empty()) return fallback;
  const auto x = parse_integer(v, lo, hi);
  if (!x) {
    const bool bounded = lo != INT64_MIN || hi != INT64_MAX;
    throw UsageError("option --" + name + " expects an integer" + (bounded ? " in " + range_text(lo, hi) : "") +
                     ", got '" + v + "'");
  }
  return *x;
}

double Args::number(const std::string& name, double fallback, double lo, double hi) {
  const std::string v = str(name, "");  // "" only when the option is absent: str refuses an empty value
  if (v.empty()) return fallback;
  const auto x = parse_decimal(v);
  if (!x || *x < lo || *x > hi) {
    char range[80] = "";
    if (lo != -HUGE_VAL || hi != HUGE_VAL) std::snprintf(range, sizeof range, " in [%g, %g]", lo, hi);
    throw UsageError("option --" + name + " expects a number" + range + ", got '" + v + "'");
  }
  return *x;
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

std::pair<int, int> parse_int_pair(const std::string& option, const std::string& text, int lo, int hi, bool single_ok,
                                   const char* form) {
  auto fail = [&]() -> UsageError {
    return UsageError("option --" + option + " expects " + form + " with each number in " + range_text(lo, hi) +
                      ", got '" + text + "'");
  };
  const size_t x = text.find('x');
  if (x == std::string::npos && !single_ok) throw fail();
  const auto a = parse_integer(text.substr(0, x), lo, hi);
  const auto b = x == std::string::npos ? a : parse_integer(text.substr(x + 1), lo, hi);
  if (!a || !b) throw fail();
  return {int(*a), int(*b)};
}

void check_output_not_input(const std::string& output_option, const std::string& output,
                            const std::vector<std::pair<std::string, std::string>>& inputs) {
  for (const auto& [what, input] : inputs) {
    std::error_code ec;  // a path that does not exist (yet) is no input's file
    if (std::filesystem::equivalent(output, input, ec) && !ec)
      throw UsageError("--" + output_option + " '" + output + "' is the same file as " + what + " '" + input +
                       "': writing it would destroy the input");
  }
}

void check_output_file(const std::string& option, const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path file(path);
  const fs::path folder = file.parent_path().empty() ? fs::path(".") : file.parent_path();
  auto fail = [&](const std::string& why) { throw BadInput("--" + option + " '" + path + "': " + why); };
  std::error_code ec;
  if (fs::is_directory(file, ec)) fail("is a folder; a file name is needed");
  if (!fs::is_directory(folder, ec)) fail("the folder '" + folder.string() + "' does not exist");
  if (access(folder.c_str(), W_OK) != 0) fail("the folder '" + folder.string() + "' is not writable");
}

void Args::finish() const {
  for (const auto& [name, value] : values_)
    if (!used_.count(name)) throw UsageError("unknown option --" + name + "\n\n" + usage_);
  for (const auto& name : flags_)
    if (!used_.count(name)) throw UsageError("unknown option --" + name + "\n\n" + usage_);
  if (!positional_.empty()) throw UsageError("unexpected argument '" + positional_.front() + "'\n\n" + usage_);
}

}  // namespace massmap::cli
