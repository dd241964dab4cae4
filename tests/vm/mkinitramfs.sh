#!/usr/bin/env bash
# mkinitramfs.sh KDIR KVER OUT: builds the tiny initramfs of the test VM.
#
# Debian's kernel has virtio, 9p and overlayfs as modules, so the root file
# system cannot be mounted from the kernel command line: this initramfs
# (static busybox + those modules + /init) mounts the host's / (9p tag
# "hostroot", read-only) under a tmpfs overlay and switch_roots to
# $VMTEST_INIT (tests/vm/guest-init.sh) on it, run by the host's own shell.
# KDIR/lib/modules/KVER must be depmod'ed (get-kernel.sh does it).
set -euo pipefail

[ $# -eq 3 ] || {
	echo "usage: $0 KDIR KVER OUT" >&2
	exit 2
}
KDIR=$1
KVER=$2
OUT=$3

# Modules needed to reach the root, loaded in dependency order; the list is
# asked from modprobe so a new Debian ABI with other dependencies still works.
ROOT_MODULES="virtio_pci 9pnet_virtio 9p overlay"

BUSYBOX=$(command -v busybox) || {
	echo "mkinitramfs: busybox missing (scripts/deps.sh vm)" >&2
	exit 1
}
file -L "$BUSYBOX" 2>/dev/null | grep -q dynamically &&
	echo "mkinitramfs: warning: $BUSYBOX is not static (busybox-static)" >&2

work=$(mktemp -d /var/tmp/pfsync-initramfs.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Prints the .ko paths (relative to KDIR) to insmod, dependencies first,
# each once. Built-in modules print "builtin NAME" and are skipped.
module_load_order()
{
	local mod
	for mod in $ROOT_MODULES; do
		modprobe -d "$KDIR" -S "$KVER" --show-depends "$mod"
	done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }'
}

mkdir -p "$work"/{bin,dev,proc,sys,lower,rw,newroot,modules}
cp "$BUSYBOX" "$work/bin/busybox"
ln -s busybox "$work/bin/sh"

: >"$work/modules/order"
for ko in $(module_load_order); do
	cp "$ko" "$work/modules/"
	basename "$ko" >>"$work/modules/order"
done
[ -s "$work/modules/order" ] || {
	echo "mkinitramfs: modprobe found none of: $ROOT_MODULES" >&2
	exit 1
}

cat >"$work/init" <<'INIT'
#!/bin/sh
# Stage 1 of the test VM: modules, 9p root read-only + tmpfs overlay, then
# switch_root to $VMTEST_INIT. Any failure powers off at once, so a broken
# VM ends now instead of at the host's timeout.
bb=/bin/busybox
fail() {
	echo "VMTEST initramfs: $*"
	$bb poweroff -f
}
$bb mount -t proc proc /proc
$bb mount -t devtmpfs dev /dev
for ko in $($bb cat /modules/order); do
	$bb insmod "/modules/$ko" || fail "insmod $ko failed"
done
if [ "$VMTEST_ROOTFS" = virtiofs ]; then
	$bb mount -t virtiofs -o ro hostroot /lower || fail "cannot mount virtiofs root"
else
	$bb mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose \
		hostroot /lower || fail "cannot mount 9p root"
fi
$bb mount -t tmpfs -o mode=0755 rw /rw || fail "cannot mount tmpfs"
$bb mkdir -p /rw/upper /rw/work
$bb mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work \
	overlay /newroot || fail "cannot mount overlay"
[ -n "$VMTEST_INIT" ] && [ -e "/newroot$VMTEST_INIT" ] ||
	fail "VMTEST_INIT '$VMTEST_INIT' not found on the host root"
$bb mount --move /dev /newroot/dev || fail "cannot move /dev"
$bb umount /proc
exec $bb switch_root /newroot /bin/sh "$VMTEST_INIT"
INIT
chmod 755 "$work/init"

mkdir -p "$(dirname "$OUT")"
(cd "$work" && find . | sort | "$BUSYBOX" cpio -o -H newc 2>/dev/null) | gzip -1 >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "mkinitramfs: $OUT ($(wc -c <"$OUT") bytes, modules: $(tr '\n' ' ' <"$work/modules/order"))" >&2
