#pragma once
// SHA-256 (FIPS 180-4), to tie a model to the exact split file it was trained on.
#include <string>

namespace massmap::search {

std::string sha256_hex(const std::string& bytes);     // 64 lowercase hex digits
std::string sha256_of_file(const std::string& path);  // BadInput naming the file when it cannot be read

}  // namespace massmap::search
