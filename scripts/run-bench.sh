#!/usr/bin/env bash
# Runs every benchmark: each build/bench/* binary, then each bench/*.sh
# (helpers in subdirectories of bench/ are not benchmarks and are skipped).
# Benchmarks print their own tables with ratios against baselines measured
# in the same run; nothing here asserts a time. BENCH=regex filters by path;
# BENCH_ARGS are passed to each one (e.g. BENCH=datapath BENCH_ARGS="--rounds 3").
# PFSYNC_BUILD tells them where the build directory is.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
export PFSYNC_BUILD=$PWD/$BUILD

benches=()
for f in "$BUILD"/bench/* bench/*.sh; do
	[ -f "$f" ] && [ -x "$f" ] || continue
	benches+=("$f")
done
[ -n "${BENCH:-}" ] && mapfile -t benches < <(printf '%s\n' "${benches[@]}" | grep -E "$BENCH")
if [ ${#benches[@]} -eq 0 ]; then
	echo "run-bench: no benchmarks built (make bench)" >&2
	exit 1
fi

failed=0
for b in "${benches[@]}"; do
	echo "=== BENCH $b ($(uname -r), $(nproc) CPUs, $(date -u +%FT%TZ))"
	# shellcheck disable=SC2086
	if ! "$b" ${BENCH_ARGS:-}; then
		echo "=== FAILED $b" >&2
		failed=$((failed + 1))
	fi
done
[ "$failed" -eq 0 ]
