#!/usr/bin/env bash
# Screenshots of every page of the admin workbench, wide (1,280 px) and narrow (390 px), on a
# synced demo store (the bundled simulators on 127.0.0.1), to check by eye that each reads well.
# Needs Debian's chromium (`apt-get install chromium`) and the dev extras (Playwright's Python
# package; no browser is downloaded). Usage:
#   scripts/workbench-screenshots.sh [OUT_DIR]     (default: workbench-screenshots/)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-workbench-screenshots}"
python="${PYTHON:-.venv/bin/python}"
[ -x "$python" ] || { echo "run python3 dev.py test once first (it makes .venv/)" >&2; exit 2; }
"$python" -m tests.web.screens "$out" >/dev/null
echo "screenshots of the workbench written to $out/"
