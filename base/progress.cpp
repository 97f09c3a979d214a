#include "base/progress.h"

#include <unistd.h>

#include <cstdio>

namespace massmap {

bool Progress::terminal() {
  return isatty(fileno(stderr)) != 0;
}

Progress::Progress(std::string label, int64_t total)
    : label_(std::move(label)), total_(total > 0 ? total : 1), start_(std::chrono::steady_clock::now()) {}

Progress::~Progress() {
  if (!finished_ && terminal()) std::fputc('\n', stderr);
}

void Progress::update(int64_t done, const std::string& status) {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double frac = double(done) / double(total_);
  if (terminal()) {
    const int width = 30, filled = int(frac * width);
    std::fprintf(stderr, "\r%s [%s%s] %lld/%lld %.0fs %s\033[K", label_.c_str(),
                 std::string(size_t(filled), '=').c_str(), std::string(size_t(width - filled), ' ').c_str(),
                 (long long)done, (long long)total_, seconds, status.c_str());
    std::fflush(stderr);
    return;
  }
  const int decile = int(frac * 10);
  if (decile > last_decile_) {
    last_decile_ = decile;
    std::fprintf(stderr, "%s: %lld/%lld (%.0fs) %s\n", label_.c_str(), (long long)done, (long long)total_, seconds,
                 status.c_str());
  }
}

void Progress::finish(const std::string& status) {
  update(total_, status);
  if (terminal()) std::fputc('\n', stderr);
  finished_ = true;
}

}  // namespace massmap
