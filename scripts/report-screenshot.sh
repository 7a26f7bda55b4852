#!/usr/bin/env bash
# Render a poam-sync HTML report in a real headless browser and save a screenshot, to check by
# eye that it reads well (layout, escaping, colours). Needs Debian's chromium
# (`apt-get install chromium`). Usage:
#   scripts/report-screenshot.sh [REPORT.html] [OUT.png]
# With no report given, it runs the demo first and uses its status report.
set -euo pipefail
cd "$(dirname "$0")/.."
report="${1:-}"
out="${2:-report.png}"
if [ -z "$report" ]; then
  python3 dev.py demo >/dev/null
  report="poam-sync-demo/status-report.html"
fi
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
# The flags keep Chromium from reaching out to the network (none is needed: the page is
# self-contained) and let it run as root in a container.
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --window-size=1300,1400 \
  --screenshot="$out" "file://$(realpath "$report")" 2>/dev/null
echo "screenshot of $report written to $out"
