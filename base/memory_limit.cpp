#include "base/memory_limit.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "base/errors.h"

namespace massmap {

namespace {

// The first number in a cgroup file, or -1 ("max", missing, unreadable).
int64_t cgroup_limit(const char* path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text) || text == "max") return -1;
  try {
    return std::stoll(text);
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

int64_t available_memory_bytes() {
  int64_t limit = INT64_MAX;
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) limit = int64_t(pages) * int64_t(page);
  for (const char* path : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    const int64_t v = cgroup_limit(path);
    if (v > 0) limit = std::min(limit, v);
  }
  struct rlimit as;
  if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY)
    limit = std::min<int64_t>(limit, int64_t(std::min<rlim_t>(as.rlim_cur, rlim_t(INT64_MAX))));
  return limit;
}

std::string memory_text(int64_t bytes) {
  char text[32];
  if (bytes >= (int64_t(1) << 30))
    std::snprintf(text, sizeof text, "%.1f GiB", double(bytes) / double(int64_t(1) << 30));
  else
    std::snprintf(text, sizeof text, "%.1f MiB", double(bytes) / double(1 << 20));
  return text;
}

void check_memory(int64_t bytes, const std::string& what) {
  const int64_t available = available_memory_bytes();
  if (bytes > available)
    throw ResourceError(what + " needs " + memory_text(bytes) + ", more than the " + memory_text(available) +
                        " this process may use (the least of physical memory, the cgroup's limit and ulimit -v)");
}

}  // namespace massmap
