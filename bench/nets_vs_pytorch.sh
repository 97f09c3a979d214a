#!/usr/bin/env bash
# A net's training step (1 channel, 2 classes, batch 32 (the mapnets: 64), the net's nominal input) in massmap
# (nets_bench's <net>/cpu/width:1/batch:32) and in PyTorch (bench/pytorch_nets.py, Debian's python3-torch on OpenBLAS:
# tools/install-baselines.sh), alternating rounds in one session so both see the same load; the load average before
# each round, then each side's median images/s and the ratio. Process CPU seconds per step are printed by both, so a
# loaded run can be read per CPU second too. First bench/pytorch_nets_match.py checks that the PyTorch net is ours
# (every layer's shape, parameters and multiply-adds against `massmap nets show`); the run stops if it is not.
#   bench/nets_vs_pytorch.sh NET [build dir (build)] [rounds (3)] [threads (2)] [train | inference (train)]
#                            [repetitions per round and side (3)]
#                            [PyTorch steps per repetition (2; vgg16 1; the mapnets 20)]
# PRECISION=bfloat16 in the environment runs ours with --precision=bfloat16 (AMX or AVX512-BF16) and PyTorch with its
# bfloat16 autocast (pytorch_nets.py --bfloat16).
# NET: alexnet, vgg16, googlenet, mapnet_bn or mapnet_bn_fine. inference: the forward pass alone (nets_bench's
# .../inference row, pytorch_nets.py --inference). nets_bench times one step per repetition at batch 32 (each takes
# over its 0.5 s minimum), after a warm-up step; PyTorch warms up one step, then times the given steps per repetition.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  echo "usage: bench/nets_vs_pytorch.sh alexnet|vgg16|googlenet|mapnet_bn|mapnet_bn_fine [build] [rounds] [threads]" \
    "[train|inference] [repetitions] [steps]" >&2
  exit 2
fi
net=$1
build=${2:-build}
rounds=${3:-3}
threads=${4:-2}
mode=${5:-train}
repetitions=${6:-3}
batch=32
case "$net" in
  alexnet | googlenet) steps=${7:-2} ;;
  vgg16) steps=${7:-1} ;;                     # a step at batch 32 is about 3 TFLOP
  mapnet_bn | mapnet_bn_fine) steps=${7:-20} batch=64 ;;  # the demo's batch; a step is about 16 / 20 GFLOP
  *) echo "nets_vs_pytorch.sh: NET must be alexnet, vgg16, googlenet, mapnet_bn or mapnet_bn_fine, not '$net'" >&2 &&
    exit 2 ;;
esac
row="$net/cpu/width:1/batch:$batch"
torch_flags=()
ours_flags=()
case "${PRECISION:-float32}" in
  float32) ;;
  bfloat16) torch_flags=(--bfloat16) ours_flags=(--precision=bfloat16) ;;
  *) echo "nets_vs_pytorch.sh: PRECISION must be float32 or bfloat16, not '$PRECISION'" >&2 && exit 2 ;;
esac
if [ "$mode" = inference ]; then
  row="$row/inference"
  torch_flags+=(--inference)
elif [ "$mode" != train ]; then
  echo "nets_vs_pytorch.sh: mode must be train or inference, not '$mode'" >&2
  exit 2
fi
for program in nets_bench massmap; do
  [ -x "$build/bin/$program" ] || { echo "nets_vs_pytorch.sh: no $build/bin/$program (build it first)" >&2 && exit 2; }
done
export OMP_NUM_THREADS=$threads
/usr/bin/python3 -s bench/pytorch_nets_match.py --massmap "$build/bin/massmap" "$net" 2>&1 | grep -v -i numpy
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "# $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $build/bin/nets_bench $row vs" \
  "bench/pytorch_nets.py --net $net, $mode, ${PRECISION:-float32}, $threads threads, $repetitions repetitions per round (PyTorch $steps" \
  "steps each), $(nproc) cores: $(lscpu | sed -n 's/^Model name: *//p')"
for round in $(seq 1 "$rounds"); do
  echo "== round $round ours, load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
  "$build/bin/nets_bench" "${ours_flags[@]}" --benchmark_filter="^$row(/real_time)?\$" --benchmark_repetitions="$repetitions" \
    --benchmark_report_aggregates_only=false 2>&1 | grep -E "^$net/" | grep -v -E "_(mean|median|stddev|cv)" |
    tee -a "$log"
  echo "== round $round pytorch, load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
  /usr/bin/python3 -s bench/pytorch_nets.py --net "$net" --threads "$threads" --repetitions "$repetitions" \
    --steps "$steps" --batch "$batch" --warmup 1 "${torch_flags[@]}" 2>&1 |
    grep -v -i numpy | tee -a "$log"
done
echo "== end, load $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 -s - "$log" "$net" <<'PY'
import re, statistics, sys
ours, torch, ours_cpu, torch_cpu = [], [], [], []
for line in open(sys.argv[1]):
    if line.startswith(sys.argv[2] + "/"):
        rate = re.search(r"images/s=([0-9.]+)([kMG]?)/s", line)  # Google Benchmark writes 1.2k/s for 1200
        ours.append(float(rate.group(1)) * {"": 1, "k": 1e3, "M": 1e6, "G": 1e9}[rate.group(2)])
        cpu = re.search(r"cpu_s/(?:step|batch)=([0-9.]+)", line)
        if cpu: ours_cpu.append(float(cpu.group(1)))
    m = re.match(r"repetition \d+: ([0-9.]+) ms/step, ([0-9.]+) images/s, process CPU ([0-9.]+) s/step", line)
    if m:
        torch.append(float(m.group(2)))
        torch_cpu.append(float(m.group(3)))
if not (ours and torch):
    sys.exit(f"nets_vs_pytorch.sh: no rates read ({len(ours)} of ours, {len(torch)} of PyTorch's)")
o, t = statistics.median(ours), statistics.median(torch)
print(f"{sys.argv[2]}: massmap median {o:.2f} images/s ({len(ours)} runs), pytorch median {t:.2f} ({len(torch)} runs): "
      f"{o / t:.2f}x")
if ours_cpu and torch_cpu:
    oc, tc = statistics.median(ours_cpu), statistics.median(torch_cpu)
    print(f"process CPU per step: massmap {oc:.2f} s, pytorch {tc:.2f} s: {tc / oc:.2f}x per CPU second")
PY
