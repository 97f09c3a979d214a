#include "data/pgm_write.h"

#include "base/atomic_file.h"
#include "base/errors.h"

namespace massmap::data {

namespace {
std::string header(int width, int height, int maxval) {
  return "P5\n" + std::to_string(width) + " " + std::to_string(height) + "\n" + std::to_string(maxval) + "\n";
}
void check(const std::string& path, int width, int height, size_t size) {
  if (width < 1 || height < 1 || size != size_t(width) * size_t(height))
    throw BadInput(path + ": PGM of " + std::to_string(width) + "x" + std::to_string(height) + " given " +
                   std::to_string(size) + " pixels");
}
}  // namespace

void write_pgm16(const std::string& path, int width, int height, const std::vector<uint16_t>& pixels, int maxval) {
  check(path, width, height, pixels.size());
  if (maxval < 256 || maxval > 65535) throw BadInput(path + ": 16-bit PGM needs maxval in 256..65535");
  std::string bytes = header(width, height, maxval);
  const size_t start = bytes.size();
  bytes.resize(start + 2 * pixels.size());
  for (size_t i = 0; i < pixels.size(); ++i) {
    const uint16_t v = pixels[i] > maxval ? uint16_t(maxval) : pixels[i];
    bytes[start + 2 * i] = char(v >> 8);
    bytes[start + 2 * i + 1] = char(v & 0xFF);
  }
  write_file_atomic(path, bytes.data(), bytes.size());
}

void write_pgm8(const std::string& path, int width, int height, const std::vector<uint8_t>& pixels) {
  check(path, width, height, pixels.size());
  std::string bytes = header(width, height, 255);
  bytes.append(reinterpret_cast<const char*>(pixels.data()), pixels.size());
  write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace massmap::data
