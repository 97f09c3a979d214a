// A fiber that overflows its stack faults in the stack's guard page; this handler says so (with the kernel and the
// thread) before the fault goes on to the previous handler, instead of a bare "Segmentation fault".
#include "kernels/simt/stack_overflow.h"

#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <mutex>

#include "kernels/simt/block.h"
#include "kernels/simt/fiber.h"

namespace simt::detail {
#if !MASSMAP_SIMT_ASAN  // AddressSanitizer reports stack overflows itself
namespace {

std::mutex install_mutex;
struct sigaction previous_action;
thread_local std::unique_ptr<char[]> alternate_stack;
constexpr size_t kAlternateStackBytes = 64 * 1024;

// Async-signal-safe text building: append a string or a number to a fixed buffer.
struct Message {
  char text[512];
  size_t length = 0;
  Message& operator<<(const char* s) {
    while (*s && length + 1 < sizeof text) text[length++] = *s++;
    return *this;
  }
  Message& operator<<(unsigned v) {
    char digits[16];
    int n = 0;
    do digits[n++] = static_cast<char>('0' + v % 10);
    while ((v /= 10) != 0);
    while (n > 0 && length + 1 < sizeof text) text[length++] = digits[--n];
    return *this;
  }
};

void on_segmentation_fault(int, siginfo_t* info, void*) {
  const BlockRunner* runner = BlockRunner::running();
  if (runner && runner->stacks().in_guard_page(info->si_addr)) {
    Message m;
    m << "simt: stack overflow in kernel '" << runner->kernel_name() << "' block (" << blockIdx.x << "," << blockIdx.y
      << "," << blockIdx.z << ") thread (" << threadIdx.x << "," << threadIdx.y << "," << threadIdx.z
      << "): each CUDA thread runs on a fiber stack of " << static_cast<unsigned>(StackPool::stack_bytes() / 1024)
      << " KiB; large local arrays belong in shared or device memory\n";
    const ssize_t written = write(STDERR_FILENO, m.text, m.length);
    (void)written;
  }
  // The faulting instruction runs again on return and meets the previous handler (or the default action).
  sigaction(SIGSEGV, &previous_action, nullptr);
}

}  // namespace
#endif

void watch_for_stack_overflow() {
#if !MASSMAP_SIMT_ASAN
  // The handler runs on an alternate stack, since the fiber's is exhausted (kept if the thread already has one).
  stack_t current;
  if (sigaltstack(nullptr, &current) == 0 && (current.ss_flags & SS_DISABLE)) {
    if (!alternate_stack) alternate_stack = std::make_unique<char[]>(kAlternateStackBytes);
    stack_t alternate{};
    alternate.ss_sp = alternate_stack.get();
    alternate.ss_size = kAlternateStackBytes;
    sigaltstack(&alternate, nullptr);
  }
  // Installed again whenever someone else (a test framework) replaced it.
  std::lock_guard<std::mutex> lock(install_mutex);
  struct sigaction installed;
  if (sigaction(SIGSEGV, nullptr, &installed) != 0) return;
  if ((installed.sa_flags & SA_SIGINFO) && installed.sa_sigaction == &on_segmentation_fault) return;
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_sigaction = &on_segmentation_fault;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  sigaction(SIGSEGV, &action, &previous_action);
#endif
}

}  // namespace simt::detail
