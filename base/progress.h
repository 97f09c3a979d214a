#pragma once
// Progress of long work: a bar redrawn in place when stderr is a terminal, a plain log line every 10% otherwise
// (so logs and CI output stay readable).
#include <chrono>
#include <cstdint>
#include <string>

namespace massmap {

class Progress {
 public:
  Progress(std::string label, int64_t total);
  ~Progress();
  void update(int64_t done, const std::string& status = "");
  void finish(const std::string& status = "");
  static bool terminal();

 private:
  std::string label_;
  int64_t total_;
  int last_decile_ = -1;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace massmap
