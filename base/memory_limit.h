#pragma once
// How much memory this process may use, and the up-front check that refuses a run needing more: past the
// kernel's overcommit a late failure is a kill (or a swap storm), not an error, so sizes derived from options are
// checked before anything is allocated.
#include <cstdint>
#include <string>

namespace massmap {

// The least of physical memory, the cgroup's memory limit (v2 memory.max, v1 memory.limit_in_bytes) and
// RLIMIT_AS; each is left out when it cannot be read or says "unlimited".
int64_t available_memory_bytes();

// ResourceError (exit 4) when `bytes` exceed available_memory_bytes(), naming `what` and both sizes.
void check_memory(int64_t bytes, const std::string& what);

// "1.5 GiB", "12 MiB": sizes for messages.
std::string memory_text(int64_t bytes);

}  // namespace massmap
