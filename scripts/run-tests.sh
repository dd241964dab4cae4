#!/usr/bin/env bash
# Runs every test suite: unit (ASan/UBSan), BPF_PROG_RUN vectors, netns
# integration. Counts checks, not suites: each suite's output is read by
# scripts/count-checks.py (line formats: the top of scripts/netns-lib.sh).
# A suite fails when it exits non-zero, reports a failed check, or ran no
# check at all; a test that cannot run (not built, no execute bit) fails;
# a TESTS filter matching nothing fails. Each skip is listed with its
# reason; under CI=true a skip whose reason matches no pattern of
# tests/skip-ok.txt counts as a failure. The last line is
#   checks: N passed, N failed, N skipped
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export PFSYNC_BUILD=$PWD/$BUILD
SKIP_OK=tests/skip-ok.txt
LOGS=$(mktemp -d /tmp/pfsync-run-tests.XXXXXX)
trap 'rm -rf "$LOGS"' EXIT

passed=0
failed=0
skipped=0
problems=() # one line per failed suite or refused skip
skip_lines=()

# every test source must have its binary, every netns script its execute bit
suites=()
unrunnable=()
for src in tests/unit/test_*.c tests/prog/test_*.c; do
	[ -e "$src" ] || continue
	bin=$BUILD/${src%.c}
	if [ -x "$bin" ]; then suites+=("$bin"); else unrunnable+=("$bin: not built (make tests)"); fi
done
for f in tests/netns/test_*.sh; do
	[ -e "$f" ] || continue
	if [ -x "$f" ]; then suites+=("$f"); else unrunnable+=("$f: no execute bit (chmod +x)"); fi
done
if [ -n "${TESTS:-}" ]; then
	mapfile -t suites < <(printf '%s\n' "${suites[@]}" | grep -E -- "$TESTS")
	mapfile -t unrunnable < <(printf '%s\n' "${unrunnable[@]}" | grep -E -- "$TESTS")
	if [ ${#suites[@]} -eq 0 ] && [ ${#unrunnable[@]} -eq 0 ]; then
		echo "TESTS='$TESTS' matches no suite"
		echo "checks: 0 passed, 1 failed, 0 skipped"
		exit 1
	fi
fi
for u in "${unrunnable[@]}"; do
	[ -n "$u" ] || continue
	echo "=== FAIL  $u"
	failed=$((failed + 1))
	problems+=("cannot run: $u")
done

# skip_acceptable REASON: under CI, only reasons tests/skip-ok.txt lists
skip_acceptable()
{
	[ "${CI:-}" = true ] || return 0
	[ -r "$SKIP_OK" ] || return 1
	grep -v -e '^#' -e '^[[:space:]]*$' "$SKIP_OK" >"$LOGS/skip-ok.re"
	[ -s "$LOGS/skip-ok.re" ] && grep -E -f "$LOGS/skip-ok.re" >/dev/null <<<"$1"
}

# count_suite SUITE LOG RC: adds the suite's checks to the totals and sets
# SUITE_FAILED and SUITE_SUMMARY
count_suite()
{
	local suite=$1 log=$2 rc=$3 p f s name reason said=${#problems[@]}
	{
		read -r p f s
		while IFS=$'\t' read -r name reason; do
			skip_lines+=("skipped: $suite: $name: $reason")
			if ! skip_acceptable "$reason"; then
				f=$((f + 1))
				problems+=("skip not acceptable in CI ($SKIP_OK): $suite: $name: $reason")
			fi
		done
	} < <(scripts/count-checks.py <"$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1 # it failed without saying which check
	fi
	if [ "$rc" -eq 0 ] && [ $((p + f + s)) -eq 0 ]; then
		f=1
		problems+=("$suite: ran no check (exit 0 with no PASS/ok line)")
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	[ "$f" -eq 0 ] || [ "$rc" -eq 0 ] || problems+=("$suite: exit $rc")
	# a failure not explained above (a FAIL line in the suite's output)
	[ "$f" -eq 0 ] || [ "$rc" -ne 0 ] || [ ${#problems[@]} -gt "$said" ] ||
		problems+=("$suite: $f failed check(s)")
	SUITE_FAILED=$f
	SUITE_SUMMARY="$p passed, $f failed, $s skipped"
}

for suite in "${suites[@]}"; do
	[ -n "$suite" ] || continue
	start=$(date +%s)
	log="$LOGS/$(basename "$suite").log"
	echo "=== RUN   $suite"
	timeout --kill-after=10 600 "$suite" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	count_suite "$suite" "$log" "$rc"
	if [ "$SUITE_FAILED" -eq 0 ]; then
		echo "=== PASS  $suite ($SUITE_SUMMARY; $(($(date +%s) - start)) s)"
	else
		echo "=== FAIL  $suite (exit $rc; $SUITE_SUMMARY; $(($(date +%s) - start)) s)"
	fi
done

echo
for line in "${problems[@]}"; do echo "failed: $line"; done
for line in "${skip_lines[@]}"; do echo "$line"; done
echo "checks: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
