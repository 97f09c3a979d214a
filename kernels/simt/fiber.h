#pragma once
// Fibers of kernels/simt: stacks with a guard page, and the context switch.
#include <cstddef>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define MASSMAP_SIMT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MASSMAP_SIMT_ASAN 1
#endif
#endif
#ifndef MASSMAP_SIMT_ASAN
#define MASSMAP_SIMT_ASAN 0
#endif

namespace simt::detail {

// A stack: [guard page][usable bytes], growing down from top().
struct FiberStack {
  char* mapping = nullptr;  // the guard page starts here
  size_t usable = 0;
  char* bottom() const;
  char* top() const { return bottom() + usable; }
};

// Stacks reused across blocks and launches (one pool per OS thread: fibers never move between OS threads).
class StackPool {
 public:
  StackPool() = default;
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;
  // Makes sure stacks 0 .. count-1 exist.
  void reserve(size_t count);
  const FiberStack& operator[](size_t i) const { return stacks_[i]; }
  size_t size() const { return stacks_.size(); }
  // Whether `address` lies in the guard page of one of the stacks.
  bool in_guard_page(const void* address) const;
  static size_t stack_bytes();

 private:
  std::vector<FiberStack> stacks_;
};

// A saved execution context: the stack pointer (registers live on the stack) and, for AddressSanitizer, the
// bounds of the stack and its fake stack.
struct Context {
  void* sp = nullptr;
  const void* stack_bottom = nullptr;
  size_t stack_size = 0;
  void* asan_fake_stack = nullptr;
};

// Prepares `stack` so that the first switch to the returned stack pointer calls entry(arg) on it (entry must never
// return).
void* prepare_fiber(const FiberStack& stack, void (*entry)(void*), void* arg);

// Saves the running context into `from` and resumes `to`. `from_finished`: `from` will never be resumed.
void switch_context(Context& from, const Context& to, bool from_finished = false);
// The first thing a new fiber does (tells AddressSanitizer the switch completed).
void fiber_started();
// Fills in the bounds of the running OS thread's stack (for AddressSanitizer).
void current_thread_stack(Context& context);

}  // namespace simt::detail
