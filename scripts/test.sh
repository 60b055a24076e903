#!/usr/bin/env bash
# Runs the test suite with bun and ends with the plain summary line CI reads:
# "N passed, N failed, N skipped". Exits non-zero when anything failed, when bun printed no
# summary at all (a test file that exits the process early can end a run "green" with
# nothing counted: that is a failure too), and when a test was skipped (or left todo) for a
# reason that is not on the allow-list, test/allowed-skips.txt: a skip hides a test that
# never ran, so each one is printed, and one that is not expected is counted as a failure.
#
# Two sets of files: `make test` (no arguments) runs every test file except the matrix ones,
# `*.matrix.test.ts`: heavy combinations (every mode x source x runtime x fast path) whose one
# representative combination per feature stays in `make test`. `--matrix` (`make
# test-matrix`) runs only those, by name, so a new matrix file needs no list. With file
# arguments, those files run, matrix or not. Before the summary it prints the slowest files.
# TEST_ROOT (default: the whole project) is where both look (the script's own tests).
set -uo pipefail
cd "$(dirname "$0")/.."
ALLOW=test/allowed-skips.txt
MATRIX='*.matrix.test.ts'
log=$(mktemp)
timings=$(mktemp -u --suffix=.json)
trap 'rm -f "$log" "$timings"' EXIT
select=()
if [ "${1:-}" = "--matrix" ]; then
  shift
  mapfile -t select < <(find "${TEST_ROOT:-test}" -name "$MATRIX" -not -path '*/node_modules/*' | sort)
  if [ "${#select[@]}" -eq 0 ]; then echo "no $MATRIX files"; echo "0 passed, 0 failed, 0 skipped"; exit 0; fi
  select=("${select[@]/#test\//./test/}")
elif [ "$#" -eq 0 ]; then
  select=(--path-ignore-patterns "**/$MATRIX" ${TEST_ROOT:+"$TEST_ROOT"})
fi
# What killed runs left (namespaces and labs marked with a maker that is gone; never anyone else's).
node_modules/.bin/bun test/helpers/sweep-dead-runs.ts || echo "sweeping dead test runs' leftovers failed (ignored)"
node_modules/.bin/bun test --timeout 120000 --timings "$timings" --update-timings "${select[@]}" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# Where the time went, per file (bun's --timings file), for keeping `make test` under its budget.
if [ -s "$timings" ]; then
  echo
  echo "slowest test files (s):"
  node_modules/.bin/bun -e 'const t = (await Bun.file(process.argv[1]).json()).files; for (const [f, ms] of Object.entries(t).sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.SLOWEST ?? 15))) console.log(`  ${(ms / 1000).toFixed(1).padStart(7)}  ${f}`)' "$timings"
fi
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
