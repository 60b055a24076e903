#!/usr/bin/env bash
# Refreshes the screenshots docs/ui.md shows (docs/ui-*.png): runs the web page's end-to-end
# test (a real lab, headless Chromium), which saves one per view, and the benchmark's 10 nodes x
# 300 pods topology (bench/ui.ts --shot), and copies them into docs/. As root, after `make
# build` (both drive dist/mncni). The PNGs are kept small: flat colours, reduced to a palette
# when ImageMagick's convert is there.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x dist/mncni ] || { echo "ui-screenshots: build first (make build)" >&2; exit 1; }
MNCNI_UI_SHOTS="$PWD/docs" nice node_modules/.bin/bun test --timeout 180000 test/ui/ui.e2e.test.ts
# The docs show the topology with its flows (ui-topology.png), not the one before them.
mv docs/ui-topology-flows.png docs/ui-topology.png
rm -f docs/ui-filters.png
nice node_modules/.bin/bun bench/ui.ts --loads 1 --verdicts 1 --shot "$PWD/docs/ui-topology-300.png" >/dev/null
if convert -version 2>/dev/null | grep -q ImageMagick; then
  for f in docs/ui-*.png; do convert "$f" -dither None -colors 32 "PNG8:$f"; done
fi
ls -l docs/ui-*.png
