#pragma once
// What the dataset-text fuzz targets check of every row's place: "<file>:<line>", the line a positive number.
#include <string>

inline bool has_place(const std::string& where, const std::string& file) {
  if (where.rfind(file, 0) != 0 || where.size() == file.size()) return false;
  return where.find_first_not_of("0123456789", file.size()) == std::string::npos && where[file.size()] != '0';
}
