#!/usr/bin/env bash
# Runs every libFuzzer target build/fuzz/fuzz_* for SECONDS seconds each
# (default 60). Corpora live in build/fuzz/corpus/<target>, seeded with the
# constructed vectors of pfsync-wire.md §5.3, the committed seeds of
# fuzz/corpus (packets captured from real agents by
# scripts/fuzz-corpus-capture.sh, cap-*, and encoder-built ones, enc-*) and,
# for targets that write them, packets the target builds itself with our
# encoder (PFSYNC_FUZZ_WRITE_SEEDS). Exits non-zero
# when a target finds a crash or an invariant failure.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SECONDS_EACH=${1:-60}
case $SECONDS_EACH in '' | *[!0-9]*)
	echo "usage: $0 SECONDS" >&2
	exit 2
	;;
esac

# hex (spaces allowed) -> file, with a leading mode byte (00 = bare payload, 01 = IPv4)
seed() {
	local file=$1 bytes="" b
	shift
	for b in $*; do
		bytes+="\\x$b"
	done
	printf "$bytes" >"$file"
}

hdr36='06 00 00 24 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00'
write_vectors() {
	local d=$1
	# §5.3: bulk request, INS_ACK, DEL_C x2, BUS END, CLR
	seed "$d/vec-bulk-req" 00 "$hdr36 05 03 00 01 00 00 00 00 00 00 00 00 00 00 00 00"
	seed "$d/vec-ins-ack" 00 "$hdr36 02 03 00 01 65 78 a1 c0 00 00 00 01 12 34 ab cd"
	seed "$d/vec-del-c2" 00 "06 00 00 30 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
		07 03 00 02 65 78 a1 c0 00 00 00 01 12 34 ab cd 65 78 a1 c0 00 00 00 02 12 34 ab cd"
	seed "$d/vec-bus-end" 00 "$hdr36 0a 03 00 01 12 34 ab cd 00 00 00 00 02 00 00 00"
	seed "$d/vec-clr" 00 "06 00 00 2c 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
		00 05 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 12 34 ab cd"
	# negative vectors: TTL 254, version 5, len 0x25 on 36 bytes, unknown action with len 0
	seed "$d/neg-ttl" 01 "45 10 00 38 00 01 40 00 fe f0 00 00 0a 00 00 01 e0 00 00 f0
		$hdr36 02 03 00 01 65 78 a1 c0 00 00 00 01 12 34 ab cd"
	seed "$d/neg-badver" 00 "05 00 00 24 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
		02 03 00 01 65 78 a1 c0 00 00 00 01 12 34 ab cd"
	seed "$d/neg-badlen" 00 "06 00 00 25 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
		02 03 00 01 65 78 a1 c0 00 00 00 01 12 34 ab cd"
	seed "$d/neg-badact" 00 "$hdr36 13 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00"
}

shopt -s nullglob
targets=("$BUILD"/fuzz/fuzz_*)
if [ ${#targets[@]} -eq 0 ]; then
	echo "run-fuzz: no targets in $BUILD/fuzz (run make fuzz)" >&2
	exit 1
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "${targets[@]}"; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	corpus="$BUILD/fuzz/corpus/$name"
	artifacts="$BUILD/fuzz/artifacts/$name/"
	mkdir -p "$corpus" "$artifacts"
	write_vectors "$corpus"
	cp fuzz/corpus/* "$corpus"/
	# -runs=0: a target without seeds of its own (it ignores the variable) returns at once
	# instead of fuzzing without a time limit
	PFSYNC_FUZZ_WRITE_SEEDS="$corpus" "$t" -runs=0 >/dev/null 2>&1 || true
	echo "=== fuzz $name for ${SECONDS_EACH}s ($(ls "$corpus" | wc -l) corpus files)"
	if "$t" -max_total_time="$SECONDS_EACH" -max_len=4096 -timeout=10 \
		-artifact_prefix="$artifacts" -print_final_stats=1 "$corpus" 2>"$BUILD/fuzz/$name.log"; then
		tail -n 12 "$BUILD/fuzz/$name.log" |
			grep -E 'stat::number_of_executed_units|stat::average_exec_per_sec|Done' || true
		echo "=== PASS  $name"
	else
		status=1
		grep -E 'ERROR|invariant failed|SUMMARY|Test unit written' "$BUILD/fuzz/$name.log" | head -20
		echo "=== FAIL  $name (log: $BUILD/fuzz/$name.log, artifacts: $artifacts)"
	fi
done
exit $status
