# shellcheck shell=bash
# run OUT quick [--dry-run] | run OUT STEP...: the run on the GPU machine (sourced by tools/gpu-suite.sh).
# What comes back is at most 6 files in OUT, rewritten after every part: summary.json, suite.log (everything, in
# order), logs.tar.gz (each program's own log) and the benchmark JSONs. Working files live outside OUT.

suite_dir() {
  if [ -n "${GPU_SUITE_DIR:-}" ]; then
    echo "$GPU_SUITE_DIR"
  elif [ -f "$script_dir/manifest.txt" ]; then
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
  local site roots=() py
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

# $work/gcc-runtime links our libstdc++, libgcc_s, libgomp only where this machine lacks a copy at least as new:
# its own is built for its glibc, ours needs the build machine's.
choose_gcc_runtime() {
  local dir=$work/gcc-runtime lib name system ours theirs
  mkdir -p "$dir"
  for lib in "$suite"/lib/gcc-runtime/*.so*; do
    [ -e "$lib" ] || continue
    name=$(basename "$lib")
    ours=$(runtime_tag "$lib")
    if system=$(system_library "$name"); then
      theirs=$(runtime_tag "$system")
      if [ "$(printf '%s\n%s\n' "$ours" "$theirs" | sort -V | tail -1)" = "$theirs" ]; then
        say "$name: this machine's $system ($theirs) is at least as new as ours ($ours): using it"
        continue
      fi
    fi
    say "$name: using the suite's ($ours; needs glibc >= $(cat "$suite/lib/gcc-runtime/glibc-version"))"
    ln -s "$lib" "$dir/$name"
  done
}

say() {  # a line on stderr and in OUT/suite.log
  echo "gpu-suite: $*" >&2
  echo "gpu-suite: $*" >>"$out/suite.log"
}

# ---- records: one JSON line per program run and per finished part; summary.json is rebuilt from them -------------
failed=0

# record NAME STATUS EXIT SECONDS LOG COMMAND [DETAIL]
record() {
  printf '{"part": %s, "program": %s, "status": %s, "exit_code": %s, "seconds": %s, "log": %s, "command": %s%s}\n' \
    "$(json_string "$part_name")" "$(json_string "$1")" "$(json_string "$2")" "$3" "$4" "$(json_string "$5")" \
    "$(json_string "$6")" "${7:+, \"detail\": $(json_string "$7")}" >>"$work/runs.jsonl"
  case "$2" in
    passed*) part_passed=$((part_passed + 1)) ;;
    skipped* | reserved*) part_skipped=$((part_skipped + 1)) part_skip_reason=$2 ;;
    *) part_failed=$((part_failed + 1)) failed=1 ;;
  esac
}

json_lines() {  # the lines of a .jsonl file as the items of a JSON array, indented
  [ -s "$1" ] && sed '$!s/$/,/; s/^/    /' "$1"
}

# Rewrites every file in OUT (each through a temporary name, so a reader never sees half a file).
write_outputs() {
  local finished=$1 tmp
  tmp=$out/.summary.json.tmp
  {
    printf '{\n  "suite": %s,\n  "gpu": %s,\n  "mode": %s,\n  "budget_s": %s,\n  "elapsed_s": %s,\n' \
      "$(json_string "$suite_commit")" "$(json_string "$gpu_name")" "$(json_string "$mode")" "${budget:-null}" \
      "$(seconds_since "$run_started")"
    printf '  "finished": %s,\n  "parts": [\n' "$finished"
    json_lines "$work/parts.jsonl"
    printf '  ],\n  "runs": [\n'
    json_lines "$work/runs.jsonl"
    printf '  ]\n}\n'
  } >"$tmp" && mv "$tmp" "$out/summary.json"
  local f
  for f in "$work"/*.json; do
    [ -e "$f" ] && cp "$f" "$out/.$(basename "$f").tmp" && mv "$out/.$(basename "$f").tmp" "$out/$(basename "$f")"
  done
  tar -czf "$out/.logs.tar.gz.tmp" -C "$work" logs 2>/dev/null && mv "$out/.logs.tar.gz.tmp" "$out/logs.tar.gz"
}

# ---- parts: a time cap each, inside the run's budget ----------------------------------------------------------
part_begin() {  # part_begin NAME CAP_SECONDS
  part_name=$1 part_cap=$2 part_started=$(now)
  part_passed=0 part_failed=0 part_skipped=0 part_skip_reason=""
  local left=$part_cap
  if [ -n "${deadline:-}" ]; then
    left=$(awk -v d="$deadline" -v n="$(now)" -v c="$part_cap" 'BEGIN {l = int(d - n); print (l < c ? l : c)}')
  fi
  part_deadline=$(awk -v n="$(now)" -v l="$left" 'BEGIN {printf "%.3f", n + (l > 0 ? l : 0)}')
  say "[$part_name] begins (cap ${part_cap} s; it may take ${left} s)"
}

part_left() {  # whole seconds left in the current part
  awk -v d="$part_deadline" -v n="$(now)" 'BEGIN {l = int(d - n); print (l > 0 ? l : 0)}'
}

part_end() {  # part_end [HEADLINE_JSON_OBJECT]
  local status=passed headline=${1:-}
  [ -n "$headline" ] || headline='{}'
  if [ "$part_failed" -gt 0 ]; then
    status="failed ($part_failed of $((part_passed + part_failed + part_skipped)) runs)"
  elif [ "$part_passed" -eq 0 ] && [ "$part_skipped" -gt 0 ]; then
    status=$part_skip_reason
  elif [ "$part_skipped" -gt 0 ]; then
    status="passed $part_passed, skipped $part_skipped (the last: $part_skip_reason)"
  elif [ "$part_passed" -eq 0 ]; then
    status="nothing ran"
  fi
  printf '{"part": %s, "status": %s, "seconds": %s, "cap_s": %s, "headline": %s}\n' "$(json_string "$part_name")" \
    "$(json_string "$status")" "$(seconds_since "$part_started")" "$part_cap" "$headline" >>"$work/parts.jsonl"
  say "[$part_name] $status in $(seconds_since "$part_started") s${1:+: $1}"
  write_outputs false
}

# run_program NAME LOG CMD...: runs CMD with the suite's libraries inside the part's time left, records it.
run_program() {
  local name=$1 log=$2
  shift 2
  if [ -n "${ONLY:-}" ] && ! [[ $name =~ $ONLY ]]; then return 0; fi
  local limit
  limit=$(part_left)
  [ -n "${program_limit:-}" ] && [ "$program_limit" -lt "$limit" ] && limit=$program_limit
  if [ "$limit" -lt 3 ]; then
    say "[$part_name] $name: skipped, the part's time is spent"
    record "$name" "skipped: out of time" 0 0 "" "$*"
    return 0
  fi
  mkdir -p "$(dirname "$log")"
  say "[$part_name] $name (at most $limit s): $*"
  local start status
  start=$(now)
  if [ -n "${own_libraries:-}" ]; then  # a program that brings its own (PyTorch): the suite's must not shadow them
    env -u LD_LIBRARY_PATH timeout --kill-after=5 "$limit" "$@" >"$log" 2>&1
  else
    env LD_LIBRARY_PATH="$lib_path" timeout --kill-after=5 "$limit" "$@" >"$log" 2>&1
  fi
  status=$?
  local seconds state=passed detail
  seconds=$(seconds_since "$start")
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    state="timed out after ${limit} s"
  elif [ "$status" -ne 0 ]; then
    state=failed
  fi
  # doctest's count line, so cuda.* cases skipped for want of a GPU are not mistaken for passes.
  detail=$(grep -ao 'test cases:.*' "$log" | tail -1)
  if [ "$state" = passed ] && [[ $detail =~ \|\ +0\ passed.*\ ([1-9][0-9]*)\ skipped ]]; then
    state="failed: no case ran (${BASH_REMATCH[1]} skipped; no GPU?)"
    status=1
  fi
  say "[$part_name] $name: $state (exit $status, $seconds s${detail:+; $detail})"
  {
    echo "----- $name: $* ($state) -----"
    if [ "$(wc -c <"$log")" -gt 200000 ]; then
      head -c 100000 "$log"
      echo "[... $(wc -c <"$log") bytes in all: the whole log is in logs.tar.gz ...]"
      tail -c 100000 "$log"
    else
      cat "$log"
    fi
    echo
  } >>"$out/suite.log"
  record "$name" "$state" "$status" "$seconds" "${log#"$work"/}" "$*" "$detail"
}

# ---- set-up ---------------------------------------------------------------------------------------------------
run() {
  [ $# -ge 2 ] || die "usage: gpu-suite.sh run OUT quick [--dry-run] | run OUT STEP... (gpu-suite.sh --help)"
  out=$1
  shift
  mkdir -p "$out" || die "cannot create $out"
  out=$(cd "$out" && pwd)
  run_started=$(now)
  : >"$out/suite.log"
  work=$(mktemp -d "${TMPDIR:-/tmp}/massmap-gpu-suite.XXXXXX") || die "cannot create a working folder"
  mkdir -p "$work/logs"
  : >"$work/runs.jsonl"
  : >"$work/parts.jsonl"

  suite=$(suite_dir)
  [ -f "$suite/manifest.txt" ] || die "no prepared suite at $suite (run 'tools/gpu-suite.sh prepare' where it builds)"
  if [ ! -d "$suite/bin" ]; then
    [ -f "$suite/suite.tar.gz" ] || die "$suite has neither bin/ nor suite.tar.gz"
    mkdir -p "$work/suite" && tar -xzf "$suite/suite.tar.gz" -C "$work/suite" || die "cannot unpack $suite/suite.tar.gz"
    suite=$work/suite
  fi
  suite_commit=$(sed -n 's/^commit: //p' "$suite/manifest.txt")

  gpu_name="none found"
  if command -v nvidia-smi >/dev/null; then
    gpu_name=$(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>/dev/null |
      head -1)
    [ -n "$gpu_name" ] || gpu_name="none found (nvidia-smi lists no GPU)"
  fi
  say "suite $suite ($suite_commit), GPU: $gpu_name, working folder $work"

  local need have
  need=$(cat "$suite/glibc-version" 2>/dev/null)
  have=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
  if [ -n "$need" ] && [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]; then
    say "warning: the suite needs glibc >= $need, this machine has $have: programs may not start"
  fi
  choose_gcc_runtime

  local dirs=() d
  mapfile -t dirs < <(nvidia_lib_dirs)
  [ -d /usr/local/cuda/lib64 ] && dirs+=(/usr/local/cuda/lib64)
  lib_path="$suite/lib:$work/gcc-runtime"
  for d in "${dirs[@]}"; do lib_path="$lib_path:$d"; done
  local cublas cudnn
  cublas=$(find_library libcublas.so.13 "${dirs[@]}") || cublas="NOT FOUND"
  cudnn=$(find_library libcudnn.so.9 "${dirs[@]}") || cudnn="NOT FOUND"
  say "cuBLAS: $cublas; cuDNN: $cudnn (the benchmarks need both; the tests neither)"

  if [ "$1" = quick ]; then
    shift
    run_quick "$@"
  else
    mode="steps: $*"
    budget=""
    deadline=""
    run_steps "$@"
  fi
  write_outputs true
  say "done in $(seconds_since "$run_started") s: $out/summary.json$([ "$failed" = 0 ] || echo ' (something failed)')"
  return "$failed"
}
