# shellcheck shell=bash
# The quick suite's train part (sourced by tools/gpu-suite.sh): `massmap train` end to end on a small synth-v1 set
# made there, full-size AlexNet on cuda for a fixed number of iterations (its images/s beside the alexnet part's
# step alone and PyTorch's); in a dry run smallnet for 2 iterations on simt.

part_train() {
  part_begin train 60
  local d=$work/train m=$suite/bin/massmap
  mkdir -p "$d"
  run_program "massmap synth" "$work/logs/train/synth.txt" "$m" synth --out "$d/synth" --images 16 --seed 1 \
    --size 416x512
  run_program "massmap data split" "$work/logs/train/split.txt" "$m" data split --format manifest --root "$d/synth" \
    --out "$d/split.json" --train 0.5 --validation 0.25
  local data=(--format manifest --root "$d/synth" --split-file "$d/split.json" --cache "$d/cache" --out "$d/run")
  if [ -n "$dry_run" ]; then
    run_program "massmap train simt" "$work/logs/train/train.txt" "$m" train --net smallnet --width 0.25 --batch 4 \
      --iterations 2 --validate-every 2 --device simt "${data[@]}"
    record "massmap train cuda" "skipped: no GPU" 0 0 "" "massmap train --net alexnet --device cuda"
    part_end
    return
  fi
  program_limit=45 run_program "massmap train cuda" "$work/logs/train/train.txt" "$m" train --net alexnet \
    --batch 128 --iterations 40 --validate-every 40 --checkpoint-every 40 --workers 12 --threads 8 --device cuda \
    "${data[@]}"
  # images/s over the last 20 iterations (the first ones include cuDNN-free warm-up and the loader filling up)
  local rate
  rate=$(tail -n 20 "$d/run/log.jsonl" 2>/dev/null |
    awk -F'"images_per_s":' 'NF > 1 {split($2, v, /[,}]/); s += v[1]; n++} END {if (n) printf "%.1f", s / n}')
  part_end "{\"net\": \"alexnet\", \"batch\": 128, \"train_images/s\": $(number_or_null "$rate")}"
}
