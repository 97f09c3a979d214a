// Settings of kernels/simt: the schedule and the number of worker threads, from the environment by default.
#include "kernels/simt/runtime.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

namespace simt {
namespace {

Schedule parse_schedule(const std::string& text) {
  Schedule s;
  if (text.empty() || text == "forward") return s;
  if (text == "reverse") {
    s.order = Order::reverse;
    return s;
  }
  if (text == "random" || text.rfind("random:", 0) == 0) {
    s.order = Order::random;
    if (text == "random") {
      // A fresh seed per run explores more orders; it is printed so a failure can be replayed with random:SEED.
      s.seed = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
      std::fprintf(stderr, "simt: schedule %s (MASSMAP_SIMT_SCHEDULE=random:%llu replays it)\n", describe(s).c_str(),
                   static_cast<unsigned long long>(s.seed));
      return s;
    }
    const std::string digits = text.substr(7);
    char* end = nullptr;
    s.seed = std::strtoull(digits.c_str(), &end, 10);
    if (!digits.empty() && end && *end == '\0') return s;
  }
  throw Error("MASSMAP_SIMT_SCHEDULE='" + text + "': expected forward, reverse, random or random:SEED");
}

struct Settings {
  std::mutex mutex;
  bool schedule_set = false;
  Schedule schedule;
  int workers = 0;  // 0: not decided yet
};

Settings& settings() {
  static Settings s;
  return s;
}

}  // namespace

std::string describe(Schedule s) {
  switch (s.order) {
    case Order::forward:
      return "forward";
    case Order::reverse:
      return "reverse";
    case Order::random:
      return "random(" + std::to_string(s.seed) + ")";
  }
  return "?";
}

void set_schedule(Schedule schedule) {
  std::lock_guard<std::mutex> lock(settings().mutex);
  settings().schedule = schedule;
  settings().schedule_set = true;
}

Schedule schedule() {
  std::lock_guard<std::mutex> lock(settings().mutex);
  if (!settings().schedule_set) {
    const char* env = std::getenv("MASSMAP_SIMT_SCHEDULE");
    settings().schedule = parse_schedule(env ? env : "");
    settings().schedule_set = true;
  }
  return settings().schedule;
}

void set_worker_threads(int n) {
  if (n < 1) throw Error("simt::set_worker_threads: " + std::to_string(n) + " threads (at least 1)");
  std::lock_guard<std::mutex> lock(settings().mutex);
  settings().workers = n;
}

int worker_threads() {
  std::lock_guard<std::mutex> lock(settings().mutex);
  if (settings().workers == 0) {
    int n = static_cast<int>(std::thread::hardware_concurrency());
    if (const char* env = std::getenv("MASSMAP_SIMT_THREADS")) {
      char* end = nullptr;
      const long v = std::strtol(env, &end, 10);
      if (!end || *end != '\0' || v < 1 || v > 4096)
        throw Error("MASSMAP_SIMT_THREADS='" + std::string(env) + "': expected a number of threads >= 1");
      n = static_cast<int>(v);
    }
    settings().workers = n < 1 ? 1 : n;
  }
  return settings().workers;
}

}  // namespace simt
