#pragma once
// Command-line flags of our own beside Google Benchmark's, for every benchmark program (CPU and GPU; no OpenMP or
// intrinsics here, so nvcc-compiled code can include it too).
#include <cstring>

namespace bench {

// The value of "--name=value" in arg, or nullptr.
inline const char* flag_value(const char* arg, const char* name) {
  const size_t n = std::strlen(name);
  return std::strncmp(arg, name, n) == 0 && arg[n] == '=' ? arg + n + 1 : nullptr;
}

// Takes the arguments that own_flag consumes (it returns true for those) out of argv, so that Google Benchmark sees
// only its own.
template <class OwnFlag>
void take_own_flags(int* argc, char** argv, OwnFlag&& own_flag) {
  int kept = 1;
  for (int i = 1; i < *argc; ++i)
    if (!own_flag(argv[i])) argv[kept++] = argv[i];
  *argc = kept;
}

}  // namespace bench
