#include "base/parse_number.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

namespace massmap {

std::optional<int64_t> parse_integer(const std::string& text, int64_t lo, int64_t hi) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, error] = std::from_chars(text.data(), end, v, 10);  // no '+', spaces or base prefixes
  if (text.empty() || error != std::errc() || ptr != end || v < lo || v > hi) return std::nullopt;
  return v;
}

std::optional<double> parse_decimal(const std::string& text) {
  // strtod would also take leading spaces, hex floats, inf and nan: allow only what a decimal is made of.
  if (text.empty() || text.find_first_not_of("0123456789+-.eE") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::string range_text(int64_t lo, int64_t hi) {
  return std::to_string(lo) + ".." + std::to_string(hi);
}

}  // namespace massmap
