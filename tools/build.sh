#!/usr/bin/env bash
# Configures and builds massmap into build/ (Release). Extra arguments go to CMake's configure step, e.g.
#   tools/build.sh -DMASSMAP_NATIVE=ON
# BUILD_DIR overrides the folder (the sanitizer run uses build-asan).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BUILD_DIR:-build}
generator=()
command -v ninja >/dev/null && [ ! -f "$dir/Makefile" ] && generator=(-G Ninja)
cmake -S . -B "$dir" "${generator[@]}" "$@"
cmake --build "$dir" --parallel "$(nproc)"
