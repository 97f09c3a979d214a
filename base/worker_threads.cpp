#include "base/worker_threads.h"

#include <system_error>

#include "base/errors.h"

namespace massmap {

void WorkerThreads::start(std::function<void()> body, const std::function<void()>& stop) {
  try {
    threads_.emplace_back(std::move(body));
  } catch (const std::system_error& e) {
    const size_t running = threads_.size();
    stop();
    join();
    throw ResourceError("cannot start thread " + std::to_string(running + 1) + " for " + what_ + ": " + e.what() +
                        " (fewer threads, or a higher process or memory limit)");
  }
}

void WorkerThreads::join() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

}  // namespace massmap
