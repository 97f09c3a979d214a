#pragma once
// Below this many elements of work an OpenMP region costs more than it saves (waking the team, and on a busy
// machine waiting for descheduled threads), so the reference loops run them on one thread:
//   #pragma omp parallel for if (elements >= kParallelMinElements)
#include <cstdint>

namespace kernels {
constexpr int64_t kParallelMinElements = int64_t(1) << 16;
}  // namespace kernels
