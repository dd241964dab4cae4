#!/usr/bin/env bash
# get-kernel.sh [KDIR] [PKG]: fetches Debian's kernel package once and
# unpacks it into KDIR for tests/vm/vmrun.sh. The package is never
# installed: /boot, the boot loader and /lib/modules stay untouched.
#
#   KDIR  default $VMTEST_KDIR or /var/cache/pfsync-vmtest/kernel
#   PKG   default $VMTEST_PKG or the package linux-image-amd64 depends on today
#         (e.g. linux-image-6.1.0-56-amd64); name one to pin a version
#
# Leaves in KDIR: kver, vmlinuz, vmlinux (the uncompressed ELF, booted
# through its PVH entry: under TCG this skips ~2.5 s of xz decompression
# per boot), config, lib/modules/KVER/ (depmod'ed) and initrd.gz. A second
# run with the same PKG does nothing except rebuild initrd.gz when
# mkinitramfs.sh changed. Needs root (apt-get download, depmod).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
KDIR=${1:-${VMTEST_KDIR:-/var/cache/pfsync-vmtest/kernel}}
PKG=${2:-${VMTEST_PKG:-}}

log()
{
	echo "get-kernel: $*" >&2
}

die()
{
	log "ERROR: $*"
	exit 1
}

# The package behind the linux-image-amd64 meta-package, e.g.
# linux-image-6.1.0-56-amd64.
resolve_package()
{
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

# Byte offsets (1-based, for tail -c +N) of every xz stream magic in FILE.
xz_offsets()
{
	LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$1" | cut -d: -f1 | while read -r off; do
		echo $((off + 1))
	done
}

# Cuts the xz payload out of a bzImage and decompresses it to OUT. The
# first candidate that decompresses to an ELF file wins.
extract_vmlinux()
{
	local image=$1 out=$2 off
	for off in $(xz_offsets "$image"); do
		# xz stops after its stream: tail's SIGPIPE is expected, xz's status counts
		{ tail -c +"$off" "$image" || true; } | xz -dc --single-stream >"$out" 2>/dev/null || continue
		if [ "$(head -c 4 "$out" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
			return 0
		fi
	done
	rm -f "$out"
	return 1
}

unpack_package()
{
	local pkg=$1 work kver
	work=$(mktemp -d /var/tmp/pfsync-vmtest-kernel.XXXXXX)
	# shellcheck disable=SC2064 # expand now: work is local
	trap "rm -rf '$work'" EXIT
	log "downloading $pkg"
	local deb
	# stale package lists name a version the mirror no longer has: update once
	if ! (cd "$work" && apt-get download -q "$pkg" >/dev/null 2>&1); then
		apt-get update -q >&2
		(cd "$work" && apt-get download -q "$pkg" >&2) || true
	fi
	deb=$(ls "$work"/"$pkg"_*.deb 2>/dev/null | head -n1)
	[ -n "$deb" ] || die "apt-get download $pkg failed (apt-get update? network?)"
	dpkg -x "$deb" "$work/root"
	kver=$(ls "$work/root/lib/modules" | head -n1)
	[ -n "$kver" ] || die "$deb holds no lib/modules/KVER"
	mkdir -p "$work/kernel/lib/modules"
	mv "$work/root/lib/modules/$kver" "$work/kernel/lib/modules/"
	mv "$work/root/boot/vmlinuz-$kver" "$work/kernel/vmlinuz"
	mv "$work/root/boot/config-$kver" "$work/kernel/config"
	depmod -b "$work/kernel" "$kver"
	extract_vmlinux "$work/kernel/vmlinuz" "$work/kernel/vmlinux" ||
		die "no xz-compressed ELF found in vmlinuz-$kver"
	echo "$kver" >"$work/kernel/kver"
	echo "$pkg" >"$work/kernel/package"
	rm -rf "$KDIR"
	mkdir -p "$(dirname "$KDIR")"
	mv "$work/kernel" "$KDIR"
	rm -rf "$work"
	trap - EXIT
	log "unpacked $pkg ($kver) into $KDIR"
}

main()
{
	[ "$(id -u)" -eq 0 ] || die "must run as root (apt-get download, depmod)"
	for tool in apt-get dpkg depmod modprobe xz busybox; do
		command -v "$tool" >/dev/null || die "$tool missing: run scripts/deps.sh vm"
	done
	# two runs at once (parallel CI jobs) must not unpack over each other
	mkdir -p "$(dirname "$KDIR")"
	exec 9>"$KDIR.lock"
	flock 9
	[ -n "$PKG" ] || PKG=$(resolve_package)
	if [ -z "$PKG" ]; then
		log "no package lists? running apt-get update"
		apt-get update -q >&2
		PKG=$(resolve_package)
	fi
	[ -n "$PKG" ] || die "cannot resolve linux-image-amd64 (apt-get update?)"
	if [ "$(cat "$KDIR/package" 2>/dev/null)" != "$PKG" ] || [ ! -s "$KDIR/vmlinux" ]; then
		unpack_package "$PKG"
	fi
	local kver
	kver=$(cat "$KDIR/kver")
	if [ ! -s "$KDIR/initrd.gz" ] || [ "$HERE/mkinitramfs.sh" -nt "$KDIR/initrd.gz" ]; then
		"$HERE/mkinitramfs.sh" "$KDIR" "$kver" "$KDIR/initrd.gz"
	fi
	echo "$KDIR"
}

main
