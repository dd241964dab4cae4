#!/bin/sh
# Stage 2 init of the test VM (PID 1 inside the guest), run by the host's
# own /bin/sh from the overlay root that the initramfs set up.
#
# Gets its parameters from the kernel command line as environment
# variables (set by vmrun.sh):
#   VMTEST_CMD     script to run (a file under the host's /tmp)
#   VMTEST_MODDIR  the unpacked guest modules, bind-mounted on
#                  /lib/modules/$(uname -r) so modprobe and auto-loading
#                  (veth, sch_ingress, cls_bpf...) work
#   VMTEST_RWDIR   optional host folder shared read-write (9p tag "rwdir")
# Prints VMTEST_START and VMTEST_EXIT=<rc> on the console (vmrun.sh reads
# them) and powers off. Everything written outside VMTEST_RWDIR is lost
# with the VM.
#
# Under virtme-ng, whose own init has mounted everything already, this runs
# as an ordinary process: it only adds what is missing (guest modules,
# bpffs), runs the command and exits with its status.

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
export HOME=/root
export TERM=dumb

note()
{
	echo "VMTEST init: $*"
}

# mount_fs TYPE DIR [OPTIONS]: one pseudo file system, quietly skipped if
# the kernel lacks it (the tests then say what is missing).
mount_fs()
{
	mkdir -p "$2" 2>/dev/null
	if [ -n "${3:-}" ]; then
		mount -t "$1" -o "$3" "$1" "$2" 2>/dev/null || note "cannot mount $1 on $2"
	else
		mount -t "$1" "$1" "$2" 2>/dev/null || note "cannot mount $1 on $2"
	fi
}

setup_mounts()
{
	mount_fs proc /proc
	mount_fs sysfs /sys
	mount_fs tmpfs /run mode=0755
	mkdir -p /run/netns /run/lock
	mount_fs bpf /sys/fs/bpf mode=0700
	mount_fs debugfs /sys/kernel/debug
	mount_fs tracefs /sys/kernel/tracing
	mount_fs cgroup2 /sys/fs/cgroup
	mount_fs devpts /dev/pts gid=5,mode=620,ptmxmode=666
	mount_fs tmpfs /dev/shm mode=1777
	[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
}

setup_modules()
{
	[ -n "${VMTEST_MODDIR:-}" ] || return 0
	mods=/lib/modules/$(uname -r)
	mkdir -p "$mods"
	mount --bind "$VMTEST_MODDIR" "$mods" || note "cannot bind $VMTEST_MODDIR"
}

# The device nodes that load their module on first open (/dev/net/tun
# for the agent's pfsync0...): what systemd-tmpfiles makes at boot from
# modules.devname on a normal system.
setup_static_nodes()
{
	devname=/lib/modules/$(uname -r)/modules.devname
	[ -r "$devname" ] || return 0
	grep -v '^#' "$devname" | while read -r _ node spec; do
		[ -e "/dev/$node" ] && continue
		type=${spec%%[0-9]*}
		numbers=${spec#"$type"}
		mkdir -p "$(dirname "/dev/$node")"
		mknod -m 0600 "/dev/$node" "$type" "${numbers%%:*}" "${numbers#*:}" 2>/dev/null
	done
}

setup_rwdir()
{
	[ -n "${VMTEST_RWDIR:-}" ] || return 0
	mkdir -p "$VMTEST_RWDIR"
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 rwdir "$VMTEST_RWDIR" ||
		note "cannot mount the read-write share on $VMTEST_RWDIR"
}

uptime_s()
{
	cut -d' ' -f1 /proc/uptime
}

# Mounts bpffs unless something is mounted there already (virtme-ng).
ensure_bpffs()
{
	grep -q ' /sys/fs/bpf ' /proc/mounts || mount_fs bpf /sys/fs/bpf mode=0700
}

if [ $$ -eq 1 ]; then
	setup_mounts
	setup_modules
	setup_static_nodes
	setup_rwdir
	hostname vmtest 2>/dev/null
else
	ensure_bpffs
	[ -d "/lib/modules/$(uname -r)" ] || setup_modules
	setup_static_nodes
fi
ip link set dev lo up 2>/dev/null
ulimit -l unlimited 2>/dev/null # BPF maps on kernels before 5.11 count as locked memory

echo "VMTEST_START kernel=$(uname -r) uptime=$(uptime_s)"
if [ -n "${VMTEST_CMD:-}" ] && [ -r "$VMTEST_CMD" ]; then
	/bin/sh "$VMTEST_CMD" </dev/null
	rc=$?
else
	note "VMTEST_CMD '${VMTEST_CMD:-}' not readable"
	rc=125
fi
echo "VMTEST_EXIT=$rc uptime=$(uptime_s)"
[ $$ -eq 1 ] || exit "$rc"
sync
# Synchronous power-off: PID 1 must not exit first (that would panic).
exec busybox poweroff -f
