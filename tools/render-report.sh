#!/usr/bin/env bash
# Renders a massmap evaluate report (report.html) to a PNG in headless Chromium, installing Debian's chromium
# first when it is missing. The report is self-contained, so the browser needs no network.
#   tools/render-report.sh eval/report.html docs/images/evaluate-report.png [WIDTH [HEIGHT]]
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: tools/render-report.sh REPORT.html OUT.png [WIDTH [HEIGHT]]" >&2
  exit 2
fi
report=$1 out=$2 width=${3:-1100} height=${4:-4200}
if [ ! -f "$report" ]; then
  echo "render-report: $report: no such file" >&2
  exit 3
fi
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "render-report: installing Debian's chromium" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends chromium >/dev/null
  browser=$(command -v chromium)
fi
abs=$(cd "$(dirname "$report")" && pwd)/$(basename "$report")
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# --no-sandbox: containers without user namespaces; the page has no script and references nothing outside itself.
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$tmp" \
  --window-size="$width,$height" --screenshot="$tmp/shot.png" "file://$abs" >/dev/null 2>&1
mv "$tmp/shot.png" "$out"
echo "$out"
