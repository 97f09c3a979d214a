#!/usr/bin/env bash
# Configures and builds massmap into build/ (Release). Extra arguments go to CMake's configure step, e.g.
#   tools/build.sh -DMASSMAP_NATIVE=ON
# BUILD_DIR overrides the folder (the sanitizer run uses build-asan).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BUILD_DIR:-build}
# Paths relative to the checkout in ccache's keys: a second build folder (the GPU suite's) reuses
# the objects whose flags agree.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
generator=()
command -v ninja >/dev/null && [ ! -f "$dir/Makefile" ] && generator=(-G Ninja)
cmake -S . -B "$dir" "${generator[@]}" "$@"
cmake --build "$dir" --parallel "$(nproc)"
