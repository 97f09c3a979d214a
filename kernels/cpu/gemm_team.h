#pragma once
// The CPU GEMM's loop nest for a team of threads that share the packed B (included by each gemm_<isa>.cpp after
// gemm_driver.h, like it compiled with that ISA's flags; internal linkage). Called by every thread of an OpenMP team,
// each with its own rows of C:
//   for pc over K in KC steps                 C is updated once per KC block, in K order
//     pack this thread's rows of A (rows, KC) into MR-row slivers                                      -> L2 / L3
//     for jc over N in NC steps
//       the team packs the B block (KC, NC), each thread a share of its panels, into one of two shared buffers
//       barrier
//       for each sliver ir, panel jr          micro-kernel: C tile (MR, NR) (+)= sliver * panel
// Each B block is packed once for all threads (chunks of their own pack their columns of B once per row chunk, and
// their rows of A once per column chunk: about a tenth of a 1024^3 call on 2 threads). The two buffers alternate: a
// thread packs block j + 2 into block j's buffer only after the barrier of block j + 1, which every thread reaches
// after its work on block j. The sums run over k exactly as in gemm_block_with, so the bits are the same.
#include "kernels/cpu/gemm_driver.h"

namespace kernels {
namespace cpu {
namespace {

// This thread's share of the panels of the B block at (k0, col0): columns [col0 + first, col0 + first + count).
struct PanelShare {
  int first, count;
};
inline PanelShare panel_share(int nc, int nr, int member, int members) {
  const int panels = (nc + nr - 1) / nr, p0 = panels * member / members, p1 = panels * (member + 1) / members;
  return {p0 * nr, p1 > p0 ? min_int(nc, p1 * nr) - p0 * nr : 0};
}

template <class Kernel>
void gemm_team_with(const GemmTeamBlock& g) {
  constexpr GemmBlocking B = Kernel::kBlocking;
  const GemmShape& s = *g.s;
  int buffer = 0;
  for (int pc = 0; pc < s.K; pc += B.kc) {
    const int kc = min_int(B.kc, s.K - pc);
    pack_a<B.mr>(s, g.a, g.m0, g.m1 - g.m0, pc, kc, g.a_pack);
    for (int jc = 0; jc < s.N; jc += B.nc, buffer ^= 1) {
      const int nc = min_int(B.nc, s.N - jc);
      float* b_pack = g.b_pack[buffer];  // (ceil(nc / NR), kc, NR)
      const PanelShare mine = panel_share(nc, B.nr, g.member, g.members);
      if (mine.count > 0) pack_b<B.nr>(s, g.b, pc, kc, jc + mine.first, mine.count, b_pack + mine.first * kc);
#pragma omp barrier
      for (int ir = g.m0; ir < g.m1; ir += B.mr) {
        float* c_row = g.c + ir * s.ldc + jc;
        const float* sliver = g.a_pack + (ir - g.m0) * kc;
        for (int jr = 0; jr < nc; jr += B.nr) {
          Kernel::run(kc, sliver, b_pack + jr * kc, c_row + jr, s.ldc, min_int(B.mr, g.m1 - ir), min_int(B.nr, nc - jr),
                      s.alpha, s.beta, pc == 0);
        }
      }
    }
  }
}

}  // namespace
}  // namespace cpu
}  // namespace kernels
