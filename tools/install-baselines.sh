#!/usr/bin/env bash
# Installs the CPU baselines of the benchmarks (Debian 12 packages), so anyone can rerun the comparisons:
#   python3-torch            PyTorch 1.13 for bench/pytorch_nets.py (the AlexNet, VGG-16, GoogLeNet training step)
#   libopenblas0-pthread     OpenBLAS; as libblas.so.3 it is what Debian's PyTorch loads for its linear layers.
#                            Without it PyTorch runs on the reference netlib BLAS, about 3x slower on AlexNet, a
#                            baseline no user runs (bench/pytorch_nets.py refuses it)
#   libopenblas-pthread-dev  OpenBLAS headers: the second baseline of bench/cpu_gemm_bench
#   libdnnl-dev              oneDNN: the baseline of bench/cpu_conv_bench
# Idempotent: present packages are skipped; apt-get update runs only when something is missing. Then libblas.so.3 is
# pointed at OpenBLAS (update-alternatives) in case the reference BLAS was selected by hand.
set -euo pipefail

packages=(python3-torch libopenblas0-pthread libopenblas-pthread-dev libdnnl-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-baselines: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-baselines: all ${#packages[@]} packages present"
fi

arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
openblas=/usr/lib/$arch/openblas-pthread/libblas.so.3
if [ -e "$openblas" ]; then
  $SUDO update-alternatives --set "libblas.so.3-$arch" "$openblas" >/dev/null
  echo "install-baselines: libblas.so.3 -> $(readlink -f /usr/lib/$arch/libblas.so.3)"
fi
