#!/usr/bin/env bash
# vmrun.sh [-k KDIR] [-m MEM] [-c CPUS] [-t TIMEOUT] [-w RWDIR] -- CMD...
#
# Runs CMD (in the current directory) as root inside a throw-away VM booted
# from the Debian kernel unpacked by get-kernel.sh, with the host's / as
# root (read-only 9p + tmpfs overlay: every write is lost with the VM,
# except under RWDIR, shared read-write). The console streams to stdout.
# Exits with CMD's exit status; 124 on timeout, 125 if the VM ended
# without reporting one (kernel panic, init failure).
#
# Runner: VMTEST_RUNNER=qemu (default here) boots qemu directly (TCG: KVM
# on these hosts is PVM and cannot run a stock kernel); VMTEST_RUNNER=vng
# goes through virtme-ng instead (what CI on GitHub runners uses); "auto"
# picks vng when it is installed. VMTEST_KVM=1 makes qemu use KVM.
# VMTEST_KERNEL (vng only): what `vng --run` boots instead of the Debian
# kernel (a built kernel tree, an image or an installed release).
# shellcheck disable=SC2317 # run_qemu and run_vng are called as "run_$RUNNER"
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
KDIR=/var/cache/pfsync-vmtest/kernel
MEM=1G
CPUS=2
TIMEOUT=300
RWDIR=
RUNNER=${VMTEST_RUNNER:-auto}

usage()
{
	echo "usage: $0 [-k KDIR] [-m MEM] [-c CPUS] [-t TIMEOUT] [-w RWDIR] -- CMD..." >&2
	exit 2
}

while getopts k:m:c:t:w:h opt; do
	case $opt in
	k) KDIR=$OPTARG ;;
	m) MEM=$OPTARG ;;
	c) CPUS=$OPTARG ;;
	t) TIMEOUT=$OPTARG ;;
	w) RWDIR=$(cd "$OPTARG" && pwd) ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || usage

# shell_quote ARG...: one line of single-quoted words that /bin/sh (dash)
# reads back as the same arguments.
shell_quote()
{
	local arg out=
	for arg in "$@"; do
		out+=" '${arg//\'/\'\\\'\'}'"
	done
	echo "${out# }"
}

# Paths go on the kernel command line, where a space would split them.
check_no_space()
{
	case $2 in
	*[[:space:]]*)
		echo "vmrun: $1 '$2' must not contain spaces" >&2
		exit 2
		;;
	esac
}

JOB=$(mktemp -d /tmp/vmtest.XXXXXX)
trap 'rm -rf "$JOB"' EXIT
{
	echo "cd $(shell_quote "$PWD") || exit 125"
	echo "exec $(shell_quote "$@")"
} >"$JOB/cmd.sh"

# Strips the serial console's CRs, keeps a copy in LOG and hides the
# VMTEST_ marker lines (the caller gets the status as exit code instead).
console_filter()
{
	sed -u 's/\r$//' | tee "$JOB/console.log" | grep --line-buffered -v -e '^VMTEST_' -e '^\[ *[0-9.]*\] reboot: Power down$' || true
}

run_qemu()
{
	local kver moddir append accel=tcg
	kver=$(cat "$KDIR/kver")
	moddir=$KDIR/lib/modules/$kver
	for path in "$HERE/guest-init.sh" "$JOB/cmd.sh" "$moddir" "$RWDIR"; do
		check_no_space path "$path"
	done
	[ "${VMTEST_KVM:-0}" = 1 ] && accel=kvm
	append="console=ttyS0 panic=-1 quiet loglevel=3 lpj=10000000"
	append+=" VMTEST_INIT=$HERE/guest-init.sh VMTEST_CMD=$JOB/cmd.sh"
	append+=" VMTEST_MODDIR=$moddir VMTEST_RWDIR=$RWDIR"
	# shellcheck disable=SC2054 # the commas are qemu's, inside one word
	local args=(
		-accel "$accel" -M pc -cpu max -m "$MEM" -smp "$CPUS"
		-nodefaults -no-user-config -display none -serial stdio -no-reboot
		-kernel "$KDIR/vmlinux" -initrd "$KDIR/initrd.gz"
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
		-append "$append"
	)
	[ -n "$RWDIR" ] &&
		args+=(-virtfs "local,path=$RWDIR,mount_tag=rwdir,security_model=none,multidevs=remap")
	timeout --kill-after=5 "$TIMEOUT" qemu-system-x86_64 "${args[@]}" </dev/null 2>&1 | console_filter
	return "${PIPESTATUS[0]}"
}

# virtme-ng runs its own init; guest-init.sh (not PID 1 there) only adds
# what the tests need (guest modules, bpffs) and runs the command.
run_vng()
{
	local kernel=${VMTEST_KERNEL:-$KDIR/vmlinuz} moddir=
	# modules only for the unpacked Debian kernel; a kernel tree or an
	# installed release (VMTEST_KERNEL) brings its own
	[ -z "${VMTEST_KERNEL:-}" ] && moddir=$KDIR/lib/modules/$(cat "$KDIR/kver")
	local args=(--run "$kernel" --user root --cpus "$CPUS" --memory "$MEM")
	[ -n "$RWDIR" ] && args+=(--rwdir "$RWDIR")
	[ -e /dev/kvm ] && [ "${VMTEST_KVM:-1}" = 1 ] || args+=(--disable-kvm)
	local guest_cmd
	guest_cmd="env VMTEST_CMD=$JOB/cmd.sh VMTEST_MODDIR=$moddir VMTEST_RWDIR= /bin/sh $HERE/guest-init.sh"
	timeout --kill-after=5 "$TIMEOUT" vng "${args[@]}" --exec "$guest_cmd" </dev/null 2>&1 | console_filter
	return "${PIPESTATUS[0]}"
}

case $RUNNER in
auto) command -v vng >/dev/null && RUNNER=vng || RUNNER=qemu ;;
qemu | vng) ;;
*)
	echo "vmrun: VMTEST_RUNNER must be auto, qemu or vng" >&2
	exit 2
	;;
esac
if [ "$RUNNER" = qemu ]; then
	for f in vmlinux initrd.gz kver; do
		[ -s "$KDIR/$f" ] || {
			echo "vmrun: $KDIR/$f missing: run tests/vm/get-kernel.sh" >&2
			exit 125
		}
	done
fi

start=$(date +%s%N)
rc=0
"run_$RUNNER" || rc=$?
wall_ms=$((($(date +%s%N) - start) / 1000000))
wall=$((wall_ms / 1000)).$(printf %03d $((wall_ms % 1000)))
guest_rc=$(sed -n 's/^VMTEST_EXIT=\([0-9]*\).*/\1/p' "$JOB/console.log" | tail -n1)
boot=$(sed -n 's/^VMTEST_START.* uptime=\([0-9.]*\).*/\1/p' "$JOB/console.log" | tail -n1)
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
	echo "vmrun: TIMEOUT after ${TIMEOUT}s (runner $RUNNER)" >&2
	exit 124
fi
if [ -z "$guest_rc" ]; then
	echo "vmrun: the VM ended without an exit status (runner $RUNNER exit $rc; panic or init failure?)" >&2
	exit 125
fi
echo "vmrun: runner=$RUNNER exit=$guest_rc boot=${boot:-?}s wall=${wall}s" >&2
exit "$guest_rc"
