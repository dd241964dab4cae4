#!/usr/bin/env bash
# Install the Debian 12 packages that build, test and demo pfsync-xdp need.
# Only missing packages are installed, so a second run is quick and offline-safe.
#
# Usage: scripts/deps.sh        build/test/demo packages (what `make check` needs)
#        scripts/deps.sh vm     only the extra packages of `make vmcheck` (qemu,
#                               busybox-static, kmod, xz-utils), so `make check`
#                               never pulls in qemu
set -euo pipefail

packages=(
	make gcc clang llvm libc6-dev libbpf-dev libxdp-dev bpftool xdp-tools
	libelf-dev zlib1g-dev libcmocka-dev libpcap-dev libssl-dev pkg-config
	iproute2 nftables iputils-ping netcat-openbsd procps jq python3
	libclang-rt-14-dev tcpdump keepalived conntrackd conntrack ethtool
	tshark mandoc man-db systemd
)

# `make vmcheck`: boots Debian's 6.1 kernel under qemu (tests/vm/).
vm_packages=(qemu-system-x86 busybox-static kmod xz-utils)

case "${1:-}" in
'') ;;
vm) packages=("${vm_packages[@]}") ;;
*)
	echo "usage: $0 [vm]" >&2
	exit 2
	;;
esac

missing=()
for pkg in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$pkg")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages (${missing[*]}); run as root to install them" >&2
	exit 1
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
