#pragma once
// Reports of fiber stack overflows (see stack_overflow.cpp).

namespace simt::detail {

// Makes sure a fault in a fiber stack's guard page on this OS thread is reported with the kernel and the thread.
// Cheap enough (two system calls) to call before each launch's blocks.
void watch_for_stack_overflow();

}  // namespace simt::detail
