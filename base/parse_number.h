#pragma once
// Whole-string number parsing for options and file fields: "0x10", "1e3", " 5", "5 " and "+5" are not integers,
// and a value out of range is never wrapped or clamped. The caller words the error (it knows the option or key).
#include <cstdint>
#include <optional>
#include <string>

namespace massmap {

// A decimal integer (optional leading '-') in [lo, hi]; nullopt for anything else.
std::optional<int64_t> parse_integer(const std::string& text, int64_t lo = INT64_MIN, int64_t hi = INT64_MAX);
// A finite decimal number (digits, '.', exponent; no hex, inf or nan, no spaces); nullopt for anything else.
std::optional<double> parse_decimal(const std::string& text);

// "[lo, hi]" for messages, e.g. "1..65535".
std::string range_text(int64_t lo, int64_t hi);

}  // namespace massmap
