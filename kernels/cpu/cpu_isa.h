#pragma once
// Which instruction set the fast CPU kernels run with. Vectorised micro-kernels are compiled once per instruction
// set (the default build has no -march=native) and one is chosen at run time: the best the CPU and the operating
// system support, or the one named by MASSMAP_CPU_ISA=portable|avx2|avx512. Results are bit-identical for any
// thread count within one instruction set; across instruction sets they differ by rounding only (FMA and summation
// order).
#include <string>

namespace kernels {
namespace cpu {

enum class CpuIsa { portable, avx2, avx512 };

const char* cpu_isa_name(CpuIsa isa);
// Parses "portable", "avx2" or "avx512"; throws std::invalid_argument naming the accepted values.
CpuIsa parse_cpu_isa(const std::string& name);
// Whether this CPU (and OS, for the wider registers' state) runs the instruction set. portable: always.
bool cpu_isa_supported(CpuIsa isa);
CpuIsa best_cpu_isa();
// MASSMAP_CPU_ISA when set (throws std::invalid_argument if unknown or not supported here), else best_cpu_isa().
CpuIsa cpu_isa_from_environment();

// The instruction set the kernels use: cpu_isa_from_environment() on first use, or what set_active_cpu_isa chose.
CpuIsa active_cpu_isa();
// Forces an instruction set for the whole process (tests and benchmarks run every variant this way); throws
// std::invalid_argument if the CPU lacks it. Not to be called while kernels run on other threads.
void set_active_cpu_isa(CpuIsa isa);

}  // namespace cpu
}  // namespace kernels
