#!/usr/bin/env bash
# Installs the Debian 12 packages massmap builds against. Idempotent: packages already present are skipped and
# `apt-get update` runs at most once, only when something is missing.
set -euo pipefail

packages=(
  g++ cmake make ninja-build git ccache pkg-config
  libeigen3-dev       # GEMM behind the fast CPU path
  libomp-dev          # OpenMP (g++ brings libgomp; this keeps clang builds working too)
  doctest-dev         # unit tests
  nlohmann-json3-dev  # safetensors headers, configs
  libbenchmark-dev    # bench/
  libdnnl-dev         # oneDNN: CPU baseline in bench/ only
  libopenblas-pthread-dev  # OpenBLAS: CPU GEMM baseline of bench/cpu_gemm_bench (never in the engine); it also
                           # becomes libblas.so.3, so bench/pytorch_nets.py runs PyTorch on it, not netlib
  libstb-dev          # PNG/JPEG/PGM io
  libtiff-dev         # TIFF io
  libdcmtk-dev        # DICOM io
  clang libclang-rt-14-dev  # libFuzzer targets of our parsers (tools/fuzz.sh)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
