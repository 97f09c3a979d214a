#pragma once
// Binary PGM (P5) writers, for synth --format pgm and the tests' small fixtures. 16-bit samples are big-endian
// as the format requires; maxval says how many bits are meaningful (4095 for 12-bit data).
// Writes are atomic (write_file_atomic).
#include <cstdint>
#include <string>
#include <vector>

namespace massmap::data {

// pixels: (height, width), every value <= maxval (at most 65535).
void write_pgm16(const std::string& path, int width, int height, const std::vector<uint16_t>& pixels, int maxval);
// pixels: (height, width), 8-bit, maxval 255.
void write_pgm8(const std::string& path, int width, int height, const std::vector<uint8_t>& pixels);

}  // namespace massmap::data
