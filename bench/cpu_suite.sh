#!/usr/bin/env bash
# Every CPU comparison of the README's performance section, one after another, each into its own
# bench/results/<name>-<date><suffix>.txt with the commit, the command and the load average before and after:
# the convolution suite against oneDNN (2 threads and 1), the GEMM against OpenBLAS, the training step and the forward
# pass of AlexNet, GoogLeNet, VGG-16, mapnet_bn and mapnet_bn_fine against PyTorch (bench/nets_vs_pytorch.sh), and
# VGG-16's step profile.
# Meant for a quiet machine (about 40 minutes on 2 cores); the load lines say whether it was one.
#   bench/cpu_suite.sh [build dir (build)] [suffix for the file names (none)]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
suffix=${2:-}
date=$(date +%F)
run() {  # name command...
  local name=$1
  shift
  local file="bench/results/$name-$date$suffix.txt"
  {
    echo "# $(git rev-parse --short HEAD 2>/dev/null || echo '?'): $*"
    echo "# before: $(cut -d' ' -f1-3 /proc/loadavg) (load average), $(nproc) cores"
    "$@" || echo "# exit status $?"
    echo "# after: $(cut -d' ' -f1-3 /proc/loadavg)"
  } > "$file" 2>&1
  echo "cpu_suite: $file"
}
export OMP_NUM_THREADS=2
run cpu-conv "$build/bin/cpu_conv_bench"
run cpu-gemm "$build/bin/cpu_gemm_bench"
for net in alexnet googlenet vgg16 mapnet_bn mapnet_bn_fine; do
  run "$net-vs-pytorch" bench/nets_vs_pytorch.sh "$net" "$build" 3 2 train
  run "$net-vs-pytorch-inference" bench/nets_vs_pytorch.sh "$net" "$build" 3 2 inference
done
run vgg16-profile "$build/bin/nets_bench" --profile=vgg16/cpu/width:1/batch:32
OMP_NUM_THREADS=1 run cpu-conv-1thread "$build/bin/cpu_conv_bench"
