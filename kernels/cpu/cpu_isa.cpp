// Run-time choice of the instruction set. GCC's __builtin_cpu_supports reads CPUID and, for AVX and AVX-512, also
// checks through XGETBV that the OS saves those registers, so a "supported" ISA is safe to execute.
#include "kernels/cpu/cpu_isa.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace kernels {
namespace cpu {

namespace {

// -1 until first use; then the CpuIsa's value.
std::atomic<int> active{-1};

}  // namespace

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::portable:
      return "portable";
    case CpuIsa::avx2:
      return "avx2";
    case CpuIsa::avx512:
      return "avx512";
  }
  return "?";
}

CpuIsa parse_cpu_isa(const std::string& name) {
  for (const CpuIsa isa : {CpuIsa::portable, CpuIsa::avx2, CpuIsa::avx512}) {
    if (name == cpu_isa_name(isa)) return isa;
  }
  throw std::invalid_argument("CPU instruction set '" + name + "': expected portable, avx2 or avx512");
}

bool cpu_isa_supported(CpuIsa isa) {
#if defined(__x86_64__) || defined(__i386__)
  switch (isa) {
    case CpuIsa::portable:
      return true;
    case CpuIsa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CpuIsa::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }
  return false;
#else
  return isa == CpuIsa::portable;
#endif
}

CpuIsa best_cpu_isa() {
  if (cpu_isa_supported(CpuIsa::avx512)) return CpuIsa::avx512;
  if (cpu_isa_supported(CpuIsa::avx2)) return CpuIsa::avx2;
  return CpuIsa::portable;
}

CpuIsa cpu_isa_from_environment() {
  const char* env = std::getenv("MASSMAP_CPU_ISA");
  if (!env || !*env) return best_cpu_isa();
  const CpuIsa isa = parse_cpu_isa(env);
  if (!cpu_isa_supported(isa))
    throw std::invalid_argument(std::string("MASSMAP_CPU_ISA=") + env +
                                ": this CPU lacks it (best here: " + cpu_isa_name(best_cpu_isa()) + ")");
  return isa;
}

CpuIsa active_cpu_isa() {
  int isa = active.load(std::memory_order_relaxed);
  if (isa < 0) {
    isa = int(cpu_isa_from_environment());
    active.store(isa, std::memory_order_relaxed);
  }
  return CpuIsa(isa);
}

void set_active_cpu_isa(CpuIsa isa) {
  if (!cpu_isa_supported(isa))
    throw std::invalid_argument(std::string("CPU instruction set ") + cpu_isa_name(isa) + ": this CPU lacks it");
  active.store(int(isa), std::memory_order_relaxed);
}

}  // namespace cpu
}  // namespace kernels
