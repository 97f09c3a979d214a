#include "base/text.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace massmap {

std::string plural(int64_t count, const std::string& noun, const std::string& plural_noun) {
  const std::string word = count == 1 ? noun : plural_noun.empty() ? noun + "s" : plural_noun;
  return std::to_string(count) + " " + word;
}

namespace {

// The shortest %g text, from at least the digits before the point (10 is "10", not "1e+01"), that `reads_back`.
template <class ReadsBack>
std::string shortest(double value, int max_precision, ReadsBack reads_back) {
  char buf[40];
  const int whole_digits = std::isfinite(value) && value != 0 ? int(std::floor(std::log10(std::fabs(value)))) + 1 : 1;
  for (int precision = std::clamp(whole_digits, 1, max_precision); precision <= max_precision; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, value);
    if (reads_back(buf)) break;
  }
  return buf;
}

}  // namespace

std::string decimal_text(double value) {
  return shortest(value, 17, [&](const char* text) { return std::strtod(text, nullptr) == value; });
}

std::string decimal_text(float value) {
  return shortest(double(value), 9, [&](const char* text) { return std::strtof(text, nullptr) == value; });
}

}  // namespace massmap
