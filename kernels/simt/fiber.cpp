// Fiber stacks and the x86-64 System V context switch of kernels/simt.
#include "kernels/simt/fiber.h"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "kernels/simt/runtime.h"

#if MASSMAP_SIMT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if !defined(__x86_64__)
#error "kernels/simt: the context switch is written for x86-64 (System V); add a Boost.Context fallback here"
#endif

// massmap_simt_switch(void** save_sp, void* load_sp): pushes the callee-saved registers and the MXCSR / x87 control
// words on the running stack, stores the stack pointer into *save_sp, loads load_sp and pops the same frame from
// there. Everything else is caller-saved under System V, so the compiler has already saved what it needs.
//
// massmap_simt_fiber_start: where a new fiber "returns" to; prepare_fiber put entry in r13 and its argument in r12.
// The undefined return address ends backtraces (debuggers, unwinders) here.
asm(R"(
  .pushsection .text
  .globl massmap_simt_switch
  .type massmap_simt_switch, @function
  .p2align 4
massmap_simt_switch:
  .cfi_startproc
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .cfi_endproc
  .size massmap_simt_switch, .-massmap_simt_switch

  .globl massmap_simt_fiber_start
  .type massmap_simt_fiber_start, @function
  .p2align 4
massmap_simt_fiber_start:
  .cfi_startproc
  .cfi_undefined rip
  movq %r12, %rdi
  callq *%r13
  ud2
  .cfi_endproc
  .size massmap_simt_fiber_start, .-massmap_simt_fiber_start
  .popsection
)");

extern "C" void massmap_simt_switch(void** save_sp, void* load_sp);
extern "C" void massmap_simt_fiber_start();

namespace simt::detail {
namespace {

size_t page_size() {
  static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

}  // namespace

char* FiberStack::bottom() const {
  return mapping + page_size();
}

size_t StackPool::stack_bytes() {
  // AddressSanitizer's redzones make frames several times larger.
  return MASSMAP_SIMT_ASAN ? 256 * 1024 : 64 * 1024;
}

void StackPool::reserve(size_t count) {
  while (stacks_.size() < count) {
    FiberStack stack;
    stack.usable = stack_bytes();
    const size_t total = stack.usable + page_size();
    void* mapping = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mapping == MAP_FAILED) throw Error("simt: cannot map a fiber stack: " + std::string(std::strerror(errno)));
    stack.mapping = static_cast<char*>(mapping);
    if (mprotect(stack.mapping, page_size(), PROT_NONE) != 0) {
      munmap(mapping, total);
      throw Error("simt: cannot protect a fiber stack's guard page: " + std::string(std::strerror(errno)));
    }
    stacks_.push_back(stack);
  }
}

bool StackPool::in_guard_page(const void* address) const {
  const char* a = static_cast<const char*>(address);
  for (const FiberStack& s : stacks_)
    if (a >= s.mapping && a < s.bottom()) return true;
  return false;
}

StackPool::~StackPool() {
  for (const FiberStack& s : stacks_) munmap(s.mapping, s.usable + page_size());
}

void* prepare_fiber(const FiberStack& stack, void (*entry)(void*), void* arg) {
  // The frame massmap_simt_switch pops, from the lowest address: MXCSR + x87 control word, r15, r14, r13, r12, rbx,
  // rbp, return address. After its `ret` the stack pointer is 16-byte aligned, as a `call` expects.
  uintptr_t after_ret = (reinterpret_cast<uintptr_t>(stack.top()) - 16) & ~uintptr_t{15};
  uint64_t* frame = reinterpret_cast<uint64_t*>(after_ret) - 8;
  const uint32_t mxcsr = 0x1f80;        // all exceptions masked, round to nearest, no flush-to-zero
  const uint16_t x87_control = 0x037f;  // the x87 default
  frame[0] = mxcsr | (uint64_t{x87_control} << 32);
  frame[1] = 0;                                  // r15
  frame[2] = 0;                                  // r14
  frame[3] = reinterpret_cast<uint64_t>(entry);  // r13
  frame[4] = reinterpret_cast<uint64_t>(arg);    // r12
  frame[5] = 0;                                  // rbx
  frame[6] = 0;                                  // rbp
  frame[7] = reinterpret_cast<uint64_t>(&massmap_simt_fiber_start);
  return frame;
}

void switch_context(Context& from, const Context& to, bool from_finished) {
#if MASSMAP_SIMT_ASAN
  __sanitizer_start_switch_fiber(from_finished ? nullptr : &from.asan_fake_stack, to.stack_bottom, to.stack_size);
  massmap_simt_switch(&from.sp, to.sp);
  __sanitizer_finish_switch_fiber(from.asan_fake_stack, nullptr, nullptr);
#else
  (void)from_finished;
  massmap_simt_switch(&from.sp, to.sp);
#endif
}

void fiber_started() {
#if MASSMAP_SIMT_ASAN
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
}

void current_thread_stack(Context& context) {
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return;
  void* address = nullptr;
  size_t size = 0;
  if (pthread_attr_getstack(&attr, &address, &size) == 0) {
    context.stack_bottom = address;
    context.stack_size = size;
  }
  pthread_attr_destroy(&attr);
}

}  // namespace simt::detail
