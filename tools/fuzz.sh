#!/usr/bin/env bash
# Fuzzes the file readers: builds the libFuzzer targets fuzz/*_fuzz.cpp with clang, ASan and UBSan into
# build-fuzz/ (RelWithDebInfo; BUILD_DIR overrides it), writes their seed corpora into build-fuzz/corpus/<target>/
# (fuzz/make_corpus.py for our parsers; build-fuzz/bin/make_image_seeds, from synth's images, for the image
# readers) and runs each target for SECONDS (default 30) on its corpus, which keeps what the run discovers for the
# next one.
#   tools/fuzz.sh [SECONDS]
# Exits nonzero if any target finds a crash, sanitizer report, leak, timeout (-timeout=10) or absurd allocation
# (-rss_limit_mb=2048); the input that did it is kept in build-fuzz/crashes/<target>/ and can be replayed with
#   build-fuzz/bin/<target> build-fuzz/crashes/<target>/<file>
# Needs clang and its runtimes (Debian: clang-14, libclang-rt-14-dev) and python3. CXX overrides the compiler,
# JOBS the build parallelism (default: nproc). Full logs: build-fuzz/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: tools/fuzz.sh [SECONDS]   (a positive whole number of seconds per target)" >&2
  exit 2
fi
dir=${BUILD_DIR:-build-fuzz}
logs=$dir/logs

if [ -z "${CXX:-}" ]; then
  for c in clang++ clang++-14; do
    if command -v "$c" >/dev/null; then CXX=$c; break; fi
  done
fi
if [ -z "${CXX:-}" ] || ! command -v "$CXX" >/dev/null; then
  echo "fuzz: clang++ not found; install clang-14 and libclang-rt-14-dev (or set CXX)" >&2
  exit 1
fi
command -v python3 >/dev/null || { echo "fuzz: python3 not found (it writes the seed corpora)" >&2; exit 1; }

targets=()
for src in fuzz/*_fuzz.cpp; do
  name=$(basename "$src" .cpp)
  targets+=("$name")
done
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no fuzz/*_fuzz.cpp targets" >&2
  exit 1
fi

mkdir -p "$logs"
# Shows the end of a log and fails.
fail_with_log() {
  echo "fuzz: $1 failed; last lines of $2:" >&2
  tail -n 40 "$2" >&2
  exit 1
}

generator=()
command -v ninja >/dev/null && [ ! -f "$dir/Makefile" ] && generator=(-G Ninja)
CC=${CC:-clang} CXX=$CXX cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_CXX_COMPILER="$CXX" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMASSMAP_FUZZ=ON -DMASSMAP_BUILD_TESTS=OFF -DMASSMAP_BUILD_BENCH=OFF \
  >"$logs/configure.log" 2>&1 || fail_with_log "configure" "$logs/configure.log"
cmake --build "$dir" --parallel "${JOBS:-$(nproc)}" --target "${targets[@]}" make_image_seeds >"$logs/build.log" 2>&1 ||
  fail_with_log "build" "$logs/build.log"

python3 fuzz/make_corpus.py "$dir/corpus" >"$logs/corpus.log" 2>&1 || fail_with_log "seed corpus" "$logs/corpus.log"
"$dir/bin/make_image_seeds" "$dir/corpus" >>"$logs/corpus.log" 2>&1 || fail_with_log "image seeds" "$logs/corpus.log"

# UBSan reports are recoverable under MASSMAP_FUZZ; halt on the first so the fuzzer records it as a crash.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

findings=0
for t in "${targets[@]}"; do
  corpus=$dir/corpus/$t
  crashes=$dir/crashes/$t
  log=$logs/$t.log
  mkdir -p "$corpus" "$crashes"
  args=(-max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
        -artifact_prefix="$crashes/")
  [ -f "fuzz/${t%_fuzz}.dict" ] && args+=(-dict="fuzz/${t%_fuzz}.dict")
  status=0
  "$dir/bin/$t" "${args[@]}" "$corpus" >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  [ -n "$runs" ] || runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
  files=$(find "$corpus" -type f | wc -l)
  if [ "$status" -eq 0 ]; then
    printf 'fuzz: %-18s %10s executions in %ss, corpus %s inputs, no findings\n' "$t" "${runs:-?}" "$seconds" "$files"
  else
    findings=$((findings + 1))
    printf 'fuzz: %-18s FINDING (exit %s) after %s executions; log %s\n' "$t" "$status" "${runs:-?}" "$log" >&2
    grep -E '^(==[0-9]+==ERROR|SUMMARY:|.*runtime error:|[a-z_]+_fuzz: )' "$log" | head -n 5 >&2 || true
    sed -n 's/^\(artifact_prefix.*\|Test unit written to .*\)$/  \1/p' "$log" >&2
  fi
done
if [ "$findings" -ne 0 ]; then
  echo "fuzz: $findings of ${#targets[@]} targets found a problem" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no findings"
