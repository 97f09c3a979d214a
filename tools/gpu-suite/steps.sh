# shellcheck shell=bash
# run OUT STEP...: the full suite, one step per 10-minute command (sourced by tools/gpu-suite.sh).

step_tests() {  # step_tests STEP [doctest arguments]: every carried test program
  part_begin "$1" 590
  shift
  local t name
  for t in "$suite"/bin/*_test; do
    name=$(basename "$t")
    program_limit=${TEST_TIMEOUT:-300} run_program "$name" "$work/logs/$part_name/$name.txt" "$t" "$@"
  done
  part_end
}

step_sanitizer() {  # step_sanitizer TOOL...: the cuda.* kernel cases under compute-sanitizer
  part_begin sanitizer 590
  local sanitizer t name tool
  if ! sanitizer=$(find_sanitizer); then
    record compute-sanitizer "skipped: compute-sanitizer not found (PATH, /usr/local/cuda)" 0 0 "" compute-sanitizer
    part_end
    return
  fi
  for t in "$suite"/bin/*_test; do  # every carried test program has cuda.* cases (prepare checks)
    name=$(basename "$t")
    for tool in "$@"; do
      # --error-exitcode: a finding fails the run even where the test itself passes.
      program_limit=${TEST_TIMEOUT:-300} run_program "$name:$tool" "$work/logs/sanitizer/$name.$tool.txt" \
        "$sanitizer" --tool "$tool" --error-exitcode 86 "$t" --test-case='cuda.*'
    done
  done
  part_end
}

step_bench() {  # step_bench gemm|memory|conv: every row of one GPU benchmark
  part_begin "bench-$1" 590
  local program=gpu_$1_bench
  # shellcheck disable=SC2046,SC2086  # lists of arguments
  program_limit=${BENCH_TIMEOUT:-560} run_program "$program" "$work/logs/bench/$program.txt" "$suite/bin/$program" \
    $(bench_args) --benchmark_out="$work/$program.json" --benchmark_out_format=json ${BENCH_ARGS:-}
  part_end
}

run_steps() {
  dry_run=""
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
      alexnet) part_alexnet ;;
      all) step_tests tests && step_sanitizer memcheck racecheck && step_bench gemm && step_bench memory &&
        step_bench conv && part_alexnet ;;
      *) die "unknown step '$step' (quick, tests, tests-cuda, sanitizer, memcheck, racecheck, bench, bench-gemm," \
        "bench-memory, bench-conv, alexnet, all)" ;;
    esac
  done
}
