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
#
# A failed test is named at the end ("FAILED: file > test"), where CI's kept tail shows it. A
# file with a failed test runs once more, alone (TEST_RERUN=0 turns that off; more than
# TEST_RERUN_MAX_FILES failed files, default 3, are not re-run: that is a break, not a flake).
# A test that fails and then passes is not hidden: it is counted as passed and named
# "FLAKY: file > test" at the end, to be fixed; one that fails twice fails the run.
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
sed -i 's/\x1b\[[0-9;]*m//g' "$log"
# The failed tests of a bun log, as "file > test", and their files. Bun prints "path:" before
# each file's results and repeats the failures in a summary after the last file (left out).
failures() {
  sed -E '/^[0-9]+ tests? [a-z]+:$/,$d' "$1" | awk '
    /^[^ (#].*\.[cm]?[jt]sx?:$/ { file = substr($0, 1, length($0) - 1); next }
    /^\(fail\) / { name = substr($0, 8); sub(/ \[[0-9.]+m?s\]$/, "", name); print file " > " name }
    /^# Unhandled error between tests/ { print file " > (an error between tests)" }'
}
mapfile -t first_failures < <(failures "$log")
rerun_log=$(mktemp)
trap 'rm -f "$log" "$timings" "$rerun_log"' EXIT
flaky=()
final_failures=("${first_failures[@]}")
if [ "$status" -ne 0 ] && [ "${#first_failures[@]}" -gt 0 ] && [ "${TEST_RERUN:-1}" != 0 ]; then
  mapfile -t files < <(printf '%s\n' "${first_failures[@]}" | sed -E 's/ > .*$//' | sort -u)
  if [ "${#files[@]}" -le "${TEST_RERUN_MAX_FILES:-3}" ] && ! printf '%s\n' "${files[@]}" | grep -qx ''; then
    echo
    echo "re-running the ${#files[@]} file(s) with a failed test, once: ${files[*]}"
    node_modules/.bin/bun test/helpers/sweep-dead-runs.ts || true
    paths=(); for f in "${files[@]}"; do [[ "$f" == [/.]* ]] && paths+=("$f") || paths+=("./$f"); done
    node_modules/.bin/bun test --timeout 120000 "${paths[@]}" 2>&1 | tee "$rerun_log"
    rerun_status=${PIPESTATUS[0]}
    sed -i 's/\x1b\[[0-9;]*m//g' "$rerun_log"
    mapfile -t final_failures < <(failures "$rerun_log")
    # A re-run that failed with no test named (its file died first) shows no test passing:
    # every first failure stays one, with the re-run's end after them.
    if [ "$rerun_status" -ne 0 ] && [ "${#final_failures[@]}" -eq 0 ]; then final_failures=("${first_failures[@]}" "${files[@]/%/ > (the re-run failed, exit $rerun_status)}"); fi
    for f in "${first_failures[@]}"; do
      printf '%s\n' "${final_failures[@]}" | grep -qxF -- "$f" || flaky+=("$f")
    done
  fi
fi
# Where the time went, per file (bun's --timings file), for keeping `make test` under its budget.
if [ -s "$timings" ]; then
  echo
  echo "slowest test files (s):"
  node_modules/.bin/bun -e 'const t = (await Bun.file(process.argv[1]).json()).files; for (const [f, ms] of Object.entries(t).sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.SLOWEST ?? 15))) console.log(`  ${(ms / 1000).toFixed(1).padStart(7)}  ${f}`)' "$timings"
fi
# (Colours were stripped above: bun colours only on a terminal, but e.g. FORCE_COLOR.)
count() { grep -Eo "^ *[0-9]+ $1\$" "$log" | tail -1 | grep -Eo '[0-9]+'; }
passed=$(count pass)
failed=$(count fail)
if [ -z "$passed" ] || [ -z "$failed" ]; then
  echo "no test summary from bun (the run ended early, e.g. a test called process.exit): counted as a failure"
  printf 'FAILED: %s\n' "${first_failures[@]}" | grep -v '^FAILED: $'
  echo "${passed:-0} passed, ${failed:-0} failed, run incomplete"
  exit 1
fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
# Flaky tests passed the second time: counted as passed, and the run's status is the re-run's.
if [ "${#flaky[@]}" -gt 0 ] && [ "${#final_failures[@]}" -eq 0 ]; then
  passed=$((passed + failed)); failed=0; status=0
elif [ "${#flaky[@]}" -gt 0 ]; then
  passed=$((passed + ${#flaky[@]})); failed=$(( failed > ${#flaky[@]} ? failed - ${#flaky[@]} : 1 ))
fi

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
[ "${#flaky[@]}" -eq 0 ] || printf 'FLAKY: %s\n' "${flaky[@]}"
[ "$failed" -eq 0 ] || printf 'FAILED: %s\n' "${final_failures[@]}" | grep -v '^FAILED: $'
echo "$passed passed, $failed failed, ${#skipped[@]} skipped"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
