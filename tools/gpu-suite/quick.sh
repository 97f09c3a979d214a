# shellcheck shell=bash
# run OUT quick [--dry-run]: the 5-minute suite, in priority order (sourced by tools/gpu-suite.sh).

# ---- headline figures out of Google Benchmark JSON (one field per line, as the library writes it) ---------------
# bench_field FILE NAME_REGEX FIELD: the field of the first row whose name matches
bench_field() {
  awk -v re="$2" -v f="\"$3\":" '
    /"name":/ { name = $0; sub(/.*"name": "/, "", name); sub(/".*/, "", name) }
    index($0, f) && name ~ re { v = $0; sub(/.*": */, "", v); sub(/,$/, "", v); print v; exit }' "$1" 2>/dev/null
}

# bench_geomean FILE NAME_REGEX FIELD: {"rows": n, "geomean": g, "min": m} over the rows whose name matches
bench_geomean() {
  [ -s "$1" ] || { echo null; return; }
  awk -v re="$2" -v f="\"$3\":" '
    /"name":/ { name = $0; sub(/.*"name": "/, "", name); sub(/".*/, "", name) }
    index($0, f) && name ~ re { v = $0; sub(/.*": */, "", v); sub(/,$/, "", v); v += 0
      if (v > 0) { n++; s += log(v); if (n == 1 || v < lo) lo = v } }
    END { if (n) printf "{\"rows\": %d, \"geomean\": %.3f, \"min\": %.3f}", n, exp(s / n), lo; else printf "null" }' \
    "$1" 2>/dev/null
}

number_or_null() { [[ ${1:-} =~ ^-?[0-9.]+([eE][-+]?[0-9]+)?$ ]] && echo "$1" || echo null; }

bench_args() {  # the timing every quick benchmark uses: short, and one failed check costs one row
  echo --benchmark_min_time=0.1 --baseline_min_time=0.1 --keep_going --benchmark_counters_tabular=true
}

# A GPU benchmark part: the rows matching FILTER, timed (or, in a dry run, listed: the program starts and its
# libraries resolve, and the filter still matches rows).
bench_part() {  # bench_part PROGRAM FILTER [EXTRA ARGS...]
  local program=$1 filter=$2
  shift 2
  local bin=$suite/bin/$program
  if [ -n "$dry_run" ]; then
    local log=$work/logs/$part_name/$program.list
    run_program "$program --benchmark_list_tests" "$log" "$bin" --benchmark_list_tests "--benchmark_filter=$filter"
    local rows
    rows=$(grep -c . "$log" 2>/dev/null)
    if [ "${rows:-0}" -eq 0 ]; then
      record "$program" "failed: the filter '$filter' matches no row" 1 0 "" "$bin"
    else
      record "$program" "skipped: no GPU ($rows rows listed)" 0 0 "" "$bin --benchmark_filter=$filter"
    fi
    return
  fi
  # shellcheck disable=SC2046  # bench_args is a list of arguments
  run_program "$program" "$work/logs/$part_name/$program.txt" "$bin" "--benchmark_filter=$filter" $(bench_args) \
    --benchmark_out="$work/$program.json" --benchmark_out_format=json "$@" ${BENCH_ARGS:-}
}

# ---- the parts ----------------------------------------------------------------------------------------------------
part_smoke() {
  part_begin smoke 60
  # Every program's libraries resolve with the suite's library path (the loader names what it cannot find).
  local missing bin
  missing=$(for bin in "$suite"/bin/*; do
    env LD_LIBRARY_PATH="$lib_path" ldd "$bin" 2>&1 | grep "not found" | sed "s|^|$(basename "$bin"): |"
  done)
  if [ -n "$missing" ]; then
    record libraries "failed: $(echo "$missing" | tr -s ' \t' ' ' | tr '\n' ';')" 1 0 "" "ldd"
  else
    record libraries passed 0 0 "" "ldd $suite/bin/*"
  fi
  run_program "massmap --help" "$work/logs/smoke/massmap.txt" "$suite/bin/massmap" --help
  local one='sgd update with momentum and decay'
  if [ -n "$dry_run" ]; then
    record gpu "skipped: no GPU (dry run)" 0 0 "" nvidia-smi
    run_program "sgd_test simt" "$work/logs/smoke/sgd_test.txt" "$suite/bin/sgd_test" "--test-case=simt.$one"
  elif [[ $gpu_name == none* ]]; then
    record gpu "failed: no GPU seen (nvidia-smi: $gpu_name); a machine without one takes --dry-run" 1 0 "" nvidia-smi
    no_gpu=1
  else
    record gpu passed 0 0 "" nvidia-smi
    run_program "sgd_test cuda" "$work/logs/smoke/sgd_test.txt" "$suite/bin/sgd_test" "--test-case=cuda.$one"
  fi
  part_end "{\"gpu\": $(json_string "$gpu_name")}"
}

part_tests() {
  part_begin tests 75
  local t name cases passed=0 programs=0 n
  for t in "$suite"/bin/*_test; do
    name=$(basename "$t")
    if [ -n "$dry_run" ]; then  # the simt cases are the tiny problems: the same kernels on the host
      run_program "$name simt" "$work/logs/tests/$name.txt" "$t" --test-case='simt.*'
      cases=$(env LD_LIBRARY_PATH="$lib_path" "$t" --list-test-cases --test-case='cuda.*' --no-skip 2>/dev/null |
        sed -n 's/.*passing the current filters: //p')
      record "$name cuda" "skipped: no GPU (${cases:-?} cuda.* cases)" 0 0 "" "$t --test-case=cuda.*"
    else
      program_limit=60 run_program "$name" "$work/logs/tests/$name.txt" "$t" --test-case='cuda.*'
      n=$(grep -ao 'test cases:.*' "$work/logs/tests/$name.txt" 2>/dev/null | tail -1 | sed -n 's/.*| *\([0-9]*\) passed.*/\1/p')
      passed=$((passed + ${n:-0}))
      programs=$((programs + 1))
    fi
  done
  if [ -n "$dry_run" ]; then part_end; else part_end "{\"programs\": $programs, \"cuda_cases_passed\": $passed}"; fi
}

part_gemm() {
  part_begin gemm 25
  bench_part gpu_gemm_bench '^sgemm/square_4096/'
  local j=$work/gpu_gemm_bench.json
  part_end "{\"ours_best_GFLOP/s\": $(number_or_null "$(bench_field "$j" 'square_4096/ours_best/' 'GFLOP/s')"),\
 \"cublas_GFLOP/s\": $(number_or_null "$(bench_field "$j" 'square_4096/cublas/' 'GFLOP/s')"),\
 \"vs_cublas\": $(number_or_null "$(bench_field "$j" 'square_4096/ours_best/' vs_cublas)")}"
}

part_conv() {
  part_begin conv 75
  bench_part gpu_conv_bench '^conv/(alexnet_conv[1-5]|vgg16_conv3_1)/.*/(ours_best|cudnn_gemm_fma|cudnn_any)/' \
    --batch=128
  local j=$work/gpu_conv_bench.json
  part_end "{\"ours_best_vs_cudnn_fp32\": $(bench_geomean "$j" '/ours_best/' vs_cudnn_gemm),\
 \"ours_best_vs_cudnn_any\": $(bench_geomean "$j" '/ours_best/' vs_cudnn_any)}"
}

part_memory() {
  part_begin memory 25
  bench_part gpu_memory_bench '^mem/'
  local j=$work/gpu_memory_bench.json
  part_end "{\"ours_vs_copy\": $(bench_geomean "$j" '/ours/' vs_copy),\
 \"copy_GB/s\": $(number_or_null "$(bench_field "$j" 'cudaMemcpy_d2d' 'GB/s')")}"
}

part_alexnet() {
  part_begin alexnet 45
  local log=$work/logs/alexnet
  if [ -n "$dry_run" ]; then  # the same training step, a tiny net on simt
    run_program "nets_bench simt" "$log/nets_bench.txt" "$suite/bin/nets_bench" \
      '--benchmark_filter=^smallnet/simt/width:0.25/batch:32/' --benchmark_min_time=0.01
    record "pytorch_nets.py" "skipped: no GPU" 0 0 "" "python3 pytorch_nets.py --net alexnet --device cuda"
    part_end
    return
  fi
  program_limit=25 run_program nets_bench "$log/nets_bench.txt" "$suite/bin/nets_bench" \
    '--benchmark_filter=^alexnet/cuda/width:1/batch:32/' --benchmark_min_time=1 \
    --benchmark_out="$log/nets_bench.json" --benchmark_out_format=json
  if command -v python3 >/dev/null; then
    own_libraries=1 run_program pytorch_nets.py "$log/pytorch.txt" python3 "$suite/pytorch_nets.py" --net alexnet \
      --device cuda --batch 32 --warmup 3 --steps 20 --repetitions 3
  else
    record pytorch_nets.py "failed: no python3 here" 1 0 "" python3
  fi
  local ours theirs
  ours=$(number_or_null "$(bench_field "$log/nets_bench.json" 'alexnet/cuda/' 'images/s')")
  theirs=$(number_or_null "$(sed -n 's/^pytorch alexnet: median \([0-9.]*\) images.*/\1/p' "$log/pytorch.txt" 2>/dev/null)")
  part_end "{\"batch\": 32, \"ours_images/s\": $ours, \"pytorch_cudnn_images/s\": $theirs, \"ours_vs_pytorch\": $(
    awk -v a="$ours" -v b="$theirs" 'BEGIN {if (a == "null" || b == "null" || b == 0) print "null"; else printf "%.3f", a / b}'
  )}"
}

# The whole-image map: AlexNet (full width, nets init weights) over a 1000 x 1600 synth-v1 mammogram on cuda. The
# image goes in twice under two names: the first compiles the schedule, the second's forward time (pad, copy in,
# forward, copy the map out) is the headline. A dry run maps a 256 x 256 image with a 1/16-width AlexNet on simt.
part_map() {
  part_begin map 30
  local dir=$work/map log=$work/logs/map bin=$suite/bin/massmap size=1000x1600 device=cuda width=1
  [ -n "$dry_run" ] && size=256x256 device=simt width=0.0625
  mkdir -p "$dir" "$log"
  run_program "massmap synth" "$log/synth.txt" "$bin" synth --out "$dir/synth" --images 1 --seed 1 --size "$size" \
    --mass-max-mm 12 --normal-fraction 0
  run_program "massmap nets init" "$log/init.txt" "$bin" nets init alexnet --channels 1 --classes 2 --width "$width" \
    --out "$dir/weights.safetensors"
  local image
  image=$(ls "$dir"/synth/images/*.png 2>/dev/null | head -1)
  [ -n "$image" ] && cp "$image" "$dir/again.png"
  run_program "massmap localize" "$log/localize.txt" "$bin" localize --weights "$dir/weights.safetensors" \
    "${image:-missing.png}" "$dir/again.png" --spacing 0.2 --device "$device" --out "$dir/out" --verbose
  local forward
  forward=$(sed -n 's/^.*again.png: .* forward \([0-9.]*\) ms.*/\1/p' "$log/localize.txt" 2>/dev/null)
  part_end "{\"net\": \"alexnet\", \"width\": $width, \"image\": \"$size\", \"device\": \"$device\",\
 \"forward_ms\": $(number_or_null "$forward")}"
}

part_sanitizer() {
  part_begin sanitizer 120
  local t name sanitizer log reason
  if [ -n "$dry_run" ]; then
    record compute-sanitizer "skipped: no GPU" 0 0 "" compute-sanitizer
    part_end
    return
  fi
  if ! sanitizer=$(find_sanitizer); then
    record compute-sanitizer "skipped: compute-sanitizer not found (PATH, /usr/local/cuda)" 0 0 "" compute-sanitizer
    part_end
    return
  fi
  # A machine that refuses the tool (no debugger interface, a driver setting) ends without its summary line: probe
  # once, and record a skip with the reason rather than a failure.
  local probe=$work/logs/sanitizer/probe.txt
  mkdir -p "$(dirname "$probe")"
  env LD_LIBRARY_PATH="$lib_path" timeout --kill-after=5 30 "$sanitizer" --tool memcheck "$suite/bin/sgd_test" \
    '--test-case=cuda.sgd update with momentum and decay' >"$probe" 2>&1
  if ! grep -q "ERROR SUMMARY" "$probe"; then
    reason="compute-sanitizer refused to run here: $(grep -m1 -i 'error' "$probe" | cut -c1-160)"
    record compute-sanitizer "skipped: $reason" 0 0 "${probe#"$work"/}" "$sanitizer --tool memcheck"
    part_end
    return
  fi
  for t in "$suite"/bin/*_test; do  # every carried test program has cuda.* cases (prepare checks)
    name=$(basename "$t")
    log=$work/logs/sanitizer/$name.memcheck.txt
    # --error-exitcode: a finding fails the run even where the test itself passes.
    program_limit=60 run_program "$name memcheck" "$log" "$sanitizer" --tool memcheck --error-exitcode 86 "$t" \
      --test-case='cuda.*'
  done
  part_end
}

run_quick() {
  dry_run=""
  no_gpu=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --dry-run) dry_run=1 ;;
      *) die "run quick: unknown option $1 (only --dry-run)" ;;
    esac
    shift
  done
  mode="quick${dry_run:+ --dry-run}"
  budget=${QUICK_BUDGET:-300}
  deadline=$(awk -v s="$run_started" -v b="$budget" 'BEGIN {printf "%.3f", s + b}')
  part_smoke
  local part
  for part in tests gemm conv memory alexnet map train sanitizer; do  # part_train: tools/gpu-suite/train.sh
    if [ -n "$no_gpu" ]; then
      part_begin "$part" 0
      record "$part" "skipped: no GPU" 0 0 "" ""
      part_end
      continue
    fi
    "part_$part"
  done
}
