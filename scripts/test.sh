#!/usr/bin/env bash
# Runs the test suite with bun and ends with the plain summary line CI reads:
# "N passed, N failed, N skipped". Exits non-zero when anything failed, when bun printed no
# summary at all (a test file that exits the process early can end a run "green" with
# nothing counted: that is a failure too), and when a test was skipped (or left todo) for a
# reason that is not on the allow-list, test/allowed-skips.txt: a skip hides a test that
# never ran, so each one is printed, and one that is not expected is counted as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
ALLOW=test/allowed-skips.txt
log=$(mktemp)
trap 'rm -f "$log"' EXIT
node_modules/.bin/bun test --timeout 120000 "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# Bun colours its output only on a terminal; strip colours anyway, e.g. under FORCE_COLOR.
sed -i 's/\x1b\[[0-9;]*m//g' "$log"
count() { grep -Eo "^ *[0-9]+ $1\$" "$log" | tail -1 | grep -Eo '[0-9]+'; }
passed=$(count pass)
failed=$(count fail)
if [ -z "$passed" ] || [ -z "$failed" ]; then
  echo "no test summary from bun (the run ended early, e.g. a test called process.exit): counted as a failure"
  echo "${passed:-0} passed, ${failed:-0} failed, run incomplete"
  exit 1
fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi

# Skips and todos, by name. An allowed skip says why in its name ("... — skipped: <reason>"),
# and <reason> is a line of the allow-list; a todo is never allowed.
# Bun repeats them in a summary after the last file ("2 tests skipped:"): read the per-file part only.
mapfile -t skipped < <(sed -E '/^[0-9]+ tests? [a-z]+:$/,$d' "$log" | grep -E '^\((skip|todo)\) ')
mapfile -t reasons < <(grep -Ev '^\s*(#|$)' "$ALLOW" | sed -E 's/ +=> .*$//')
nskip=$(count skip); ntodo=$(count todo)
expected=$(( ${nskip:-0} + ${ntodo:-0} ))
unlisted=0
if [ "${#skipped[@]}" -gt 0 ]; then
  echo
  echo "skipped or todo (${#skipped[@]}; allowed reasons: $ALLOW):"
  for line in "${skipped[@]}"; do
    verdict="NOT ALLOWED"
    if [[ "$line" == "(skip) "* ]]; then
      for r in "${reasons[@]}"; do
        if [[ "$line" == *"skipped: $r"* ]]; then verdict="allowed"; break; fi
      done
    fi
    [ "$verdict" = "allowed" ] || unlisted=$((unlisted + 1))
    echo "  [$verdict] $line"
  done
fi
if [ "${#skipped[@]}" -ne "$expected" ]; then
  echo "bun counted $expected skipped or todo tests but named ${#skipped[@]}: the unnamed ones cannot be checked, counted as failures"
  unlisted=$((unlisted + (expected > ${#skipped[@]} ? expected - ${#skipped[@]} : 0)))
fi
if [ "$unlisted" -gt 0 ]; then
  echo "$unlisted skipped or todo tests with no reason on the allow-list ($ALLOW): counted as failures"
  failed=$((failed + unlisted))
fi
echo "$passed passed, $failed failed, ${#skipped[@]} skipped"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
