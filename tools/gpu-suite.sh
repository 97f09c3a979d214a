#!/usr/bin/env bash
# The GPU suite: built here, run on a GPU machine, which has the NVIDIA driver, the CUDA toolkit,
# compute-sanitizer and PyTorch with its pip wheels of cuBLAS and cuDNN, but none of our Debian libraries and no
# network; a loan carries at most 64 MiB (working tree included), gives 15 minutes of device time in all, and brings
# back at most 8 files.
#
#   tools/gpu-suite.sh prepare [DIR] [--from BUILD]
#       (here) builds what a GPU run needs and packs it into DIR (default gpu-suite/, git-ignored): DIR/suite.tar.gz
#       (stripped programs in bin/: the test programs that have cuda.* cases, the GPU benchmarks, nets_bench, and
#       massmap built with -DMASSMAP_DICOM=OFF; in lib/ the shared libraries a stock CUDA machine lacks), a copy of
#       this script and manifest.txt. Fails when the working tree plus DIR exceed 64 MiB.
#       --from BUILD reuses BUILD's programs where its flags agree (Release, no -march=native, no sanitizer, sm_90
#       among its CUDA architectures) and they need no DCMTK; the rest is built in build-gpu-suite/.
#   tools/gpu-suite.sh run OUT quick [--dry-run]
#       (there) the quick suite, at most 5 minutes, in priority order, each part with its own time cap:
#         smoke (libraries resolve, the GPU is seen, one cuda.* case), tests (the cuda.* cases of every program),
#         gemm (SGEMM 4096^3 vs cuBLAS), conv (AlexNet conv1-5 and VGG-16 conv3_1 at batch 128 vs cuDNN),
#         memory (memory-bound kernels vs copy bandwidth), alexnet (a training step vs PyTorch + cuDNN),
#         map (a 1000 x 1600 map), train (massmap train end to end), sanitizer (compute-sanitizer memcheck, last).
#       After every part it rewrites OUT/summary.json, OUT/suite.log, OUT/logs.tar.gz and the benchmark JSONs
#       (at most 6 files), so a run cut short still brings back what finished.
#       --dry-run (no GPU needed): every part's programs start and their libraries resolve, the parts that have a
#       simt path run a tiny problem on simt, the rest are recorded as "skipped: no GPU".
#   tools/gpu-suite.sh run OUT STEP...
#       the full suite as separate steps, each sized for one 10-minute command: tests (every case of every carried
#       test program), tests-cuda, sanitizer (memcheck and racecheck), memcheck, racecheck, bench-gemm,
#       bench-memory, bench-conv (all 29 layers), bench (all three), alexnet, all.
#   tools/gpu-suite.sh ci-dry-run [DIR]
#       (CI) the quick dry run under `env -i` in a bare root (a user and mount namespace holding only the tools this
#       script uses, glibc, the CUDA toolkit and the suite), so a library the suite forgot fails here, not there.
#
# Environment: JOBS (prepare: compile jobs, default 2); SUITE_CMAKE_ARGS (prepare: extra configure arguments);
# QUICK_BUDGET (run quick: seconds in all, default 300); ONLY (run: a regex on program names); BENCH_ARGS (run: extra
# benchmark arguments); TEST_TIMEOUT / BENCH_TIMEOUT (run STEP: seconds per program, default 300 / 560);
# NVIDIA_LIB_DIRS (run: where cuBLAS and cuDNN are, if not in PyTorch's wheels).
# It only reads GPU facts (nvidia-smi --query-gpu); it never changes a GPU setting.
set -uo pipefail

die() {
  echo "gpu-suite: $*" >&2
  exit 2
}

script_dir=$(cd "$(dirname "$0")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)
size_limit=$((64 * 1024 * 1024))

# The parts, beside this script here and in a prepared suite alike.
for part in common prepare run steps quick train bare-root; do
  # shellcheck source=/dev/null
  source "$script_dir/gpu-suite/$part.sh" || die "missing $script_dir/gpu-suite/$part.sh"
done

case "${1:-}" in
  prepare) shift && prepare "$@" ;;
  run) shift && run "$@" ;;
  ci-dry-run) shift && ci_dry_run "$@" ;;
  -h | --help | help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
  *) die "usage: gpu-suite.sh prepare [DIR] [--from BUILD] | run OUT quick [--dry-run] | run OUT STEP... |" \
    "ci-dry-run [DIR]   (gpu-suite.sh --help)" ;;
esac
