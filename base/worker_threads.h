#pragma once
// Threads that are always joined. std::thread's constructor throws when the system refuses a thread (process or
// memory limits); a vector of joinable threads unwound by that exception calls std::terminate. Here a refusal
// stops the threads already running, joins them and becomes a ResourceError naming what asked for the threads.
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace massmap {

// The most threads any one pool of ours may ask for (options such as --threads and --workers are checked against
// it): far more than the cores of any machine we run on, few enough that stacks fit in memory.
constexpr int kMaxWorkerThreads = 256;

class WorkerThreads {
 public:
  // `what` names the pool in errors, e.g. "--threads 8 (image preparation)".
  explicit WorkerThreads(std::string what) : what_(std::move(what)) {}
  WorkerThreads(const WorkerThreads&) = delete;
  WorkerThreads& operator=(const WorkerThreads&) = delete;
  ~WorkerThreads() { join(); }

  // Runs `body` on a new thread. When the system refuses, calls `stop` (which must make the running bodies
  // return), joins them and throws ResourceError.
  void start(std::function<void()> body, const std::function<void()>& stop);
  void join();
  size_t size() const { return threads_.size(); }
  bool empty() const { return threads_.empty(); }

 private:
  std::string what_;
  std::vector<std::thread> threads_;
};

}  // namespace massmap
