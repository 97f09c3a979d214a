#pragma once
// One block of a kernel on one OS thread: a fiber per CUDA thread, run in rounds in the schedule's order, switching
// only at barriers and warp intrinsics. Internal to kernels/simt.
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/simt/fiber.h"
#include "kernels/simt/runtime.h"
#include "kernels/simt/shared_arena.h"

namespace simt::detail {

// Where a thread waits: the intrinsic and its call site.
struct CallSite {
  const char* what = nullptr;
  const char* file = nullptr;
  int line = 0;
};

// What all blocks of one launch share.
struct BlockLaunch {
  const KernelCall* call = nullptr;
  dim3 grid, block;
  size_t dynamic_shared_bytes = 0;
  Schedule schedule;
};

class BlockRunner {
 public:
  BlockRunner();
  ~BlockRunner();
  BlockRunner(const BlockRunner&) = delete;
  BlockRunner& operator=(const BlockRunner&) = delete;

  // The runner of this OS thread (created on first use).
  static BlockRunner& of_this_thread();
  // The runner running a block on this OS thread, or nullptr outside kernels.
  static BlockRunner* running() { return running_; }

  // Runs block number `block_linear` of the launch to completion; throws Error on any error inside it.
  void run(const BlockLaunch& launch, uint64_t block_linear);

  // Called by the running fiber (see device_functions.h).
  int barrier(BarrierKind kind, int predicate, const CallSite& site);
  uint64_t shuffle(ShuffleMode mode, unsigned mask, uint64_t value, int operand, int width, const CallSite& site);
  uint64_t vote(unsigned mask, int predicate, const CallSite& site);
  void syncwarp(unsigned mask, const CallSite& site);
  unsigned active_lanes() const;
  SharedArena& arena() { return arena_; }
  const StackPool& stacks() const { return stacks_; }
  const char* kernel_name() const { return launch_ ? launch_->call->name : "?"; }

 private:
  enum class Wait : uint8_t { runnable, barrier, warp, exited };
  enum class WarpOpKind : uint8_t { shuffle, vote, sync };
  struct Thread {
    Context context;
    uint3 index{};
    Wait wait = Wait::runnable;
    CallSite site;           // where it waits
    int barrier_value = 0;   // the predicate it brought, then the barrier's result
    unsigned warp_mask = 0;  // the mask of the warp intrinsic it waits in
    ShuffleMode mode = ShuffleMode::idx;
    int operand = 0, width = 32;
    uint64_t lane_value = 0, lane_result = 0;
  };
  // A warp intrinsic some lanes of a warp wait in (lanes with disjoint masks may wait in different ones).
  struct WarpOp {
    WarpOpKind kind;
    CallSite site;
    unsigned mask;
    unsigned arrived;
  };
  struct Warp {
    unsigned present = 0;  // lanes that exist and have not exited
    std::vector<WarpOp> pending;
  };

  static void fiber_main(void* runner);
  [[noreturn]] void run_current_thread();
  void thread_exited();
  uint64_t warp_op(WarpOpKind kind, unsigned mask, const CallSite& site);
  void complete_warp_op(unsigned warp, size_t op_index);
  void release_barrier();
  // Suspends the running thread (it waits, or exited) and resumes the next runnable one, or the scheduler.
  void resume_next(bool current_finished);
  int pick_next();
  bool start_round();
  std::string thread_name(unsigned linear) const;
  std::string describe_position(unsigned linear) const;
  std::string deadlock_report() const;
  [[noreturn, gnu::cold, gnu::noinline]] void divergent_barrier(const CallSite& site) const;

  static thread_local BlockRunner* running_;

  const BlockLaunch* launch_ = nullptr;
  uint3 block_index_{};
  std::vector<Thread> threads_;
  std::vector<Warp> warps_;
  unsigned live_ = 0;  // threads that have not exited
  unsigned current_ = 0;
  Context scheduler_;

  // The barrier being filled.
  unsigned arrived_ = 0;
  CallSite barrier_site_;
  unsigned barrier_first_ = 0;
  int barrier_accumulator_ = 0;
  BarrierKind barrier_kind_ = BarrierKind::plain;

  // The round: runnable threads in the schedule's order.
  std::vector<unsigned> round_;
  size_t round_pos_ = 0;
  uint64_t random_state_ = 0;

  bool failed_ = false;
  std::string failure_;
  bool stacks_dirty_ = false;  // fibers were abandoned mid-kernel (AddressSanitizer's shadow must be cleared)

  StackPool stacks_;
  SharedArena arena_;
};

// Thrown inside a fiber about another thread of the block (e.g. the lane whose shuffle read a missing lane).
struct ThreadError : Error {
  ThreadError(unsigned thread, const std::string& message) : Error(message), thread(thread) {}
  unsigned thread;
};

}  // namespace simt::detail
