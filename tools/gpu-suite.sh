#!/usr/bin/env bash
# The GPU suite: built here, run on the lent GPU machine, which has the NVIDIA driver, the CUDA toolkit,
# compute-sanitizer and PyTorch's pip wheels of cuBLAS and cuDNN, but none of our Debian libraries and no network,
# and takes at most 64 MiB with it.
#
#   tools/gpu-suite.sh prepare [DIR]         (here) configures build-gpu-suite/ (Release, sm_90, no -march=native),
#                                            builds the tests and the GPU benchmarks, and collects into DIR (default
#                                            gpu-suite/, git-ignored): stripped binaries in bin/, the shared libraries
#                                            a stock CUDA machine lacks in lib/ (not the driver, not cuBLAS/cuDNN),
#                                            this script, run.sh and manifest.txt. Checks the size is under 64 MiB.
#   tools/gpu-suite.sh run OUTDIR [STEP...]  (there) runs STEPs, each sized to fit one 10-minute command:
#       tests         every test program (the cuda.* cases run where a GPU is; simt.* run on the CPU)
#       tests-cuda    only the cuda.* cases of every test program (quick)
#       sanitizer     the cuda.* cases of the gpu_* and simt_* kernel tests under compute-sanitizer memcheck and
#                     racecheck (memcheck, racecheck: one tool only)
#       bench-gemm, bench-memory, bench-conv   one GPU benchmark program each
#       bench         all three (may need more than 10 minutes at batch 128: run them one by one)
#       all           tests sanitizer bench (more than 10 minutes: one step per call is safer)
#     and writes OUTDIR/summary.json (every program run so far: step, command, exit code, seconds, log), logs in
#     OUTDIR/logs/, benchmark results in OUTDIR/<program>.json. Several calls may share one OUTDIR.
#
# Environment: JOBS (prepare: parallel compile jobs, default 2), SUITE_CMAKE_ARGS (prepare: extra configure
# arguments), ONLY (run: a regex; only programs whose name, or name:tool under the sanitizer, matches), BENCH_ARGS
# (run: extra benchmark arguments, e.g. --batch=64 --benchmark_filter=vgg), TEST_TIMEOUT / BENCH_TIMEOUT (run:
# seconds per program, default 300 / 560), NVIDIA_LIB_DIRS (run: where cuBLAS and cuDNN are, if not in PyTorch's
# wheels).
# It reads GPU facts (nvidia-smi --query-gpu) and never changes GPU settings.
set -uo pipefail

die() {
  echo "gpu-suite: $*" >&2
  exit 2
}

script_dir=$(cd "$(dirname "$0")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)
size_limit=$((64 * 1024 * 1024))

# ---- prepare ------------------------------------------------------------------------------------------------------
# Shared libraries a stock CUDA machine has anyway, or that must come from it: glibc and the loader, the driver
# (libcuda, libnvidia-*), and cuBLAS / cuDNN (hundreds of MB; PyTorch's wheels have them).
not_carried() {
  case "$(basename "$1")" in
    linux-vdso* | ld-linux* | libc.so* | libm.so* | libdl.so* | libpthread.so* | librt.so* | libutil.so* | \
      libresolv.so* | libcuda.so* | libnvidia-* | libcublas* | libcudnn*) return 0 ;;
  esac
  return 1
}

newest_glibc() {
  objdump -T "$@" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1
}

prepare() {
  local dir=${1:-gpu-suite}
  local build=build-gpu-suite
  cd "$repo_root" || exit 2
  command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || die "prepare needs nvcc (CUDA toolkit)"
  local nvcc=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
  local generator=()
  command -v ninja >/dev/null && [ ! -f "$build/Makefile" ] && generator=(-G Ninja)
  # shellcheck disable=SC2086  # SUITE_CMAKE_ARGS is a list of arguments
  cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER="$nvcc" \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DMASSMAP_NATIVE=OFF -DMASSMAP_SANITIZE=OFF -DMASSMAP_BUILD_TESTS=ON \
    -DMASSMAP_BUILD_BENCH=ON ${SUITE_CMAKE_ARGS:-} || die "configure failed"

  local tests=() benches=() src
  for src in tests/*_test.cpp; do tests+=("$(basename "$src" .cpp)"); done
  for src in bench/gpu_*_bench.cpp; do benches+=("$(basename "$src" .cpp)"); done
  grep -q "gpu_gemm_bench" "$build/build.ninja" "$build/Makefile" 2>/dev/null ||
    die "the GPU benchmarks are not configured (CMake found no nvcc, cuBLAS or cuDNN?): see $build/CMakeCache.txt"
  cmake --build "$build" --parallel "${JOBS:-2}" --target "${tests[@]}" "${benches[@]}" || die "build failed"

  rm -rf "$dir"
  mkdir -p "$dir/bin" "$dir/lib"
  local name
  for name in "${tests[@]}" "${benches[@]}"; do
    cp "$build/bin/$name" "$dir/bin/"
    strip --strip-unneeded "$dir/bin/$name"
  done
  # Every library the binaries load (ldd resolves the whole tree), minus what the GPU machine provides.
  # The GCC runtime goes to lib/gcc-runtime/: `run` uses the GPU machine's own copy where that is at least as new
  # (ours needs this machine's glibc, which may be newer than the GPU machine's).
  mkdir -p "$dir/lib/gcc-runtime"
  local lib to
  for lib in $(ldd "$dir"/bin/* 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u); do
    not_carried "$lib" && continue
    to=$dir/lib
    case "$(basename "$lib")" in libstdc++.so* | libgcc_s.so* | libgomp.so*) to=$dir/lib/gcc-runtime ;; esac
    cp -L "$lib" "$to/$(basename "$lib")"
    strip --strip-unneeded "$to/$(basename "$lib")" 2>/dev/null || true
  done
  local missing
  missing=$(ldd "$dir"/bin/* 2>/dev/null | grep "not found" | grep -v -E "libcublas|libcudnn|libcuda\.so" | sort -u)
  [ -z "$missing" ] || die "libraries not found here: $missing"
  cp "$script_dir/gpu-suite.sh" "$dir/gpu-suite.sh"
  cat >"$dir/run.sh" <<'EOF'
#!/usr/bin/env bash
# Runs this GPU suite: ./run.sh OUTDIR [STEP...] (see gpu-suite.sh for the steps).
exec "$(dirname "$0")/gpu-suite.sh" run "$@"
EOF
  chmod +x "$dir/run.sh" "$dir/gpu-suite.sh"

  # The newest glibc symbol version the programs and libraries need (the GCC runtime apart: run decides on it).
  local glibc runtime_glibc
  glibc=$(newest_glibc "$dir"/bin/* "$dir"/lib/*.so*)
  runtime_glibc=$(newest_glibc "$dir"/lib/gcc-runtime/*)
  {
    echo "massmap GPU suite"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo ' + local changes')"
    echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(sed -n 's/^PRETTY_NAME=//p' /etc/os-release | tr -d '"')," \
      "$("$nvcc" --version | tail -1)"
    echo "cuda architectures: 90 (Release, no -march=native)"
    echo "needs glibc >= $glibc (our GCC runtime in lib/gcc-runtime: >= $runtime_glibc), an NVIDIA driver for" \
      "CUDA 13, cuBLAS 13 and cuDNN 9 (PyTorch's pip wheels)"
    echo "binaries: ${tests[*]} ${benches[*]}"
    echo "libraries: $(cd "$dir/lib" && echo *.so* gcc-runtime/*.so*)"
  } >"$dir/manifest.txt"
  echo "$glibc" >"$dir/glibc-version"
  echo "$runtime_glibc" >"$dir/lib/gcc-runtime/glibc-version"

  local bytes
  bytes=$(du -sb "$dir" | cut -f1)
  local libs=("$dir"/lib/*.so* "$dir"/lib/gcc-runtime/*.so*)
  echo "gpu-suite: $dir holds ${#tests[@]} test programs, ${#benches[@]} benchmarks, ${#libs[@]} libraries:" \
    "$((bytes / 1024)) KiB of the $((size_limit / 1024 / 1024)) MiB a GPU session may carry"
  du -k "$dir/bin" "${libs[@]}" | sed "s|$dir/||; s/^/  /"
  [ "$bytes" -lt "$size_limit" ] || die "$dir is $bytes bytes: over the 64 MiB limit"
  echo "gpu-suite: needs glibc >= $glibc there ($runtime_glibc for our libstdc++, used only where the machine's own" \
    "is older). On the GPU machine: tools/gpu-suite.sh run OUTDIR STEP (carry $dir)"
}

# ---- run ------------------------------------------------------------------------------------------------------------
suite_dir() {
  if [ -n "${GPU_SUITE_DIR:-}" ]; then
    echo "$GPU_SUITE_DIR"
  elif [ -f "$script_dir/manifest.txt" ] && [ -d "$script_dir/bin" ]; then
    echo "$script_dir"  # this copy lives inside a prepared suite
  else
    echo "$repo_root/gpu-suite"
  fi
}

# Directories of PyTorch's NVIDIA wheels (nvidia/cudnn/lib, nvidia/cu13/lib, nvidia/cublas/lib, ...).
nvidia_lib_dirs() {
  if [ -n "${NVIDIA_LIB_DIRS:-}" ]; then
    echo "$NVIDIA_LIB_DIRS" | tr ':' '\n'
    return
  fi
  local site roots=()
  for py in python3 python; do
    command -v "$py" >/dev/null || continue
    site=$("$py" -c 'import nvidia, os; print("\n".join(os.path.dirname(p) for p in nvidia.__path__))' 2>/dev/null) &&
      mapfile -t roots <<<"$site"
    break
  done
  roots+=(/usr/local/lib/python3*/dist-packages /usr/local/lib/python3*/site-packages /usr/lib/python3/dist-packages)
  local root
  for root in "${roots[@]}"; do
    [ -d "$root/nvidia" ] || continue
    find "$root/nvidia" -maxdepth 3 -name 'lib*.so*' -printf '%h\n' 2>/dev/null
  done | sort -u
}

find_library() {  # find_library NAME DIR... : the first DIR holding NAME
  local name=$1 d
  shift
  for d in "$@"; do [ -e "$d/$name" ] && echo "$d/$name" && return 0; done
  return 1
}

find_sanitizer() {
  command -v compute-sanitizer 2>/dev/null && return 0
  local c
  for c in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer \
    /usr/local/cuda-*/bin/compute-sanitizer; do
    [ -x "$c" ] && echo "$c" && return 0
  done
  return 1
}

# The newest version tag (GLIBCXX_3.4.30, GCC_12.0.0, GOMP_5.0) a GCC runtime library defines.
runtime_tag() {
  local prefix
  case "$(basename "$1")" in
    libstdc++*) prefix=GLIBCXX ;;
    libgcc_s*) prefix=GCC ;;
    *) prefix=GOMP ;;
  esac
  grep -aoE "${prefix}_[0-9]+(\.[0-9]+)*" "$1" | sed "s/^${prefix}_//" | sort -uV | tail -1
}

system_library() {  # the loader's copy of a soname on this machine
  local name=$1 d
  { ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null; } |
    awk -v n="$name" '$1 == n && /x86-64/ {print $NF; exit}' | grep . && return 0
  for d in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib64 /usr/lib64; do
    [ -e "$d/$name" ] && echo "$d/$name" && return 0
  done
  return 1
}

# OUTDIR/.gcc-runtime links our libstdc++, libgcc_s, libgomp only where this machine lacks a copy at least as new:
# its own is built for its glibc, ours needs the build machine's.
choose_gcc_runtime() {
  local dir=$out/.gcc-runtime lib name system ours theirs
  rm -rf "$dir"
  mkdir -p "$dir"
  for lib in "$suite"/lib/gcc-runtime/*.so*; do
    [ -e "$lib" ] || continue
    name=$(basename "$lib")
    ours=$(runtime_tag "$lib")
    if system=$(system_library "$name"); then
      theirs=$(runtime_tag "$system")
      if [ "$(printf '%s\n%s\n' "$ours" "$theirs" | sort -V | tail -1)" = "$theirs" ]; then
        echo "gpu-suite: $name: this machine's $system ($theirs) is at least as new as ours ($ours): using it" >&2
        continue
      fi
    fi
    echo "gpu-suite: $name: using the suite's ($ours; needs glibc >= $(cat "$suite/lib/gcc-runtime/glibc-version"))" >&2
    ln -s "$lib" "$dir/$name"
  done
}

json_string() {  # a JSON string literal
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/ }
  s=${s//$'\n'/ }
  printf '"%s"' "$s"
}

# record STEP NAME STATUS EXIT SECONDS LOG COMMAND [DETAIL]: one line of OUTDIR/summary.jsonl, then summary.json
# rewritten.
record() {
  printf '{"step": %s, "program": %s, "status": %s, "exit_code": %s, "seconds": %s, "log": %s, "command": %s%s}\n' \
    "$(json_string "$1")" "$(json_string "$2")" "$(json_string "$3")" "$4" "$5" "$(json_string "$6")" \
    "$(json_string "$7")" "${8:+, \"detail\": $(json_string "$8")}" >>"$out/summary.jsonl"
  {
    printf '{\n  "suite": %s,\n  "gpu": %s,\n  "runs": [\n' "$(json_string "$suite_commit")" \
      "$(json_string "$gpu_name")"
    sed '$!s/$/,/; s/^/    /' "$out/summary.jsonl"
    printf '  ]\n}\n'
  } >"$out/summary.json"
}

failed=0

# run_program STEP NAME TIMEOUT LOG CMD...: runs CMD with the suite's libraries, records it.
run_program() {
  local step=$1 name=$2 limit=$3 log=$4
  shift 4
  if [ -n "${ONLY:-}" ] && ! [[ $name =~ $ONLY ]]; then return 0; fi
  local start end status
  echo "gpu-suite: [$step] $name: $*" >&2
  start=$(date +%s.%N)
  env LD_LIBRARY_PATH="$lib_path" timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
  status=$?
  end=$(date +%s.%N)
  local seconds state=passed
  seconds=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}')
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    state="timed out after ${limit}s"
  elif [ "$status" -ne 0 ]; then
    state=failed
  fi
  [ "$state" = passed ] || failed=1
  # doctest's count line, so cuda.* cases skipped for want of a GPU are not mistaken for passes.
  local detail
  detail=$(grep -ao 'test cases:.*' "$log" | tail -1)
  if [[ $detail =~ \|\ 0\ passed.*\ ([1-9][0-9]*)\ skipped ]]; then
    state="$state: no case ran (${BASH_REMATCH[1]} skipped or filtered out; no GPU?)"
  fi
  echo "gpu-suite: [$step] $name: $state (exit $status, ${seconds}s${detail:+; $detail}), log $log" >&2
  [ "$status" -eq 0 ] || tail -n 15 "$log" | sed 's/^/    /' >&2
  record "$step" "$name" "$state" "$status" "$seconds" "${log#"$out"/}" "$*" "$detail"
}

cuda_cases() {  # how many cuda.* test cases a doctest program has (skipped or not)
  env LD_LIBRARY_PATH="$lib_path" "$1" --list-test-cases --test-case='cuda.*' --no-skip 2>/dev/null |
    sed -n 's/.*passing the current filters: //p'
}

step_tests() {  # $1: the step; then extra doctest arguments (tests-cuda: the cuda.* cases only)
  local step=$1
  shift
  mkdir -p "$out/logs/$step"
  local t name
  for t in "$suite"/bin/*_test; do
    name=$(basename "$t")
    if [ "$name" = cli_test ]; then
      # It runs the massmap binary at the build tree's absolute path, which does not travel; CPU-only anyway.
      record "$step" "$name" "skipped: runs the build tree's massmap binary by absolute path" 0 0 "" "$t"
      continue
    fi
    [ "$step" != tests-cuda ] || [ "$(cuda_cases "$t")" != 0 ] || continue  # nothing to run
    run_program "$step" "$name" "${TEST_TIMEOUT:-300}" "$out/logs/$step/$name.log" "$t" "$@"
  done
}

step_sanitizer() {  # the tools to run: memcheck, racecheck
  mkdir -p "$out/logs/sanitizer"
  local sanitizer
  if ! sanitizer=$(find_sanitizer); then
    echo "gpu-suite: compute-sanitizer not found (looked in PATH, /usr/local/cuda/bin," \
      "/usr/local/cuda/compute-sanitizer): sanitizer step skipped" >&2
    record sanitizer compute-sanitizer "skipped: compute-sanitizer not found" 127 0 "" "compute-sanitizer"
    return 0
  fi
  local t name tool
  for t in "$suite"/bin/*; do
    name=$(basename "$t")
    [[ $name =~ ^(gpu|simt)_.*test$ ]] || continue  # the kernel tests
    [ "$(cuda_cases "$t")" != 0 ] || continue
    for tool in "$@"; do
      # --error-exitcode: a finding fails the run even where the test itself passes.
      run_program sanitizer "$name:$tool" "${TEST_TIMEOUT:-300}" "$out/logs/sanitizer/$name.$tool.log" \
        "$sanitizer" --tool "$tool" --error-exitcode 86 "$t" --test-case='cuda.*'
    done
  done
}

step_bench() {  # $1: gemm, memory or conv
  local program=gpu_$1_bench
  [ -x "$suite/bin/$program" ] || {
    record "bench-$1" "$program" "missing from the suite" 127 0 "" "$suite/bin/$program"
    failed=1
    return 0
  }
  mkdir -p "$out/logs/bench"
  # Shorter timing than the defaults so every program fits one 10-minute call; --keep_going so one failed check
  # costs one row, not the GPU session (the program still exits 1).
  # shellcheck disable=SC2086  # BENCH_ARGS is a list of arguments
  run_program "bench-$1" "$program" "${BENCH_TIMEOUT:-560}" "$out/logs/bench/$program.txt" "$suite/bin/$program" \
    --benchmark_min_time=0.1 --baseline_min_time=0.1 --keep_going --benchmark_counters_tabular=true \
    --benchmark_out="$out/$program.json" --benchmark_out_format=json ${BENCH_ARGS:-}
}

run() {
  [ $# -ge 1 ] || die "usage: gpu-suite.sh run OUTDIR [STEP...] (see gpu-suite.sh --help)"
  out=$1
  shift
  [ $# -ge 1 ] || set -- all
  suite=$(suite_dir)
  [ -f "$suite/manifest.txt" ] || die "no prepared suite at $suite (run 'tools/gpu-suite.sh prepare' where it builds)"
  mkdir -p "$out" || die "cannot create $out"
  out=$(cd "$out" && pwd)
  suite_commit=$(sed -n 's/^commit: //p' "$suite/manifest.txt")

  # Read-only facts about the GPU (and a clear line where there is none).
  gpu_name="none found"
  if command -v nvidia-smi >/dev/null; then
    gpu_name=$(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>/dev/null |
      head -1)
    [ -n "$gpu_name" ] || gpu_name="none found (nvidia-smi lists no GPU)"
  fi
  echo "gpu-suite: suite $suite ($suite_commit), GPU: $gpu_name" >&2

  local need have
  need=$(cat "$suite/glibc-version" 2>/dev/null)
  have=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
  if [ -n "$need" ] && [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]; then
    echo "gpu-suite: warning: the suite needs glibc >= $need, this machine has $have: programs may not start" >&2
  fi

  choose_gcc_runtime

  local dirs=() d
  mapfile -t dirs < <(nvidia_lib_dirs)
  [ -d /usr/local/cuda/lib64 ] && dirs+=(/usr/local/cuda/lib64)
  lib_path="$suite/lib:$out/.gcc-runtime"
  for d in "${dirs[@]}"; do lib_path="$lib_path:$d"; done
  local cublas cudnn
  cublas=$(find_library libcublas.so.13 "${dirs[@]}") || cublas="NOT FOUND"
  cudnn=$(find_library libcudnn.so.9 "${dirs[@]}") || cudnn="NOT FOUND"
  echo "gpu-suite: cuBLAS: $cublas; cuDNN: $cudnn (the benchmarks need both; the tests neither)" >&2

  local step
  for step in "$@"; do
    case "$step" in
      tests) step_tests tests ;;
      tests-cuda) step_tests tests-cuda --test-case='cuda.*' ;;
      sanitizer) step_sanitizer memcheck racecheck ;;
      memcheck | racecheck) step_sanitizer "$step" ;;
      bench-gemm) step_bench gemm ;;
      bench-memory) step_bench memory ;;
      bench-conv) step_bench conv ;;
      bench) step_bench gemm && step_bench memory && step_bench conv ;;
      all)
        step_tests tests && step_sanitizer memcheck racecheck && step_bench gemm && step_bench memory &&
          step_bench conv
        ;;
      *) die "unknown step '$step' (tests, tests-cuda, sanitizer, memcheck, racecheck, bench, bench-gemm," \
        "bench-memory, bench-conv, all)" ;;
    esac
  done
  [ -f "$out/summary.json" ] && echo "gpu-suite: summary in $out/summary.json" >&2
  return "$failed"
}

case "${1:-}" in
  prepare)
    shift
    prepare "$@"
    ;;
  run)
    shift
    run "$@"
    ;;
  *)
    sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 2
    ;;
esac
