#!/usr/bin/env bash
# CUDA compiler launcher (CMAKE_CUDA_COMPILER_LAUNCHER): runs one nvcc compile unchanged and keeps what ptxas
# printed for --resource-usage (registers, shared memory, spills per kernel and architecture) in REPORT_DIR, one
# file per source, so the build leaves a resource report without compiling anything twice.
set -u
report_dir=$1
shift
source_file=""
for arg in "$@"; do
  case "$arg" in *.cu) source_file=$arg ;; esac
done
log=$(mktemp)
"$@" 2>"$log"
status=$?
# The report goes to the file; everything else nvcc said (warnings, errors) to the build log as usual.
grep -v -E "^ptxas info|bytes stack frame|^\s*$" "$log" >&2
if [ -n "$source_file" ]; then
  mkdir -p "$report_dir"
  grep -E "ptxas info|bytes stack frame|spill" "$log" >"$report_dir/$(basename "$source_file").txt" || true
fi
rm -f "$log"
exit $status
