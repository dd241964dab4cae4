#!/usr/bin/env bash
# bench/nat (issue 15): what NAT costs pfsync-xdp, three figures with their
# baselines measured in the same run.
#
#  1. BPF_PROG_RUN (build/bench/datapath --nat-only): an established
#     translated packet against an established plain one, wire-key and
#     stack-key direction. Target <= 1.3x.
#  2. Forwarding through a firewall namespace, pfsync-xdp with nat-to
#     against nftables masquerade with conntrack, same load, rounds
#     interleaved (below). Target >= 1.0x.
#  3. Failover of NATed streams against plain ones (bench/failover.sh --nat):
#     all survive, stall within 10 % of the plain run.
#
# Forwarding topology (scripts/netns-lib.sh nl_topology):
#   client 10.201.1.2 -- in0 [fw] out0 (10.201.2.1) -- server 10.201.2.2
# The server has no route back to the client's network: only translated
# connections work. Modes, interleaved round by round:
#   nft-masq    nftables: ct state established,related accept, new only from
#               in0, `masquerade` on out0 in a nat postrouting chain;
#               conntrack accounting on (pf's states count packets too)
#   pfsync-nat  build/pfsync_xdp.o on both interfaces (XDP + tc egress),
#               `pass out on out0 from 10.201.1.0/24 nat-to 10.201.2.1`
#   pfsync-nat+fp  the same with the fast path on (pfsyncctl set fastpath):
#               translated in XDP and redirected; the hosts' veths get GRO
#               on for it (veth takes redirected frames only with NAPI), as
#               in bench/datapath/forward.sh. Informative: nftables has no
#               flowtable on this kernel to set against it
# Loads, each bounded to --seconds: `datapath gen udp` (18-byte datagrams
# from a socket, dropped at the server's netdev ingress) and `datapath gen
# tcp` into `datapath sink tcp` (one bulk stream, data and ACKs counted).
# Measured: packets the firewall sent out of both interfaces per second.
# Offloads are off on every veth (one TCP segment is one packet) and the
# hosts send full checksums (tx off: XDP cannot tell veth's partial ones and
# NAT rewrites them incrementally) in both modes. The server counts the
# datagrams that arrive from the public address: a mode that forwards
# untranslated is reported as such and fails the bench.
#
# Options: --seconds S (NAT_SECONDS, default 3), --rounds N (NAT_ROUNDS,
# default 3), --streams N for the failover (NAT_STREAMS, default 200).
# NAT_ONLY=prog|forward|failover runs one part. Nothing here asserts a time.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. scripts/netns-lib.sh
nl_build
BENCH_BIN=$BUILD/bench/datapath
SECONDS_PER_RUN=${NAT_SECONDS:-3}
ROUNDS=${NAT_ROUNDS:-3}
STREAMS=${NAT_STREAMS:-200}
while [ $# -gt 0 ]; do
	case $1 in
	--seconds) SECONDS_PER_RUN=$2 && shift ;;
	--rounds) ROUNDS=$2 && shift ;;
	--streams) STREAMS=$2 && shift ;;
	*) echo "[nat] ignoring argument $1" >&2 ;;
	esac
	shift
done
UDP_PORT=5201
TCP_PORT=5202
FAILED=0

part() { [ -z "${NAT_ONLY:-}" ] || [ "$NAT_ONLY" = "$1" ]; }

# ---- 1. BPF_PROG_RUN ------------------------------------------------------------
run_prog()
{
	echo "== 1. BPF_PROG_RUN"
	"$BENCH_BIN" --nat-only --build "$BUILD" --rounds "$ROUNDS" || FAILED=1
}

# ---- 2. forwarding ------------------------------------------------------------------
declare -A PPS=() TRANSLATED=() SENT_OUT=()

# tx_packets NS IF: packets sent out of IF in NS
tx_packets() { ip -n "$1" -j -s link show dev "$2" | jq '.[0].stats64.tx.packets'; }

fw_tx_packets() { echo $(($(tx_packets "$NL_FW" "$NL_FW_IN") + $(tx_packets "$NL_FW" "$NL_FW_OUT"))); }

# public_datagrams: UDP datagrams the server's ingress saw from the public address
public_datagrams()
{
	nl_in "$NL_SERVER" nft -j list counter netdev natbench_sink public |
		jq '.nftables[] | select(.counter) | .counter.packets'
}

# run_load MODE udp|tcp: one bounded load, its packets per second in PPS
run_load()
{
	local mode=$1 load=$2 before after t0 t1 pub0 out0 gen
	gen=(gen udp "$NL_SERVER4" "$UDP_PORT")
	[ "$load" = tcp ] && gen=(gen tcp "$NL_SERVER4" "$TCP_PORT")
	pub0=$(public_datagrams)
	out0=$(tx_packets "$NL_FW" "$NL_FW_OUT")
	before=$(fw_tx_packets)
	t0=${EPOCHREALTIME/./}
	nl_in "$NL_CLIENT" "$BENCH_BIN" "${gen[@]}" "$SECONDS_PER_RUN" >"$NL_TMP/gen.out" 2>&1 ||
		nl_log "$mode/$load: generator failed: $(tail -1 "$NL_TMP/gen.out")"
	t1=${EPOCHREALTIME/./}
	after=$(fw_tx_packets)
	PPS[$mode.$load]+="$(((after - before) * 1000000 / (t1 - t0))) "
	if [ "$load" = udp ]; then
		TRANSLATED[$mode]=$((${TRANSLATED[$mode]:-0} + $(public_datagrams) - pub0))
		SENT_OUT[$mode]=$((${SENT_OUT[$mode]:-0} + $(tx_packets "$NL_FW" "$NL_FW_OUT") - out0))
	fi
}

nft_masq_up()
{
	nl_fw nft -f - <<-NFT
		table inet natbench {
			chain forward {
				type filter hook forward priority 0; policy drop;
				ct state established,related accept
				iifname "$NL_FW_IN" ct state new accept
			}
			chain postrouting {
				type nat hook postrouting priority srcnat;
				oifname "$NL_FW_OUT" masquerade
			}
		}
	NFT
}

nft_masq_down() { nl_fw nft delete table inet natbench; }

# pfsync_nat_up: pfsync_xdp.o as DESIGN.md attaches it by hand, with nat-to
pfsync_nat_up()
{
	local ifname
	for ifname in "$NL_FW_IN" "$NL_FW_OUT"; do
		nl_fw ip link set dev "$ifname" xdp obj "$OBJ" sec xdp &&
			nl_fw tc qdisc add dev "$ifname" clsact &&
			nl_fw tc filter add dev "$ifname" egress bpf da obj "$OBJ" sec tc || return 1
	done
	cat >"$NL_TMP/rules.conf" <<-RULES
		block in on $NL_FW_OUT
		pass in on $NL_FW_IN from 10.201.1.0/24 no state
		pass out on $NL_FW_OUT from 10.201.1.0/24 nat-to $NL_FW_OUT4
	RULES
	nl_fw "$CTL" rules load "$NL_TMP/rules.conf" >&2
}

pfsync_nat_down()
{
	local ifname
	for ifname in "$NL_FW_IN" "$NL_FW_OUT"; do
		nl_fw ip link set dev "$ifname" xdp off
		nl_fw tc qdisc del dev "$ifname" clsact 2>/dev/null
	done
	nl_fw "$CTL" flush states >/dev/null 2>&1 || true
	return 0
}

run_mode() # MODE: both loads, the mode's set-up already in place
{
	# a new connection every time: the TCP sink takes one after the other
	run_load "$1" udp
	run_load "$1" tcp
}

forward_setup()
{
	nl_init natb
	nl_topology
	ip -n "$NL_SERVER" route del default
	nl_offloads_off "$NL_CLIENT" eth0
	nl_offloads_off "$NL_SERVER" eth0
	nl_offloads_off "$NL_FW" "$NL_FW_IN" "$NL_FW_OUT"
	for ns in "$NL_CLIENT" "$NL_SERVER"; do
		nl_in "$ns" ethtool -K eth0 tx off >/dev/null || nl_die "ethtool -K eth0 tx off in $ns"
	done
	nl_in "$NL_FW" sysctl -qw net.netfilter.nf_conntrack_acct=1 2>/dev/null ||
		nl_log "cannot turn conntrack accounting on"
	nl_in "$NL_SERVER" nft -f - <<-NFT || nl_die "server sink rules"
		table netdev natbench_sink {
			counter public { }
			chain ingress {
				type filter hook ingress device eth0 priority 0;
				ip saddr $NL_FW_OUT4 udp dport $UDP_PORT counter name public drop
				udp dport $UDP_PORT drop
			}
		}
	NFT
	nl_fw_bpffs
	nl_bg TCP_SINK "$NL_SERVER" "$BENCH_BIN" sink tcp "$TCP_PORT" >"$NL_TMP/tcp-sink.out"
	nl_wait_until 5 nl_file_has "$NL_TMP/tcp-sink.out" ready || nl_die "tcp sink did not start"
}

med() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "n/a" }'; }

mode_label()
{
	case $1 in
	nft-masq) echo "nftables masquerade+ct (baseline)" ;;
	pfsync-nat) echo "pfsync-xdp nat-to" ;;
	*) echo "pfsync-xdp nat-to, fast path" ;;
	esac
}

# fastpath_forwarded: packets the XDP fast path forwarded (both directions)
fastpath_forwarded()
{
	nl_fw "$CTL" stats --json |
		jq '[.. | objects | select(has("forwarded")) | .forwarded | .initiator + .responder] | add // 0'
}

# fastpath_nat MODE: pfsync-nat's set-up with the fast path on, MODE's loads
# (FP_FORWARDED: what the fast path itself forwarded of them)
fastpath_nat()
{
	local ns before
	nl_fw "$CTL" set fastpath on "$NL_FW_IN" "$NL_FW_OUT" >&2 || {
		nl_log "cannot turn the fast path on: $1 rows skipped"
		return 0
	}
	for ns in "$NL_CLIENT" "$NL_SERVER"; do nl_in "$ns" ethtool -K eth0 gro on >/dev/null; done
	before=$(fastpath_forwarded)
	run_mode "$1"
	FP_FORWARDED=$((${FP_FORWARDED:-0} + $(fastpath_forwarded) - before))
	for ns in "$NL_CLIENT" "$NL_SERVER"; do nl_in "$ns" ethtool -K eth0 gro off >/dev/null; done
	nl_fw "$CTL" set fastpath off >&2
}

forward_report()
{
	local mode load base ours
	echo
	echo "forwarding through the firewall namespace with NAT, packets/s (median of $ROUNDS rounds of" \
		"${SECONDS_PER_RUN} s, modes interleaved), $(uname -r), $(nproc) CPUs"
	printf '%-36s %12s %12s %s\n' mode "udp pkt/s" "tcp pkt/s" "translated (udp)"
	for mode in nft-masq pfsync-nat pfsync-nat+fp; do
		[ -n "${PPS[$mode.udp]:-}" ] || continue
		printf '%-36s %12s %12s %s/%s\n' "$(mode_label $mode)" \
			"$(med <<<"${PPS[$mode.udp]:-}")" "$(med <<<"${PPS[$mode.tcp]:-}")" \
			"${TRANSLATED[$mode]:-0}" "${SENT_OUT[$mode]:-0}"
	done
	for mode in pfsync-nat pfsync-nat+fp; do
		[ -n "${PPS[$mode.udp]:-}" ] || continue
		printf '%-36s' "ratio $mode/nftables"
		for load in udp tcp; do
			base=$(med <<<"${PPS[nft-masq.$load]:-}") ours=$(med <<<"${PPS[$mode.$load]:-}")
			awk -v a="$ours" -v b="$base" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf " %11.2fx", a / b; else printf " %12s", "n/a" }'
		done
		echo
	done
	echo "target: ratio >= 1.00. translated: datagrams the server saw from $NL_FW_OUT4 / datagrams the"
	echo "firewall sent out of $NL_FW_OUT (the server has no route back, so TCP works only translated)."
	[ -z "${PPS[pfsync-nat+fp.udp]:-}" ] ||
		echo "fast path: ${FP_FORWARDED:-0} packets forwarded in XDP in its rows (pfsyncctl stats)."
}

run_forward()
(
	echo "== 2. forwarding: pfsync-xdp nat-to vs nftables masquerade"
	forward_setup
	for ((round = 0; round < ROUNDS; round++)); do
		nft_masq_up || nl_die "nftables masquerade rules refused"
		run_mode nft-masq
		nft_masq_down
		pfsync_nat_up || nl_die "cannot attach $OBJ or load its NAT rules"
		run_mode pfsync-nat
		fastpath_nat pfsync-nat+fp
		pfsync_nat_down
	done
	forward_report
	rc=0
	for mode in nft-masq pfsync-nat pfsync-nat+fp; do
		[ "$mode" = pfsync-nat+fp ] && [ -z "${PPS[$mode.udp]:-}" ] && continue
		if [ "${SENT_OUT[$mode]:-0}" -eq 0 ] ||
			[ "${TRANSLATED[$mode]:-0}" -lt $((${SENT_OUT[$mode]} * 99 / 100)) ]; then
			echo "$mode: datagrams left the firewall untranslated (or none at all)"
			rc=1
		fi
		[ -n "${PPS[$mode.tcp]:-}" ] || rc=1
	done
	if [ -n "${PPS[pfsync-nat+fp.udp]:-}" ] && [ "${FP_FORWARDED:-0}" -eq 0 ]; then
		echo "pfsync-nat+fp: the fast path forwarded nothing"
		rc=1
	fi
	exit $rc
)

# ---- main -------------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || { echo "[nat] must run as root (namespaces, BPF)" >&2; exit 1; }
for f in "$BENCH_BIN" "$OBJ" "$CTL"; do
	[ -e "$f" ] || { echo "[nat] $f missing: make bench" >&2; exit 1; }
done
echo "bench/nat: load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)" \
	"(other work on this machine skews every figure)"
part prog && run_prog
if part forward; then
	echo
	run_forward || FAILED=1
fi
if part failover; then
	echo
	echo "== 3. failover of $STREAMS NATed streams (bench/failover.sh --nat)"
	PFSYNC_BUILD=$BUILD bench/failover.sh --nat --streams "$STREAMS" || FAILED=1
fi
exit $FAILED
