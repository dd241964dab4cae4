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
# connections work. Modes:
#   nft-masq    nftables: ct state established,related accept, new only from
#               in0, `masquerade` on out0 in a nat postrouting chain;
#               conntrack accounting on (pf's states count packets too); the
#               conntrack table flushed after each round, as pfsync-xdp's
#   pfsync-nat  build/pfsync_xdp.o on both interfaces (XDP + tc egress),
#               `pass out on out0 from 10.201.1.0/24 nat-to 10.201.2.1`.
#               Any XDP program makes veth copy each TCP segment from a
#               socket (see bench/datapath/forward.sh): this TCP row is
#               bound by that copy (the floor, XDP doing only a fib lookup
#               and a redirect, is ~0.65x of plain forwarding), not by NAT
#   pfsync-nat+fp  the same with the fast path on (pfsyncctl set fastpath):
#               translated in XDP and redirected; the hosts' veths get GRO
#               on for it (veth takes redirected frames only with NAPI), as
#               in bench/datapath/forward.sh. pfsync-xdp's best set-up, the
#               one the >= 1.0x target is about (nftables has no flowtable
#               on this kernel to set against it)
# Loads (bench/datapath/loads.sh, shared with bench/datapath/forward.sh),
# each bounded to --seconds: 64-byte UDP frames of one flow from a packet
# generator, dropped at the server's netdev ingress; before each UDP run
# the flow is primed with one batch and the server answers it once, to the
# address and port it arrived from (the translated ones, which its ingress
# hook records), so that the state has seen both directions in every mode
# (conntrack's established, pf's MULTIPLE: the fast path takes it). TCP:
# bulk streams pinned per CPU (data and ACKs counted).
# Measured: packets the firewall sent out of both interfaces per second.
# Noise: the machine is shared, so the modes alternate within one run, in
# reversed order every other round (ABC CBA ...), and the report gives the
# ratio of the medians and the spread of the per-round ratios.
# Offloads are off on every veth (one TCP segment is one packet) and the
# hosts send full checksums (tx off: XDP cannot tell veth's partial ones and
# NAT rewrites them incrementally) in both modes. The server counts the
# datagrams that arrive from the public address: a mode that forwards
# untranslated is reported as such and fails the bench, as does a fast-path
# row whose UDP load the fast path did not forward.
#
# Options: --seconds S (NAT_SECONDS, default 3), --rounds N (NAT_ROUNDS,
# default 5), --streams N for the failover (NAT_STREAMS, default 200).
# NAT_ONLY=prog|forward|failover runs one part. Nothing here asserts a time.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. scripts/netns-lib.sh
nl_build
BENCH_BIN=$BUILD/bench/datapath
SECONDS_PER_RUN=${NAT_SECONDS:-3}
ROUNDS=${NAT_ROUNDS:-5}
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
TCP_PORT=5202 # TCP_PORT .. TCP_PORT + TCP_STREAMS - 1
BENCH=$BENCH_BIN
# shellcheck source=bench/datapath/loads.sh
. bench/datapath/loads.sh
FAILED=0

part() { [ -z "${NAT_ONLY:-}" ] || [ "$NAT_ONLY" = "$1" ]; }

# ---- 1. BPF_PROG_RUN ------------------------------------------------------------
run_prog()
{
	echo "== 1. BPF_PROG_RUN"
	"$BENCH_BIN" --nat-only --build "$BUILD" --rounds "$ROUNDS" || FAILED=1
}

# ---- 2. forwarding ------------------------------------------------------------------
MODES=(nft-masq pfsync-nat pfsync-nat+fp)
# PPS[mode.load]: packets/s per round, in round order; FP_FWD/FP_TX[load]:
# what the fast path forwarded of the packets the firewall sent in its rows
declare -A PPS=() TRANSLATED=() SENT_OUT=() FP_FWD=() FP_TX=() TCP_FAILED=()

# tx_packets NS IF: packets sent out of IF in NS
tx_packets() { ip -n "$1" -j -s link show dev "$2" | jq '.[0].stats64.tx.packets'; }

# public_datagrams: UDP datagrams the server's ingress saw from the public address
public_datagrams()
{
	nl_in "$NL_SERVER" nft -j list counter netdev natbench_sink public |
		jq '.nftables[] | select(.counter) | .counter.packets'
}

# public_ports: the source ports of the UDP flows the server's ingress saw
# from the public address (the translated ones)
public_ports()
{
	nl_in "$NL_SERVER" nft -j list set netdev natbench_sink public_ports |
		jq -r '.nftables[] | select(.set) | .set.elem[]? | if type == "object" then .elem.val else . end'
}

# shellcheck disable=SC2317 # run by nl_wait_until
have_public_port() { [ -n "$(public_ports)" ]; }

# udp_prime_answered MODE: the UDP flow made (one batch) and answered once,
# from the server to where it came from (its translated address and port)
udp_prime_answered()
{
	local port
	nl_in "$NL_SERVER" nft flush set netdev natbench_sink public_ports
	udp_prime || nl_log "$1/udp: generator failed: $(tail -1 "$NL_TMP/gen.out")"
	nl_wait_until 5 have_public_port || {
		nl_log "$1/udp: no datagram from $NL_FW_OUT4 reached the server: nothing to answer"
		return 0
	}
	for port in $(public_ports); do
		udp_answer "$NL_FW_OUT4" "$port"
	done
}

# tcp_failed MODE: a TCP sender of MODE's run failed (its connection
# refused or never answered): counted (the bench fails), and what the
# firewall knew of it logged
tcp_failed()
{
	local i
	TCP_FAILED[$1]=$((${TCP_FAILED[$1]:-0} + 1))
	for ((i = 0; i < TCP_STREAMS; i++)); do
		grep -v -e '^sent ' -e '^connected$' "$NL_TMP/gen$i.out" >&2
	done
	nl_log "$1/tcp: a TCP sender failed; the client's and the server's TCP sockets:"
	nl_in "$NL_CLIENT" ss -Htan "( dport >= :$TCP_PORT )" >&2
	nl_in "$NL_SERVER" ss -Htan "( sport >= :$TCP_PORT )" >&2
	[ "$1" = nft-masq ] && return 0
	nl_log "$1/tcp: the firewall's TCP states and non-zero counters:"
	nl_fw "$CTL" states 2>&1 | grep -i tcp >&2
	nl_fw "$CTL" stats 2>&1 | grep -v '^[[:space:]]*0 ' >&2
}

# run_load MODE udp|tcp: one bounded load, its packets per second in PPS
run_load()
{
	local mode=$1 load=$2 before after t0 t1 pub0 out0 fp0=
	if [ "$load" = udp ]; then
		udp_prime_answered "$mode"
	else
		tcp_connect
	fi
	pub0=$(public_datagrams)
	out0=$(tx_packets "$NL_FW" "$NL_FW_OUT")
	[[ $mode != *+fp ]] || fp0=$(nl_fp_forwarded "$NL_FW_PIN" nl_fw) || fp0=
	before=$(fw_tx_packets)
	t0=${EPOCHREALTIME/./}
	if [ "$load" = udp ]; then
		udp_gen "$SECONDS_PER_RUN" || nl_log "$mode/udp: generator failed: $(tail -1 "$NL_TMP/gen.out")"
	else
		tcp_streams || tcp_failed "$mode"
	fi
	t1=${EPOCHREALTIME/./}
	after=$(fw_tx_packets)
	PPS[$mode.$load]+="$(((after - before) * 1000000 / (t1 - t0))) "
	if [ -n "$fp0" ]; then
		FP_FWD[$load]=$((${FP_FWD[$load]:-0} + $(nl_fp_forwarded "$NL_FW_PIN" nl_fw) - fp0))
		FP_TX[$load]=$((${FP_TX[$load]:-0} + after - before))
	fi
	# the baseline's flow must have seen its answer too (conntrack: ASSURED)
	if [ "$mode.$load" = nft-masq.udp ]; then
		nl_fw conntrack -L -p udp --dport "$UDP_PORT" 2>/dev/null | grep ASSURED >/dev/null &&
			MASQ_ASSURED=$((${MASQ_ASSURED:-0} + 1))
	fi
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

# nft_masq_down: the rules and the round's connections gone (pfsync-xdp's
# states are flushed after each round too)
nft_masq_down()
{
	nl_fw nft delete table inet natbench
	nl_fw conntrack -F >/dev/null 2>&1 || nl_log "conntrack -F failed: connections kept between rounds"
}

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
	# the UDP load ends here; the ports it came from are recorded (answers)
	nl_in "$NL_SERVER" nft -f - <<-NFT || nl_die "server sink rules"
		table netdev natbench_sink {
			counter public { }
			set public_ports { type inet_service; flags dynamic; size 64; }
			chain ingress {
				type filter hook ingress device eth0 priority 0;
				ip saddr $NL_FW_OUT4 udp dport $UDP_PORT add @public_ports { udp sport } counter name public drop
				udp dport $UDP_PORT drop
			}
		}
	NFT
	nl_fw_bpffs
	loads_init
	nl_log "UDP load from $UDP_GEN, TCP load: $TCP_STREAMS streams"
}

med() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "n/a" }'; }

# ratio_spread OURS BASE: "RATIO (MIN-MAX)", the ratio of the medians of the
# two per-round lists and the lowest and highest of the per-round ratios
ratio_spread()
{
	awk -v a="$1" -v b="$2" '
		function median(v, n,   i, j, t) {
			for (i = 2; i <= n; i++)
				for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
			return v[int((n + 1) / 2)]
		}
		BEGIN {
			n = split(a, x, " "); m = split(b, y, " ")
			if (!n || n != m) { print "n/a"; exit }
			lo = -1; hi = 0
			for (i = 1; i <= n; i++) {
				if (y[i] <= 0) { print "n/a"; exit }
				r = x[i] / y[i]
				if (lo < 0 || r < lo) lo = r
				if (r > hi) hi = r
			}
			printf "%.2fx (%.2f-%.2f)", median(x, n) / median(y, n), lo, hi
		}'
}

mode_label()
{
	case $1 in
	nft-masq) echo "nftables masquerade+ct (baseline)" ;;
	pfsync-nat) echo "pfsync-xdp nat-to, no fast path" ;;
	*) echo "pfsync-xdp nat-to, fast path (best)" ;;
	esac
}

# fastpath_nat MODE: pfsync-nat's set-up with the fast path on, MODE's loads
fastpath_nat()
{
	local ns
	nl_fw "$CTL" set fastpath on "$NL_FW_IN" "$NL_FW_OUT" >&2 || {
		nl_log "cannot turn the fast path on: $1 rows skipped"
		return 0
	}
	for ns in "$NL_CLIENT" "$NL_SERVER"; do nl_in "$ns" ethtool -K eth0 gro on >/dev/null; done
	run_mode "$1"
	for ns in "$NL_CLIENT" "$NL_SERVER"; do nl_in "$ns" ethtool -K eth0 gro off >/dev/null; done
	nl_fw "$CTL" set fastpath off >&2
}

forward_report()
{
	local mode load
	echo
	echo "forwarding through the firewall namespace with NAT, packets/s (median of $ROUNDS rounds of" \
		"${SECONDS_PER_RUN} s, modes alternating), $(uname -r), $(nproc) CPUs"
	echo "UDP: 64-byte frames of one flow ($UDP_GEN), answered once; TCP: $TCP_STREAMS bulk streams"
	printf '%-36s %12s %12s %s\n' mode "udp pkt/s" "tcp pkt/s" "translated (udp)"
	for mode in "${MODES[@]}"; do
		[ -n "${PPS[$mode.udp]:-}" ] || continue
		printf '%-36s %12s %12s %s/%s\n' "$(mode_label "$mode")" \
			"$(med <<<"${PPS[$mode.udp]:-}")" "$(med <<<"${PPS[$mode.tcp]:-}")" \
			"${TRANSLATED[$mode]:-0}" "${SENT_OUT[$mode]:-0}"
	done
	echo "ratio against nftables: of the medians (lowest-highest of the per-round ratios)"
	for mode in pfsync-nat pfsync-nat+fp; do
		[ -n "${PPS[$mode.udp]:-}" ] || continue
		printf '%-36s' "  $mode/nftables"
		for load in udp tcp; do
			printf ' %s: %-24s' "$load" "$(ratio_spread "${PPS[$mode.$load]:-}" "${PPS[nft-masq.$load]:-}")"
		done
		echo
	done
	echo "target: the best set-up (fast path) >= 1.00x. translated: datagrams the server saw from"
	echo "$NL_FW_OUT4 / datagrams the firewall sent out of $NL_FW_OUT (the server has no route back, so"
	echo "TCP works only translated)."
	echo "nftables: the UDP flow was ASSURED (answered) in ${MASQ_ASSURED:-0} of $ROUNDS rounds."
	for load in udp tcp; do
		[ -n "${FP_TX[$load]:-}" ] || continue
		echo "fast path, $load: ${FP_FWD[$load]:-0} of the ${FP_TX[$load]} packets the firewall sent in its rows" \
			"were forwarded in XDP (pfsyncctl stats)."
	done
}

# forward_round ROUND: every mode once, in reversed order in odd rounds
forward_round()
{
	local step steps=(nft pfsync)
	[ $(($1 % 2)) = 1 ] && steps=(pfsync nft)
	for step in "${steps[@]}"; do
		if [ "$step" = nft ]; then
			nft_masq_up || nl_die "nftables masquerade rules refused"
			run_mode nft-masq
			nft_masq_down
			continue
		fi
		pfsync_nat_up || nl_die "cannot attach $OBJ or load its NAT rules"
		if [ $(($1 % 2)) = 0 ]; then
			run_mode pfsync-nat
			fastpath_nat pfsync-nat+fp
		else
			fastpath_nat pfsync-nat+fp
			run_mode pfsync-nat
		fi
		pfsync_nat_down
	done
}

run_forward()
(
	echo "== 2. forwarding: pfsync-xdp nat-to vs nftables masquerade"
	forward_setup
	for ((round = 0; round < ROUNDS; round++)); do
		forward_round "$round"
	done
	forward_report
	rc=0
	for mode in "${MODES[@]}"; do
		[ "$mode" = pfsync-nat+fp ] && [ -z "${PPS[$mode.udp]:-}" ] && continue
		if [ "${SENT_OUT[$mode]:-0}" -eq 0 ] ||
			[ "${TRANSLATED[$mode]:-0}" -lt $((${SENT_OUT[$mode]} * 99 / 100)) ]; then
			echo "$mode: datagrams left the firewall untranslated (or none at all)"
			rc=1
		fi
		[ -n "${PPS[$mode.tcp]:-}" ] || rc=1
		if [ -n "${TCP_FAILED[$mode]:-}" ]; then
			echo "$mode: a TCP sender failed in ${TCP_FAILED[$mode]} of $ROUNDS rounds"
			rc=1
		fi
	done
	# the fast-path UDP row means something only if the fast path carried it
	if [ -n "${FP_TX[udp]:-}" ] && [ "${FP_FWD[udp]:-0}" -lt $((FP_TX[udp] / 2)) ]; then
		echo "pfsync-nat+fp: the fast path forwarded ${FP_FWD[udp]:-0} of ${FP_TX[udp]} UDP packets"
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
