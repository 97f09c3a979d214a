#include "base/interrupt.h"

#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <ctime>

#include "base/errors.h"

namespace massmap {

namespace {

std::atomic<bool> g_interrupted{false};
std::atomic<int64_t> g_first_signal_ns{0};  // CLOCK_MONOTONIC of the first signal

// A repeat closer than this to the first signal is the same request delivered twice, not a second one: `timeout`
// signals the command and then its process group, which holds the command too.
constexpr int64_t kRepeatNs = 250'000'000;

int64_t monotonic_ns() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);  // async-signal-safe
  return int64_t(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

void on_signal(int) {
  const int64_t now = monotonic_ns();
  if (!g_interrupted.exchange(true)) {
    g_first_signal_ns.store(now);
    return;
  }
  if (now - g_first_signal_ns.load() >= kRepeatNs) _exit(130);  // a second signal: async-signal-safe exit
}

}  // namespace

void install_interrupt_handlers() {
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);  // neither signal interrupts the handler of the other
  sigaddset(&action.sa_mask, SIGINT);
  sigaddset(&action.sa_mask, SIGTERM);
  action.sa_flags = SA_RESTART;  // reads and writes in progress finish; loops poll the flag
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

const std::atomic<bool>& interrupt_flag() {
  return g_interrupted;
}

bool interrupted() {
  return g_interrupted.load(std::memory_order_relaxed);
}

void check_interrupted(const std::string& where) {
  if (interrupted()) throw Interrupted("stopped by a signal " + where);
}

}  // namespace massmap
