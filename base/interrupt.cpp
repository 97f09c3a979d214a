#include "base/interrupt.h"

#include <unistd.h>

#include <csignal>

#include "base/errors.h"

namespace massmap {

namespace {

std::atomic<bool> g_interrupted{false};

void on_signal(int) {
  if (g_interrupted.exchange(true)) _exit(130);  // the second signal: async-signal-safe exit
}

}  // namespace

void install_interrupt_handlers() {
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
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
