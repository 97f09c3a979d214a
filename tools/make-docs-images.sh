#!/usr/bin/env bash
# Regenerates the pictures in docs/images from the synthetic generator (needs a build: tools/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/bin/massmap
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" synth --out "$tmp/seed1" --images 8 --seed 1 --overview docs/images/synth-v1-seed1.png
for d in A B C D; do  # one row of four images per density category
  "$bin" synth --out "$tmp/$d" --images 4 --seed 3 --density "$d" --overview "docs/images/synth-v1-density-$d.png"
done
