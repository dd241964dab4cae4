#!/usr/bin/env bash
# run-vm-tests.sh: the test suites on another kernel, in ONE throw-away VM
# (what `make vmcheck` runs after `make tests`).
#
#   tests/vm/run-vm-tests.sh [SUITE...]
#
# Without arguments the suites are every BPF_PROG_RUN suite
# (build/tests/prog/test_*) and one two-firewall sync test sized for the VM
# (tests/vm/sync-smoke.sh: two agents, ICMP/UDP/TCP states of fwA on fwB)
# and the asymmetric-routing defer test, once per release path
# (tests/vm/asym-defer.sh), and the whole-table reads by each --bulk-read
# path (tests/netns/test_bulk_read.sh).
# Any suite can be named instead, e.g. tests/netns/test_sync.sh.
# Everything is built on the host; the guest (Debian's 6.1 kernel, see
# get-kernel.sh) sees the host's / read-only and only runs the suites. Each
# suite's result is written to a folder shared read-write with the guest, so
# the summary printed here does not depend on parsing the console.
# Exits 0 only if every suite passed in the guest.
#
# Environment:
#   VMTEST_KDIR           unpacked kernel (default /var/cache/pfsync-vmtest/kernel)
#   VMTEST_PKG            kernel package to pin (default: linux-image-amd64's)
#   VMTEST_TIMEOUT        whole VM, seconds (default 1800)
#   VMTEST_SUITE_TIMEOUT  one suite, seconds (default 900)
#   VMTEST_RUNNER         auto (vng if installed), qemu or vng (see vmrun.sh)
#   VMTEST_KERNEL         with vng: the kernel to boot instead of Debian's
#                         (a built tree or image; see docs/ci-matrix.md)
#   VMTEST_MEM, VMTEST_CPUS   guest size (default 1G, 2)
#   NL_DEADLINE_SCALE     factor for the netns tests' poll deadlines in the
#                         guest (default 8: TCG is slow)
# PFSYNC_*, NL_*, ASAN_OPTIONS and UBSAN_OPTIONS are handed to the guest.
#
# Internal: `run-vm-tests.sh --guest RESULTS SUITE...` is what runs inside
# the VM.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
BUILD=${BUILD:-build}
KDIR=${VMTEST_KDIR:-/var/cache/pfsync-vmtest/kernel}
VM_TIMEOUT=${VMTEST_TIMEOUT:-1800}
SUITE_TIMEOUT=${VMTEST_SUITE_TIMEOUT:-900}

# Lines of a failing suite's output that point at a kernel difference
# (helper, map type, attach mode or program type unknown to the guest).
KERNEL_HINTS='unknown func|invalid func|cannot use helper|not supported|Operation not supported|unknown opcode|failed to load object|cannot load|ERROR:|FAIL:'

now_ms()
{
	echo $(($(date +%s%N) / 1000000))
}

secs_since()
{
	local ms=$(($(now_ms) - $1))
	echo "$((ms / 1000)).$((ms % 1000 / 100))"
}

# ---- inside the guest --------------------------------------------------

# The environment facts every suite depends on; a failure here means the
# VM set-up is broken, not the code under test.
guest_smoke()
{
	local ok=0
	grep -q ' /sys/fs/bpf bpf ' /proc/mounts || {
		echo "smoke: bpffs not mounted on /sys/fs/bpf"
		ok=1
	}
	[ -r /sys/kernel/btf/vmlinux ] || {
		echo "smoke: no /sys/kernel/btf/vmlinux"
		ok=1
	}
	local ns="vmsmoke$$"
	if ip netns add "$ns" && ip -n "$ns" link add name vsa type veth peer name vsb; then
		:
	else
		echo "smoke: cannot create a netns with a veth pair"
		ok=1
	fi
	ip netns del "$ns" 2>/dev/null
	return "$ok"
}

# run_suite RESULTS SUITE: runs one suite, output to the console and to
# RESULTS/NAME.log; appends "PASS|FAIL NAME SECONDS RC" to RESULTS/results.
guest_run_suite()
{
	local results=$1 suite=$2 name start rc
	name=$(basename "$suite")
	start=$(now_ms)
	echo "=== RUN   $suite"
	timeout --kill-after=10 "$SUITE_TIMEOUT" "$suite" 2>&1 | tee "$results/$name.log"
	rc=${PIPESTATUS[0]}
	if [ "$rc" -eq 0 ]; then
		echo "=== PASS  $suite ($(secs_since "$start") s)"
		echo "PASS $suite $(secs_since "$start") 0" >>"$results/results"
	else
		echo "=== FAIL  $suite (exit $rc, $(secs_since "$start") s)"
		echo "FAIL $suite $(secs_since "$start") $rc" >>"$results/results"
	fi
	return "$rc"
}

guest_main()
{
	local results=$1 suite failed=0
	shift
	case $BUILD in
	/*) export PFSYNC_BUILD=$BUILD ;;
	*) export PFSYNC_BUILD=$ROOT/$BUILD ;;
	esac
	echo "vm: kernel $(uname -r), $(nproc) CPUs, $(grep MemTotal /proc/meminfo | tr -s ' ')"
	echo "KERNEL $(uname -r)" >>"$results/results"
	if ! guest_smoke; then
		echo "SETUP vm-smoke" >>"$results/results"
		return 3
	fi
	echo "SMOKE ok" >>"$results/results"
	for suite in "$@"; do
		guest_run_suite "$results" "$suite" || failed=$((failed + 1))
	done
	[ "$failed" -eq 0 ]
}

# ---- on the host --------------------------------------------------------

default_suites()
{
	local f
	for f in "$BUILD"/tests/prog/test_*; do
		[ -x "$f" ] && echo "$f"
	done
	# the full tests/netns/test_sync.sh takes ~8 min under TCG and has
	# 1-second state timeouts in it: name it explicitly to run it here
	echo tests/vm/sync-smoke.sh
	# defer's release paths on an older kernel (live frames allowed there)
	echo tests/vm/asym-defer.sh
	# the table iterator (--bulk-read iter), refused by the host's kernel
	echo tests/netns/test_bulk_read.sh
}

prepare()
{
	local start
	start=$(now_ms)
	if [ "$(runner_name)" = vng ] && [ -n "${VMTEST_KERNEL:-}" ]; then
		echo "vmcheck: vng boots $VMTEST_KERNEL"
		return 0
	fi
	./scripts/deps.sh vm || return 1
	tests/vm/get-kernel.sh "$KDIR" ${VMTEST_PKG:+"$VMTEST_PKG"} >/dev/null || return 1
	echo "vmcheck: kernel $(cat "$KDIR/package") ready ($(secs_since "$start") s)"
}

# failure_hints LOG: the verifier's complaint (the lines just before its
# "processed N insns" line, and the last source line it quoted) and the lines matching KERNEL_HINTS, each once.
failure_hints()
{
	[ -r "$1" ] || return 0
	awk -v re="$KERNEL_HINTS" '
		/^processed [0-9]+ insns/ {
			print "verifier: " prev2; print "verifier: " prev1
			if (src != "") print "verifier: at source line: " src
		}
		/^; ./ { src = substr($0, 3) }
		$0 ~ re { print }
		{ prev2 = prev1; prev1 = $0 }' "$1" | awk '!seen[$0]++' | head -n 12
}

# The guest's uname -r, as its first result line recorded it.
guest_kernel()
{
	sed -n 's/^KERNEL //p' "$1/results" 2>/dev/null | head -n1 | grep . || echo unknown
}

runner_name()
{
	case ${VMTEST_RUNNER:-auto} in
	auto) command -v vng >/dev/null && echo vng || echo qemu ;;
	*) echo "$VMTEST_RUNNER" ;;
	esac
}

# print_summary RESULTS VMRC SUITE...: one line per suite, with the lines
# of failing suites that point at a kernel difference; returns non-zero
# unless every suite passed.
print_summary()
{
	local results=$1 vmrc=$2 suite line status secs rc passed=0 failed=0
	shift 2
	echo
	echo "==== vmcheck summary (guest kernel $(guest_kernel "$results"), runner $(runner_name))"
	if grep -q '^SETUP' "$results/results" 2>/dev/null; then
		echo "  VM SET-UP BROKEN: the smoke check failed (see the console above)"
	fi
	for suite in "$@"; do
		line=$(grep -F " $suite " "$results/results" 2>/dev/null | tail -n1)
		if [ -z "$line" ]; then
			echo "  NOT RUN  $suite (VM ended early: exit $vmrc)"
			failed=$((failed + 1))
			continue
		fi
		read -r status _ secs rc <<<"$line"
		if [ "$status" = PASS ]; then
			printf '  PASS     %s (%s s)\n' "$suite" "$secs"
			passed=$((passed + 1))
		else
			printf '  FAIL     %s (exit %s, %s s)\n' "$suite" "$rc" "$secs"
			failure_hints "$results/$(basename "$suite").log" | sed 's/^/             | /'
			failed=$((failed + 1))
		fi
	done
	case $vmrc in
	124) echo "  the VM TIMED OUT after ${VM_TIMEOUT}s" ;;
	125) echo "  the VM ended without an exit status (panic? see the console above)" ;;
	esac
	echo "vmcheck: $passed passed, $failed failed"
	[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ] && [ "$vmrc" -eq 0 ]
}

host_main()
{
	local suites results start vmrc=0
	if [ $# -gt 0 ]; then
		suites=("$@")
	else
		mapfile -t suites < <(default_suites)
	fi
	[ ${#suites[@]} -gt 0 ] || {
		echo "vmcheck: no suites found (make tests first)" >&2
		return 1
	}
	prepare || {
		echo "vmcheck: cannot prepare the VM kernel" >&2
		return 1
	}
	results=$(mktemp -d /tmp/pfsync-vmcheck.XXXXXX)
	# shellcheck disable=SC2064 # expand now
	trap "rm -rf '$results'" EXIT
	echo "vmcheck: ${#suites[@]} suites in one VM: ${suites[*]}"
	# Deadlines of the netns tests are sized for real hardware; under TCG
	# every exec and every verifier run is 20-40x slower. (A deadline only
	# bounds a wait: a passing test is not slowed down by it.)
	export NL_DEADLINE_SCALE=${NL_DEADLINE_SCALE:-8}
	# the guest starts with a clean environment: hand over the test knobs
	local passenv
	mapfile -t passenv < <(env | grep -E '^(PFSYNC_|NL_|ASAN_OPTIONS=|UBSAN_OPTIONS=)')
	start=$(now_ms)
	tests/vm/vmrun.sh -k "$KDIR" -m "${VMTEST_MEM:-1G}" -c "${VMTEST_CPUS:-2}" \
		-t "$VM_TIMEOUT" -w "$results" -- \
		env "${passenv[@]}" "VMTEST_SUITE_TIMEOUT=$SUITE_TIMEOUT" "BUILD=$BUILD" \
		tests/vm/run-vm-tests.sh --guest "$results" "${suites[@]}" || vmrc=$?
	echo "vmcheck: VM done in $(secs_since "$start") s"
	print_summary "$results" "$vmrc" "${suites[@]}"
}

if [ "${1:-}" = --guest ]; then
	shift
	guest_main "$@"
else
	host_main "$@"
fi
