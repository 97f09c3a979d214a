// The portable GEMM micro-kernel, plain C++ for the compiler to vectorise with the baseline instruction set (SSE2
// on x86-64): a C tile of 4 rows x 8 columns, which fits 8 SSE registers; multiply and add stay separate (no FMA).
#include "kernels/cpu/gemm_driver.h"
#include "kernels/cpu/gemm_team.h"

namespace kernels {
namespace cpu {
namespace {

struct KernelPortable {
  static constexpr GemmBlocking kBlocking = kBlockingPortable;
  static constexpr int MR = kBlocking.mr, NR = kBlocking.nr;

  static void run(int kc, const float* a, const float* b, float* c, int64_t ldc, int rows, int cols, float alpha,
                  float beta, bool first) {
    float acc[MR][NR] = {};  // the C tile
    for (int k = 0; k < kc; ++k, a += MR, b += NR) {
      for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
    }
    for (int i = 0; i < rows; ++i) {
      float* row = c + i * ldc;
      for (int j = 0; j < cols; ++j) {
        const float t = alpha == 1.f ? acc[i][j] : alpha * acc[i][j];
        row[j] = !first ? row[j] + t : beta != 0.f ? t + beta * row[j] : t;
      }
    }
  }
};

}  // namespace

void gemm_block_portable(const GemmBlock& g) {
  gemm_block_with<KernelPortable>(g);
}
void gemm_team_portable(const GemmTeamBlock& g) {
  gemm_team_with<KernelPortable>(g);
}
void gemm_pack_a_portable(const GemmShape& s, const float* a, float* packed, int row_begin, int row_end) {
  pack_a_rows<KernelPortable>(s, a, packed, row_begin, row_end);
}
void gemm_packed_block_portable(const GemmPackedBlock& g) {
  gemm_packed_with<KernelPortable>(g);
}

}  // namespace cpu
}  // namespace kernels
