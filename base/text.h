#pragma once
// Numbers and counts in messages and files, worded one way everywhere.
#include <cstdint>
#include <string>

namespace massmap {

// "1 patient", "2 patients", "0 images": `noun` is the singular; `plural_noun` when it is not noun + "s".
std::string plural(int64_t count, const std::string& noun, const std::string& plural_noun = "");

// The shortest decimal that reads back as the same double: 0.2, not 0.200000 or 0.20000000000000001.
std::string decimal_text(double value);

}  // namespace massmap
