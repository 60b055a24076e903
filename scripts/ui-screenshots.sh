#!/usr/bin/env bash
# Refreshes the screenshots docs/ui.md shows (docs/ui-*.png): runs the web page's end-to-end
# test (a real lab, headless Chromium), which saves one per view, and copies them into docs/.
# As root, after `make build` (the test drives dist/mncni). The PNGs are kept small: a 1280x760
# viewport, flat colours.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x dist/mncni ] || { echo "ui-screenshots: build first (make build)" >&2; exit 1; }
MNCNI_UI_SHOTS="$PWD/docs" nice node_modules/.bin/bun test --timeout 180000 test/ui/ui.e2e.test.ts
# The docs show the topology with its flows (ui-topology.png), not the one before them.
mv docs/ui-topology-flows.png docs/ui-topology.png
rm -f docs/ui-filters.png
ls -l docs/ui-*.png
