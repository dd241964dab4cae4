#!/usr/bin/env bash
# Forwarding half of bench/datapath (run by build/bench/datapath, which
# prints the table): packets per second forwarded by a firewall namespace
# between a client and a server namespace, each load bounded to SECONDS:
#   udp  64-byte frames from a packet generator, the flow answered once
#        before each run (both directions seen: conntrack's established,
#        pf's MULTIPLE, which the fast path and the flowtable need)
#   tcp  TCP_STREAMS bulk TCP streams in parallel, data and ACKs counted
#   (bench/datapath/loads.sh has both, shared with bench/nat.sh)
# The modes:
#   none        plain forwarding
#   xdp-empty   an XDP_PASS program on both firewall veths: what the veth's
#               XDP path costs by itself (see below)
#   nftables    stateful: ct state established,related accept, new only
#               from the inside interface, drop the rest; conntrack
#               accounting on, so that it keeps per-connection packet and
#               byte counters as pf's states do (the same work)
#   nftables+xdp  nftables with the XDP_PASS program of xdp-empty on both
#               veths: nftables paying the same veth XDP cost as pfsync-xdp
#   pfsync-xdp  build/pfsync_xdp.o (XDP + tc egress on both interfaces),
#               the same policy as a pf ruleset
#   nft-flowtable  nftables as above plus a flowtable on both veths
#               (`flow add @ft` for established connections): the kernel's
#               software fast path. Probed first: a kernel without
#               nf_flow_table prints "NA nft-flowtable REASON", which the
#               table shows as n/a with its reason (never a number)
#   pfsync-xdp+fp  pfsync-xdp with its fast path on (pfsyncctl set fastpath)
#   xdp-fwd     the fast path's floor: build/bench_fwd.o on both veths, fib
#               lookup and redirect for every packet, no state, no filter
# The last two redirect frames between veths: the hosts' ends get GRO on
# (veth takes redirected frames only with NAPI) and transmit checksums off
# (a redirected frame loses veth's CHECKSUM_PARTIAL mark) for those two
# modes only, so the client computes its checksums in them (a handicap).
# Offloads are off on every veth, so one TCP segment is one packet in all
# modes (XDP on a veth turns GSO off on its peer anyway).
#
# What XDP costs on a veth (not on a NIC): XDP is attached in native mode
# (checked, logged). The UDP load arrives as XDP frames (ndo_xdp_xmit), on
# which native XDP runs as it would on a NIC's receive ring, so the modes
# differ only by their own work. The TCP load comes from a socket in the
# client namespace: its segments are cloned skbs with the payload in page
# fragments, which veth must copy into a fresh linear page before any XDP
# program may see them (a NIC would hand XDP its DMA buffer); the plain
# stack forwards them with only the headers copied. That copy is the
# xdp-empty row's loss against none, paid by pfsync-xdp whatever its
# program does; nftables+xdp pays it too, for comparing like with like.
# Usage: forward.sh SECONDS BUILD_DIR [ROUNDS]
#   -> "RESULT mode load pkts_per_s" lines, ROUNDS (default 3) per mode
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/netns-lib.sh

SECONDS_PER_RUN=${1:-3}
BUILD=$(cd "${2:-build}" && pwd)
ROUNDS=${3:-3}
BENCH="$BUILD/bench/datapath"
CTL="$BUILD/pfsyncctl" # nl_fp_forwarded
UDP_PORT=5201
TCP_PORT=5202 # TCP_PORT .. TCP_PORT + TCP_STREAMS - 1
# shellcheck source=bench/datapath/loads.sh
. bench/datapath/loads.sh

nl_init fwd
nl_topology
nl_offloads_off "$NL_CLIENT" eth0
nl_offloads_off "$NL_SERVER" eth0
nl_offloads_off "$NL_FW" "$NL_FW_IN" "$NL_FW_OUT"
# per-connection counters in conntrack, as pf keeps per state (this netns only)
nl_in "$NL_FW" sysctl -qw net.netfilter.nf_conntrack_acct=1 2>/dev/null ||
	nl_log "cannot turn conntrack accounting on: nftables rows count nothing"
nl_wait_until 5 nl_in "$NL_CLIENT" ping -c1 -W1 -q "$NL_SERVER4" >/dev/null ||
	nl_die "no route through the firewall"

# UDP load ends at the server's netdev ingress hook (cheap, no ICMP replies)
nl_in "$NL_SERVER" nft -f - <<NFT
table netdev pfbench_sink {
	chain ingress {
		type filter hook ingress device eth0 priority 0;
		udp dport $UDP_PORT drop
	}
}
NFT
loads_init
echo "GENERATOR udp $UDP_GEN"

run_load()
{
	local mode=$1 load=$2 before after t0 t1 sent fp0=
	if [ "$load" = udp ]; then
		# the first frames make the state, then the answer: both directions
		udp_prime || nl_log "$mode/$load: generator failed"
		udp_answer "$NL_CLIENT4" "$UDP_SRC_PORT"
	else
		tcp_connect
	fi
	# the fast-path rows must measure the fast path: how much of it took it
	[[ $mode != *+fp ]] || fp0=$(nl_fp_forwarded "$NL_FW_PIN" nl_fw) || fp0=
	before=$(fw_tx_packets)
	t0=${EPOCHREALTIME/./}
	if [ "$load" = udp ]; then
		udp_gen "$SECONDS_PER_RUN" || nl_log "$mode/$load: generator failed"
	else
		tcp_streams || nl_log "$mode/$load: a TCP sender failed"
		: >"$NL_TMP/gen.out"
	fi
	t1=${EPOCHREALTIME/./}
	after=$(fw_tx_packets)
	echo "RESULT $mode $load $(((after - before) * 1000000 / (t1 - t0)))"
	[ -z "$fp0" ] ||
		nl_log "$mode/$load: $(($(nl_fp_forwarded "$NL_FW_PIN" nl_fw) - fp0)) of $((after - before)) packets fast-pathed"
	# refused batches (pktsend): the firewall's queue was full, it set the pace
	sent=$(sed -n 's/^frames \([0-9]*\)/\1/p' "$NL_TMP/gen.out")
	[ -z "$sent" ] || nl_log "$mode/$load: generator: $sent"
}

run_mode()
{
	run_load "$1" udp
	run_load "$1" tcp
}

XDP_MODE_LOGGED=0
xdp_attach()
{
	local obj=$1 ifname mode
	for ifname in "$NL_FW_IN" "$NL_FW_OUT"; do
		nl_fw ip link set dev "$ifname" xdp obj "$obj" sec xdp || return 1
	done
	if [ "$XDP_MODE_LOGGED" = 0 ]; then
		# iproute2's JSON: xdp.mode 1 = native (driver), 2 = generic (skb)
		mode=$(ip -n "$NL_FW" -j -d link show dev "$NL_FW_IN" | jq -r '.[0].xdp.mode // empty')
		case $mode in
		1) nl_log "XDP attached in native mode" ;;
		*) nl_log "XDP attached in mode '${mode:-?}', not native: the XDP rows mean less" ;;
		esac
		XDP_MODE_LOGGED=1
	fi
}

xdp_detach()
{
	local ifname
	for ifname in "$NL_FW_IN" "$NL_FW_OUT"; do
		nl_fw ip link set dev "$ifname" xdp off
		nl_fw tc qdisc del dev "$ifname" clsact 2>/dev/null || true
	done
}

nft_up()
{
	nl_fw nft -f - <<NFT
table inet pfbench {
	chain forward {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		iifname "$NL_FW_IN" ct state new accept
	}
}
NFT
}

nft_down()
{
	nl_fw nft delete table inet pfbench
}

# Attaches pfsync_xdp.o as DESIGN.md says (XDP + tc egress on both
# interfaces) and loads the ruleset equivalent to the nftables one. Prints
# the mode name: pfsync-norules when no ruleset could be loaded.
pfsync_up()
{
	local ifname
	xdp_attach "$BUILD/pfsync_xdp.o" || return 1
	for ifname in "$NL_FW_IN" "$NL_FW_OUT"; do
		nl_fw tc qdisc add dev "$ifname" clsact || return 1
		nl_fw tc filter add dev "$ifname" egress bpf da obj "$BUILD/pfsync_xdp.o" sec tc ||
			return 1
	done
	cat >"$NL_TMP/rules.conf" <<RULES
block in on $NL_FW_OUT
pass out
pass in on $NL_FW_IN
RULES
	if [ -x "$BUILD/pfsyncctl" ] &&
		nl_fw "$BUILD/pfsyncctl" rules load "$NL_TMP/rules.conf" >&2; then
		echo pfsync-xdp
	else
		echo pfsync-norules
	fi
}

flowtable_up()
{
	nl_fw nft -f - <<NFT
table inet pfbench_ft {
	flowtable ft {
		hook ingress priority 0; devices = { $NL_FW_IN, $NL_FW_OUT };
	}
	chain forward {
		type filter hook forward priority 0; policy drop;
		meta l4proto { tcp, udp } ct state established flow add @ft
		ct state established,related accept
		iifname "$NL_FW_IN" ct state new accept
	}
}
NFT
}

flowtable_down()
{
	nl_fw nft delete table inet pfbench_ft
}

# hosts_redirect_ready on|off: the hosts' veth ends for redirected frames
hosts_redirect_ready()
{
	local ns gro=off tx=on
	[ "$1" = on ] && gro=on tx=off
	for ns in "$NL_CLIENT" "$NL_SERVER"; do
		nl_in "$ns" ethtool -K eth0 gro "$gro" tx "$tx" >/dev/null
	done
}

# fp_set_fill: in0 and out0 (ifindex, MAC) in the pinned pfsync_fastpath_ifs
# by bpftool, for bench_fwd (pfsync-xdp's fast path fills it with pfsyncctl)
fp_set_fill()
{
	local ifname idx mac key val
	for ifname in "$NL_FW_IN" "$NL_FW_OUT"; do
		idx=$(ip -n "$NL_FW" -j link show dev "$ifname" | jq '.[0].ifindex')
		mac=$(ip -n "$NL_FW" -j link show dev "$ifname" | jq -r '.[0].address')
		key=$(printf '0x%02x 0x%02x 0x%02x 0x%02x' $((idx & 255)) $((idx >> 8 & 255)) \
			$((idx >> 16 & 255)) $((idx >> 24 & 255)))
		val="0x${mac//:/ 0x} 0 0"
		# shellcheck disable=SC2086 # byte lists
		nl_fw bpftool map update pinned "$NL_FW_PIN/pfsync_fastpath_ifs" key $key value $val ||
			return 1
	done
}

# Kernels built without CONFIG_NF_FLOW_TABLE (this machine's) refuse it:
# the row is printed as n/a with the reason, never as a number
have_flowtable=1 flowtable_na=
if flowtable_up 2>"$NL_TMP/flowtable.err"; then
	flowtable_down
else
	have_flowtable=0
	if grep -E ' nf_flow_(table|offload)_' /proc/kallsyms >/dev/null; then
		flowtable_na="flowtable refused: $(head -1 "$NL_TMP/flowtable.err")"
	else
		flowtable_na="kernel lacks nf_flow_table"
	fi
	nl_log "nft-flowtable: $flowtable_na"
fi

have_pfsync=0
if [ -f "$BUILD/pfsync_xdp.o" ]; then
	have_pfsync=1
	nl_fw_bpffs
else
	nl_log "$BUILD/pfsync_xdp.o missing: pfsync-xdp rows skipped"
fi

# Modes interleaved round by round, so that a slow phase of the machine
# hits all of them; build/bench/datapath takes the median per mode.
for ((round = 0; round < ROUNDS; round++)); do
	run_mode none

	xdp_attach "$BUILD/bench_empty.o"
	run_mode xdp-empty
	xdp_detach

	nft_up
	run_mode nftables
	nft_down

	xdp_attach "$BUILD/bench_empty.o"
	nft_up
	run_mode nftables+xdp
	nft_down
	xdp_detach

	if [ "$have_pfsync" = 1 ]; then
		if mode=$(pfsync_up); then
			nl_wait_until 5 nl_in "$NL_CLIENT" ping -c1 -W1 -q "$NL_SERVER4" >/dev/null ||
				nl_log "$mode: ping through the firewall fails"
			run_mode "$mode"
			hosts_redirect_ready on
			if nl_fw "$BUILD/pfsyncctl" set fastpath on "$NL_FW_IN" "$NL_FW_OUT" >&2; then
				run_mode "$mode+fp"
				nl_fw "$BUILD/pfsyncctl" set fastpath off >&2
			else
				nl_log "cannot turn the fast path on: $mode+fp rows skipped"
			fi
			hosts_redirect_ready off
		else
			nl_log "cannot attach $BUILD/pfsync_xdp.o with iproute2"
			have_pfsync=0
		fi
		xdp_detach
	fi

	if [ "$have_flowtable" = 1 ]; then
		flowtable_up
		run_mode nft-flowtable
		flowtable_down
	elif [ "$round" = 0 ]; then
		echo "NA nft-flowtable $flowtable_na" # in the table where its rows would be
	fi

	if [ -f "$BUILD/bench_fwd.o" ] && [ -n "${NL_FW_MNTNS:-}" ] &&
		xdp_attach "$BUILD/bench_fwd.o" && fp_set_fill; then
		hosts_redirect_ready on
		run_mode xdp-fwd
		hosts_redirect_ready off
	else
		nl_log "cannot attach $BUILD/bench_fwd.o: xdp-fwd rows skipped"
	fi
	xdp_detach
done
