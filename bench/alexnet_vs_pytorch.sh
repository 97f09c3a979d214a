#!/usr/bin/env bash
# AlexNet's training step (1 channel, 2 classes, batch 32, 227x227) in massmap (nets_bench) and in PyTorch
# (bench/pytorch_alexnet.py, Debian's python3-torch on OpenBLAS: tools/install-baselines.sh), alternating rounds in
# one session so both see the same load; the load average before each round, then each side's median images/s and
# the ratio. Process CPU seconds per step are printed by both, so a loaded run can be read per CPU second too.
#   bench/alexnet_vs_pytorch.sh [build dir (build)] [rounds (3)] [threads (2)] [train | inference (train)]
# inference: the forward pass alone (nets_bench's .../inference row, pytorch_alexnet.py --inference).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
rounds=${2:-3}
threads=${3:-2}
mode=${4:-train}
row="alexnet/cpu/width:1/batch:32"
torch_flags=()
if [ "$mode" = inference ]; then
  row="$row/inference"
  torch_flags=(--inference)
elif [ "$mode" != train ]; then
  echo "alexnet_vs_pytorch.sh: mode must be train or inference, not '$mode'" >&2
  exit 2
fi
export OMP_NUM_THREADS=$threads
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "# $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $build/bin/nets_bench vs bench/pytorch_alexnet.py, $mode, $threads threads, $(nproc) cores: $(lscpu | sed -n 's/^Model name: *//p')"
for round in $(seq 1 "$rounds"); do
  echo "== round $round ours, load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
  "$build/bin/nets_bench" --benchmark_filter="^$row(/real_time)?\$" --benchmark_repetitions=3 \
    --benchmark_report_aggregates_only=false 2>&1 | grep -E "^alexnet" | grep -v -E "_(mean|stddev|cv)" | tee -a "$log"
  echo "== round $round pytorch, load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
  /usr/bin/python3 -s bench/pytorch_alexnet.py --threads "$threads" --repetitions 3 --steps 2 --warmup 1 \
    "${torch_flags[@]}" 2>&1 |
    grep -v -i numpy | tee -a "$log"
done
echo "== end, load $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 -s - "$log" <<'PY'
import re, statistics, sys
ours, torch, ours_cpu, torch_cpu = [], [], [], []
for line in open(sys.argv[1]):
    if line.startswith("alexnet/") and "_median" not in line:
        ours.append(float(re.search(r"images/s=([0-9.]+)", line).group(1)))
        cpu = re.search(r"cpu_s/(?:step|batch)=([0-9.]+)", line)
        if cpu: ours_cpu.append(float(cpu.group(1)))
    m = re.match(r"repetition \d+: ([0-9.]+) ms/step, ([0-9.]+) images/s, process CPU ([0-9.]+) s/step", line)
    if m:
        torch.append(float(m.group(2)))
        torch_cpu.append(float(m.group(3)))
if ours and torch:
    o, t = statistics.median(ours), statistics.median(torch)
    print(f"massmap median {o:.2f} images/s ({len(ours)} runs), pytorch median {t:.2f} ({len(torch)} runs): "
          f"{o / t:.2f}x")
    if ours_cpu and torch_cpu:
        oc, tc = statistics.median(ours_cpu), statistics.median(torch_cpu)
        print(f"process CPU per step: massmap {oc:.2f} s, pytorch {tc:.2f} s: {tc / oc:.2f}x per CPU second")
PY
