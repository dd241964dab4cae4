#!/usr/bin/env bash
# Runs every test suite: unit (ASan/UBSan), BPF_PROG_RUN vectors, netns
# integration. Each suite is one executable; its exit status decides.
# Prints a closing "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export PFSYNC_BUILD=$PWD/$BUILD

suites=()
for f in "$BUILD"/tests/unit/test_* "$BUILD"/tests/prog/test_* tests/netns/test_*.sh; do
	[ -x "$f" ] || continue
	suites+=("$f")
done
[ -n "${TESTS:-}" ] && mapfile -t suites < <(printf '%s\n' "${suites[@]}" | grep -E "$TESTS")

passed=0
failed=0
failed_names=()
for suite in "${suites[@]}"; do
	start=$(date +%s)
	echo "=== RUN   $suite"
	if timeout --kill-after=10 600 "$suite"; then
		passed=$((passed + 1))
		echo "=== PASS  $suite ($(($(date +%s) - start)) s)"
	else
		rc=$?
		failed=$((failed + 1))
		failed_names+=("$suite")
		echo "=== FAIL  $suite (exit $rc, $(($(date +%s) - start)) s)"
	fi
done

echo
for n in "${failed_names[@]}"; do echo "failed: $n"; done
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
