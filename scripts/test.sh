#!/usr/bin/env bash
# Runs the test suite with bun and ends with the plain summary line CI reads:
# "N passed, N failed". Exits non-zero when anything failed, and when bun printed no
# summary at all (a test file that exits the process early can end a run "green" with
# nothing counted: that is a failure too).
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
node_modules/.bin/bun test --timeout 120000 "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
passed=$(grep -Eo '^ *[0-9]+ pass$' "$log" | tail -1 | grep -Eo '[0-9]+')
failed=$(grep -Eo '^ *[0-9]+ fail$' "$log" | tail -1 | grep -Eo '[0-9]+')
if [ -z "$passed" ] || [ -z "$failed" ]; then
  echo "no test summary from bun (the run ended early, e.g. a test called process.exit): counted as a failure"
  echo "${passed:-0} passed, ${failed:-0} failed, run incomplete"
  exit 1
fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
