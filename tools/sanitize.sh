#!/usr/bin/env bash
# Builds the tests with AddressSanitizer and UndefinedBehaviorSanitizer into build-asan/ and runs them, except the
# long training test (its code paths are covered by the executor and checkpoint tests at small sizes).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=build-asan tools/build.sh -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMASSMAP_SANITIZE=ON -DMASSMAP_BUILD_BENCH=OFF
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-asan --output-on-failure -E '^learning_test$'
