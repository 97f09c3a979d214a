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

std::string decimal_text(double value) {
  char buf[40];
  // At least the digits before the point, so 10 is "10", not "1e+01".
  const int whole_digits = std::isfinite(value) && value != 0 ? int(std::floor(std::log10(std::fabs(value)))) + 1 : 1;
  for (int precision = std::clamp(whole_digits, 1, 17); precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, value);
    if (std::strtod(buf, nullptr) == value) break;
  }
  return buf;
}

}  // namespace massmap
