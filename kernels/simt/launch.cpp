// Launches of kernels/simt: limits, and the worker threads that run the blocks.
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "kernels/simt/block.h"
#include "kernels/simt/runtime.h"
#include "kernels/simt/shared_arena.h"
#include "kernels/simt/stack_overflow.h"

namespace simt::detail {
namespace {

std::string dims(dim3 d) {
  return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")";
}

// The GPU's launch limits (compute capability 8.0 and 9.0 alike).
void check_limits(const char* name, dim3 grid, dim3 block, size_t dynamic_shared_bytes) {
  const std::string kernel = "kernel '" + std::string(name) + "': ";
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || block.x == 0 || block.y == 0 || block.z == 0)
    throw Error(kernel + "empty launch: grid " + dims(grid) + ", block " + dims(block));
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  if (threads > 1024)
    throw Error(kernel + std::to_string(threads) + " threads per block " + dims(block) + " (limit 1024)");
  if (block.x > 1024 || block.y > 1024 || block.z > 64)
    throw Error(kernel + "block " + dims(block) + " over the limits (1024, 1024, 64)");
  if (grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535)
    throw Error(kernel + "grid " + dims(grid) + " over the limits (2147483647, 65535, 65535)");
  if (dynamic_shared_bytes > SharedArena::kTotalLimit) {
    throw Error(kernel + std::to_string(dynamic_shared_bytes) + " bytes of dynamic shared memory (limit " +
                std::to_string(SharedArena::kTotalLimit) + ")");
  }
}

// Worker threads wait for launches; the launching thread works on the blocks too.
class WorkerPool {
 public:
  static WorkerPool& instance() {
    static WorkerPool pool;
    return pool;
  }

  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  void run(const BlockLaunch& launch, uint64_t blocks) {
    std::lock_guard<std::mutex> one_launch_at_a_time(launch_mutex_);
    const int helpers = static_cast<int>(std::min<uint64_t>(static_cast<uint64_t>(worker_threads()), blocks)) - 1;
    launch_ = &launch;
    blocks_ = blocks;
    next_block_.store(0);
    failed_.store(false);
    error_ = nullptr;
    if (helpers > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      while (static_cast<int>(threads_.size()) < helpers) {
        const int index = static_cast<int>(threads_.size());
        threads_.emplace_back([this, index] { helper_loop(index); });
      }
      active_helpers_ = helpers;
      busy_helpers_ = helpers;
      ++generation_;
    }
    if (helpers > 0) wake_.notify_all();
    work();
    if (helpers > 0) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [this] { return busy_helpers_ == 0; });
    }
    launch_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void helper_loop(int index) {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || (generation_ != seen && index < active_helpers_); });
        if (stop_) return;
        seen = generation_;
      }
      work();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        --busy_helpers_;
      }
      done_.notify_one();
    }
  }

  void work() {
    watch_for_stack_overflow();
    BlockRunner& runner = BlockRunner::of_this_thread();
    while (!failed_.load(std::memory_order_relaxed)) {
      const uint64_t block = next_block_.fetch_add(1);
      if (block >= blocks_) break;
      try {
        runner.run(*launch_, block);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex_);
        if (!failed_.exchange(true)) error_ = std::current_exception();
      }
    }
  }

  std::mutex launch_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> threads_;
  uint64_t generation_ = 0;
  int active_helpers_ = 0;
  int busy_helpers_ = 0;
  bool stop_ = false;

  const BlockLaunch* launch_ = nullptr;
  uint64_t blocks_ = 0;
  std::atomic<uint64_t> next_block_{0};
  std::atomic<bool> failed_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

}  // namespace

void run_kernel(const KernelCall& call, dim3 grid, dim3 block, size_t dynamic_shared_bytes) {
  check_limits(call.name, grid, block, dynamic_shared_bytes);
  if (BlockRunner::running())
    throw Error("kernel '" + std::string(call.name) + "' launched from inside a kernel (not supported by simt)");
  BlockLaunch launch;
  launch.call = &call;
  launch.grid = grid;
  launch.block = block;
  launch.dynamic_shared_bytes = dynamic_shared_bytes;
  launch.schedule = schedule();
  WorkerPool::instance().run(launch, uint64_t{grid.x} * grid.y * grid.z);
  try {
    check_guards();
  } catch (const Error& e) {
    throw Error("after kernel '" + std::string(call.name) + "': " + e.what());
  }
}

}  // namespace simt::detail
