#!/usr/bin/env bash
# bench/failover: what a client sees when the master firewall of a redundant
# pair dies, pfsync-xdp against the kernel's conntrack + conntrackd on the same
# topology in the same run; and what --defer adds to a connection's set-up.
#
#   cli 10.201.1.10 ─┐ br-lan (ns sw) ┌─ lan0 [fwA] wan0 ─┐ br-wan ┌─ srv 10.201.2.10
#   (gw VIP .1.1)    └────────────────┴─ lan0 [fwB] wan0 ─┴────────┘ (gw VIP .2.1)
#                       fwA sync0 10.201.3.1/30 <── veth ──> fwB sync0 10.201.3.2/30
#
# Failover, one fresh copy of the topology per set-up, keepalived VRRPv3
# (unicast, advert 0.1 s, one sync group for both gateway addresses) in both:
#  pfsync-xdp   pfsync-agent on each firewall (XDP + tc on lan0/wan0, sync on
#               sync0, private bpffs), block-by-default rules as in
#               scripts/demo.sh; takeover gated on the pfsync bulk being done.
#  conntrackd   nftables stateful rules (ct state established,related accept;
#               new only from the LAN; tcp_loose 0, so the backup drops
#               mid-stream packets it has no state for), conntrackd FTFW over
#               UDP on sync0 (bench/conf/conntrackd.conf.in) and the usual
#               primary-backup notify script (-c -f -R -B / -t -n / -t).
# N long-lived TCP streams (scripts/stream.py, data both ways) go through fwA;
# once fwB holds N states, all of fwA's links go down. Measured from the
# stream client's status lines (every 20 ms): streams that survive, and each
# stream's longest stall after the failure (p50/p99/max over the streams).
#
# Defer: more copies with static gateways on fwA (no VRRP), agents without
# --defer and with --defer forced to each release path the kernel allows
# (pfsync-agent --probe-defer-release; a refused path is named with its
# reason); sequential connects cli -> srv alternate between them in batches
# (so load drift on the shared machine hits all alike), connect() time = SYN
# -> established at the client, p50/p99 against the 20 ms defer timeout.
#
# Nothing here asserts a time. Exit status 1: a set-up failed, pfsync-xdp
# lost connections (the table says so), or a defer path released nothing or
# failed a release (then it measured the clients' SYN retransmissions).
#
# NAT (--nat or FAILOVER_NAT=1, issue 15; bench/nat.sh runs it): instead of
# the above, the pfsync-xdp failover twice in one run, plain and with
# `pass out on wan0 from 10.201.1.0/24 nat-to 10.201.2.1` (the VRRP address;
# the server loses its route to the LAN, so only translated packets are
# answered); the client and server send full checksums in both (ethtool -K
# eth0 tx off, which NAT on veth needs). A stall is mostly which TCP
# retransmission first meets the new master, so one failover is a coin
# toss; to compare like with like, trials (--trials N, FAILOVER_NAT_TRIALS,
# default 5) alternate plain and NATed copies (and which goes first), and
# each failure is timed 55 ms after fwA sent its VRRP advertisements
# (bench/vrrp_cut.py), so that fwB takes over about the same time after it
# in every trial. Reported: streams that survived (all trials), the stalls'
# p50/p99/max over the streams of all trials, against the plain runs', and
# how many of the server's sockets kept their peer address:port (the public
# port) across the failover.
#
# Options (or environment): --streams N (FAILOVER_STREAMS, default 200),
# --connects N (FAILOVER_CONNECTS, default 200), FAILOVER_ONLY=pf|ctd|defer
# (one part, debugging), FAILOVER_KEEP=1 keep the temporary files.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=scripts/netns-lib.sh
. scripts/netns-lib.sh # nl_in, nl_wait_quiet
NL_POLL_S=0.02          # polls that end a timed wait: finer than the tests'
ROOT=$PWD
BUILD=${PFSYNC_BUILD:-$ROOT/build}
AGENT=$BUILD/pfsync-agent
CTL=$BUILD/pfsyncctl
OBJ=$BUILD/pfsync_xdp.o
STREAM=$ROOT/scripts/stream.py
CTDPOLL=$ROOT/bench/sync_ctdpoll.py

STREAMS=${FAILOVER_STREAMS:-200}
CONNECTS=${FAILOVER_CONNECTS:-200}
NAT_MODE=${FAILOVER_NAT:-0}
NAT_TRIALS=${FAILOVER_NAT_TRIALS:-5}
while [ $# -gt 0 ]; do
	case $1 in
	--streams) STREAMS=$2 && shift ;;
	--connects) CONNECTS=$2 && shift ;;
	--nat) NAT_MODE=1 ;;
	--trials) NAT_TRIALS=$2 && shift ;;
	*) echo "[failover] ignoring argument $1" >&2 ;;
	esac
	shift
done
STATUS_INTERVAL=0.02 # seconds between the stream client's status lines
RECOVER_S=20         # how long the streams get to move again after the failure
DEFER_TIMEOUT_MS=20  # pfsync-agent's default --defer-timeout
DEFER_PATHS=()       # release paths the kernel allows (run_defer)
PORT=7000

ID=fo$$
TAGS=()    # topology copies made (for the teardown)
ERRORS=()  # set-up failures: reported, then exit 1
LOSSES=''  # pfsync-xdp lost connections: exit 1
declare -A R

log() { echo "[failover] $*" >&2; }
fail()
{
	log "FAILED: $*"
	ERRORS+=("$*")
	return 1
}

# ---- processes and clean-up ---------------------------------------------------
# kill_pids PID...: SIGTERM to all, up to 5 s for them to go, then SIGKILL
kill_pids()
{
	local pid i alive
	[ $# -gt 0 ] || return 0
	kill "$@" 2>/dev/null
	for ((i = 0; i < 250; i++)); do
		alive=0
		for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && return 0
		sleep 0.02
	done
	kill -KILL "$@" 2>/dev/null
}

namespaces_of() { echo "$ID$1-cli $ID$1-srv $ID$1-sw $ID$1-fwa $ID$1-fwb"; }

# teardown TAG: ends every process in TAG's namespaces (all started here),
# deletes the namespaces, unmounts its bpffs pin dirs. Idempotent.
teardown()
{
	local ns pids=() d
	for ns in $(namespaces_of "$1"); do
		[ -e "/run/netns/$ns" ] || continue
		# shellcheck disable=SC2207
		pids+=($(ip netns pids "$ns" 2>/dev/null))
	done
	kill_pids "${pids[@]}"
	for ns in $(namespaces_of "$1"); do
		[ -e "/run/netns/$ns" ] && ip netns del "$ns"
	done
	for d in "$TMP/$1"-bpf-*; do
		[ -d "$d" ] && mountpoint -q "$d" && umount "$d"
	done
	return 0
}

cleanup()
{
	local rc=$? t
	trap - EXIT INT TERM
	for t in "${TAGS[@]}"; do teardown "$t" 2>/dev/null; done
	if [ "${FAILOVER_KEEP:-0}" = 1 ]; then log "files kept in $TMP"; else rm -rf "$TMP"; fi
	return "$rc"
}

now_ms() { date +%s%3N; }

preflight()
{
	local t
	[ "$(id -u)" -eq 0 ] || { log "must run as root (namespaces, BPF)"; exit 1; }
	for t in nsenter ip nft python3 keepalived conntrackd mountpoint; do
		command -v "$t" >/dev/null || { log "$t not found (scripts/deps.sh installs it)"; exit 1; }
	done
	for t in "$AGENT" "$CTL" "$OBJ"; do
		[ -e "$t" ] || { log "$t missing: run make"; exit 1; }
	done
	TMP=$(mktemp -d "/tmp/pfsync-$ID.XXXXXX") || exit 1
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# ---- topology -----------------------------------------------------------------
# topology TAG: a fresh copy; sets CLI SRV SW FWA FWB to its namespaces
topology()
{
	local t=$1 ns fw n=2
	TAGS+=("$t")
	read -r CLI SRV SW FWA FWB <<<"$(namespaces_of "$t")"
	for ns in $CLI $SRV $SW $FWA $FWB; do
		ip netns add "$ns" || fail "cannot create namespace $ns" || return 1
		ip -n "$ns" link set lo up
	done
	ip -n "$SW" link add br-lan type bridge &&
		ip -n "$SW" link add br-wan type bridge &&
		ip link add eth0 netns "$CLI" type veth peer name lcli netns "$SW" &&
		ip link add lan0 netns "$FWA" type veth peer name lfwa netns "$SW" &&
		ip link add lan0 netns "$FWB" type veth peer name lfwb netns "$SW" &&
		ip link add wan0 netns "$FWA" type veth peer name wfwa netns "$SW" &&
		ip link add wan0 netns "$FWB" type veth peer name wfwb netns "$SW" &&
		ip link add eth0 netns "$SRV" type veth peer name wsrv netns "$SW" &&
		ip link add sync0 netns "$FWA" type veth peer name sync0 netns "$FWB" ||
		fail "cannot create the links of $t" || return 1
	for ns in lcli lfwa lfwb; do ip -n "$SW" link set "$ns" master br-lan up; done
	for ns in wfwa wfwb wsrv; do ip -n "$SW" link set "$ns" master br-wan up; done
	ip -n "$SW" link set br-lan up
	ip -n "$SW" link set br-wan up
	ip -n "$CLI" addr add 10.201.1.10/24 dev eth0
	ip -n "$CLI" link set eth0 up
	ip -n "$CLI" route add default via 10.201.1.1
	ip -n "$SRV" addr add 10.201.2.10/24 dev eth0
	ip -n "$SRV" link set eth0 up
	ip -n "$SRV" route add default via 10.201.2.1
	for fw in $FWA $FWB; do
		ip -n "$fw" addr add 10.201.1.$n/24 dev lan0
		ip -n "$fw" addr add 10.201.2.$n/24 dev wan0
		ip -n "$fw" addr add 10.201.3.$((n - 1))/30 dev sync0
		ip -n "$fw" link set lan0 up
		ip -n "$fw" link set wan0 up
		ip -n "$fw" link set sync0 up
		nl_in "$fw" sysctl -qw net.ipv4.ip_forward=1 || fail "ip_forward in $fw" || return 1
		n=$((n + 1))
	done
	nl_wait_quiet 5 nl_in "$FWA" ping -c1 -W1 10.201.3.2 || fail "$t: sync link is down"
}

has_gateway() { ip -n "$1" -4 -o addr show dev lan0 | grep " 10.201.1.1/" >/dev/null; }
no_gateway() { ! has_gateway "$1"; }

start_server()
{
	nl_in "$SRV" python3 "$STREAM" server 10.201.2.10 $PORT >"$TMP/$1-server.log" 2>&1 &
	nl_wait_quiet 10 nl_in "$SRV" sh -c "ss -ltn | grep -q ':$PORT '" ||
		fail "$1: the stream server did not start"
}

# ---- pfsync-xdp -----------------------------------------------------------------
# pf_start TAG a|b HOSTID [AGENT ARGS...]
pf_start()
{
	local t=$1 name=$2 hostid=$3 dir=$TMP/$1-bpf-$2 ns=$FWA
	shift 3
	[ "$name" = b ] && ns=$FWB
	mkdir -p "$dir" && mount -t bpf bpf "$dir" || fail "cannot mount a bpffs on $dir" || return 1
	nl_in "$ns" "$AGENT" --syncdev sync0 --attach lan0 --attach wan0 --obj "$OBJ" \
		--pin-dir "$dir" --ctl "$TMP/$t-$name.sock" --hostid "$hostid" -q "$@" \
		2>"$TMP/$t-agent-$name.log" &
	nl_wait_quiet 10 test -S "$TMP/$t-$name.sock" || fail "$t: pfsync-agent on fw$name did not start" ||
		return 1
	local rules=$TMP/rules.conf
	[ -f "$TMP/$t-rules.conf" ] && rules=$TMP/$t-rules.conf
	nl_in "$ns" "$CTL" --pin-dir "$dir" rules load "$rules" >/dev/null ||
		fail "$t: cannot load the rules on fw$name"
}

pf_rules()
{
	cat >"$TMP/rules.conf" <<-'EOF'
		# block by default; connections may only be opened from the LAN
		block all
		pass in on lan0 from 10.201.1.0/24 to any
		pass out on wan0
	EOF
}

# pfnat's rules: states are floating, so the one state of a connection is
# made where it is translated (wan0 out) and lan0 lets the LAN in without one
pfnat_rules() # TAG
{
	cat >"$TMP/$1-rules.conf" <<-'EOF'
		block all
		pass in on lan0 from 10.201.1.0/24 to any no state
		pass out on wan0 from 10.201.1.0/24 nat-to 10.201.2.1
	EOF
}

# full_checksums: the client and the server send complete checksums (XDP
# cannot tell veth's partial ones; NAT rewrites them incrementally)
full_checksums()
{
	local ns
	for ns in "$CLI" "$SRV"; do
		nl_in "$ns" ethtool -K eth0 tx off >/dev/null || fail "ethtool -K eth0 tx off in $ns" || return 1
	done
}

# server_peers FILE: the peer address:port of each established stream, as
# the server's kernel has them, sorted
server_peers()
{
	nl_in "$SRV" ss -Htn state established "( sport = :$PORT )" | awk '{ print $NF }' | sort >"$1"
}

# client_rto_median: the median retransmission timeout (ms) of the
# client's streams, which decides when a retransmission meets the new master
client_rto_median()
{
	nl_in "$CLI" ss -Htin state established "( dport = :$PORT )" |
		sed -n 's/.* rto:\([0-9.]*\) .*/\1/p' | sort -n |
		awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "n/a" }'
}

pf_bulk_done() { "$CTL" --ctl "$TMP/$1-$2.sock" status | grep "bulk: done" >/dev/null; }

pf_tcp_states() # TAG a|b: TCP states in that firewall's table
{
	local ns=$FWA
	[ "$2" = b ] && ns=$FWB
	nl_in "$ns" "$CTL" --pin-dir "$TMP/$1-bpf-$2" states --json | python3 -c \
		'import json,sys; print(sum(1 for s in json.load(sys.stdin) if s["proto"] == 6))'
}

pf_b_synced() { [ "$(pf_tcp_states "$1" b)" -ge "$STREAMS" ]; }

# ---- keepalived -------------------------------------------------------------------
# ka_conf TAG a|b CHECK [GROUP_LINES]: the anchor's VRRP settings
# (scripts/keepalived-pair.sh); fwA is MASTER with priority 150, fwB BACKUP
# with 100
ka_conf()
{
	local me=2 peer=3 prio=150 state=MASTER
	[ "$2" = b ] && me=3 peer=2 prio=100 state=BACKUP
	"$ROOT/scripts/keepalived-pair.sh" "fw$2-$ID$1" "$state" "$prio" 10.201 "$me" "$peer" 51 \
		"$3" "${4:-}" >"$TMP/$1-keepalived-$2.conf"
}

ka_start() # TAG a|b
{
	local ns=$FWA
	[ "$2" = b ] && ns=$FWB
	nl_in "$ns" keepalived -n -l -D -f "$TMP/$1-keepalived-$2.conf" -p "$TMP/$1-ka-$2.pid" \
		-r "$TMP/$1-vrrp-$2.pid" >"$TMP/$1-keepalived-$2.log" 2>&1 &
}

ka_wait_master_a()
{
	nl_wait_quiet 20 has_gateway "$FWA" || fail "$1: fwA never became VRRP master" || return 1
	# both start as master until they hear each other
	nl_wait_quiet 15 no_gateway "$FWB" || fail "$1: fwB did not step down to backup"
}

# ---- conntrackd -------------------------------------------------------------------
ctd_conf() # TAG a|b LOCAL PEER
{
	sed -e "s|@LOCAL@|$3|; s|@PEER@|$4|; s|@DIR@|$TMP|g; s|@TAG@|$1-$2|g" \
		-e "s|@HASHLIMIT@|131072|" \
		"$ROOT/bench/conf/conntrackd.conf.in" >"$TMP/$1-ctd-$2.conf"
}

# the conntrack-tools primary-backup sequence, with timestamps (ms) for the report
ctd_notify_script() # TAG a|b
{
	local conf=$TMP/$1-ctd-$2.conf f=$TMP/$1-notify-$2.sh
	cat >"$f" <<-EOF
		#!/bin/sh
		# keepalived calls this with primary, backup or fault
		ctd() { /usr/sbin/conntrackd -C "$conf" "\$@"; }
		log() { echo "\$(date +%s%3N) \$*" >>"$TMP/$1-notify-$2.log"; }
		log "\$1 begin"
		case "\$1" in
		primary)
		    ctd -c  # commit the external cache (the peer's states) into the kernel
		    log "commit done"
		    ctd -f  # flush both caches
		    ctd -R  # re-read the kernel table into the internal cache
		    ctd -B  # send a bulk update to the new backup
		    ;;
		backup)
		    ctd -s >/dev/null || log "conntrackd is not running"
		    ctd -t  # purge this node's own states after PurgeTimeout
		    ctd -n  # ask the new primary for a resync
		    ;;
		fault)
		    ctd -t
		    ;;
		esac
		log "\$1 done"
	EOF
	chmod 700 "$f"
}

ctd_nft() # NS: the anchor's stateful forward chain
{
	nl_in "$1" nft -f "$ROOT/bench/conf/anchor-forward.nft" || return 1
	nl_in "$1" sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0 net.netfilter.nf_conntrack_events=1
}

ctd_start() # TAG a|b LOCAL PEER
{
	local ns=$FWA
	[ "$2" = b ] && ns=$FWB
	ctd_conf "$@"
	nl_in "$ns" conntrackd -C "$TMP/$1-ctd-$2.conf" >"$TMP/$1-ctd-$2.out" 2>&1 &
	nl_wait_quiet 10 python3 "$CTDPOLL" count "$TMP/conntrackd-$1-$2.ctl" ||
		fail "$1: conntrackd on fw$2 did not start"
}

# established TCP entries in fwB's external cache
ctd_b_established() { nl_in "$FWB" conntrackd -C "$TMP/$1-ctd-b.conf" -e | grep -c 'tcp.*ESTABLISHED'; }
ctd_b_synced() { [ "$(ctd_b_established "$1")" -ge "$STREAMS" ]; }

notify_logged() { grep -q "$2" "$1" 2>/dev/null; }

# ---- the failover measurement -------------------------------------------------------
lines() { wc -l <"$1"; }
all_moving() { python3 "$STREAM" progressed "$1" "$2" "$STREAMS"; }
# has_lines FILE N: FILE has at least N lines
has_lines() { [ "$(lines "$1")" -ge "$2" ]; }

# cut_after_advert TAG: all of fwA's links down once fwA has sent a VRRP
# advertisement on both gateway links (at most 55 ms apart: the two
# instances' timers run in any phase), 55 ms after the older one, so that
# fwB's takeover comes about the same time after the failure in every
# trial (its master-down timer runs from the last advertisement; taking the
# links down at a random moment adds up to one advertisement interval,
# 0.1 s, to the takeover, which decides whether the streams' first
# retransmissions meet the new master).
# R[TAG.cut_ms]: when the links went down (ms since the epoch);
# R[TAG.advert_age_ms]: how long before that the older of the two
# advertisements was sent
cut_after_advert()
{
	local k v
	while IFS='=' read -r k v; do
		R[$1.$k]=$v
	done < <(nl_in "$FWA" python3 "$ROOT/bench/vrrp_cut.py" lan0 wan0 sync0)
	[ -n "${R[$1.cut_ms]:-}" ]
}

# failover TAG SYNCED_CHECK: streams through fwA, fwA's links down, streams on
failover()
{
	local t=$1 synced=$2 st=$TMP/$1-client.status client marker t0 t1 rc=0 per_s
	start_server "$t" || return 1
	nl_in "$CLI" python3 "$STREAM" client 10.201.2.10 $PORT "$STREAMS" 120 "$st" "$STATUS_INTERVAL" \
		>"$TMP/$t-client.log" 2>&1 &
	client=$!
	nl_wait_quiet 30 grep -q "^open $STREAMS" "$st" ||
		fail "$t: the client could not open $STREAMS connections: $(tail -1 "$TMP/$t-client.log")" ||
		return 1
	t0=$(now_ms)
	nl_wait_quiet 20 "$synced" "$t" || fail "$t: fwB did not learn the $STREAMS states" || return 1
	R[$t.synced_ms]=$(($(now_ms) - t0))
	# every stream moves (through fwA) before the failure
	marker=$(lines "$st")
	nl_wait_quiet 10 all_moving "$st" "$marker" || fail "$t: not every stream moves before the failure" ||
		return 1
	log "$t: $STREAMS streams through fwA, fwB synced; taking all of fwA's links down"
	if [ "$NAT_MODE" = 1 ]; then
		server_peers "$TMP/$t-peers-before.txt"
		R[$t.rto_ms]=$(client_rto_median)
	fi
	marker=$(lines "$st")
	if [ "$NAT_MODE" = 1 ]; then
		cut_after_advert "$t" || { fail "$t: fwA sent no VRRP advertisement to time the failure by"; return 1; }
		t0=${R[$t.cut_ms]}
	else
		t0=$(now_ms)
		ip -n "$FWA" link set lan0 down
		ip -n "$FWA" link set wan0 down
		ip -n "$FWA" link set sync0 down
	fi
	if nl_wait_quiet 10 has_gateway "$FWB"; then
		t1=$(now_ms)
		R[$t.vip_ms]=$((t1 - t0))
	else
		fail "$t: fwB did not take over the gateway addresses"
		rc=1
	fi
	if ! nl_wait_quiet "$RECOVER_S" all_moving "$st" "$marker"; then
		log "$t: not every stream moved again within ${RECOVER_S} s"
	fi
	# one more second of status lines, so `survived` (data in the last second) sees recovery
	per_s=$(awk -v i="$STATUS_INTERVAL" 'BEGIN { printf "%d", 1 / i + 1 }')
	nl_wait_quiet 5 has_lines "$st" $(($(lines "$st") + per_s))
	if [ "$NAT_MODE" = 1 ]; then
		server_peers "$TMP/$t-peers-after.txt"
		R[$t.same_peers]=$(comm -12 "$TMP/$t-peers-before.txt" "$TMP/$t-peers-after.txt" | wc -l)
		R[$t.public]=$(grep -c '^10\.201\.2\.1:' "$TMP/$t-peers-before.txt")
	fi
	kill_pids "$client"
	while IFS='=' read -r k v; do
		R[$t.$k]=$v
	done < <(python3 "$STREAM" summary "$st" "$marker" kv)
	# NAT mode pools the streams of all trials of a kind (pf, pfnat)
	[ "$NAT_MODE" = 1 ] && python3 "$STREAM" summary "$st" "$marker" stalls >>"$TMP/${t%%[0-9]*}-stalls.txt"
	R[$t.t0]=$t0
	return $rc
}

# setup_pf [TAG]: the pfsync-xdp pair (TAG pf; NAT mode: pfN plain, pfnatN
# with nat-to)
setup_pf()
{
	local t=${1:-pf} name
	log "pfsync-xdp ($t): topology, agents, keepalived"
	topology "$t" || return 1
	if [ "$NAT_MODE" = 1 ]; then
		full_checksums || return 1
	fi
	if [[ $t == pfnat* ]]; then
		pfnat_rules "$t"
		ip -n "$SRV" route del default || fail "$t: cannot remove the server's route" || return 1
	fi
	pf_start "$t" a 0x0a0a0a0a || return 1
	pf_start "$t" b 0x0b0b0b0b || return 1
	for name in a b; do
		cat >"$TMP/$t-check-$name.sh" <<-EOF
			#!/bin/sh
			# stay backup until this node's pfsync bulk update has completed
			"$CTL" --ctl "$TMP/$t-$name.sock" status | grep "bulk: done" >/dev/null
		EOF
		chmod 700 "$TMP/$t-check-$name.sh"
	done
	for name in a b; do
		ka_conf "$t" "$name" "$TMP/$t-check-$name.sh"
	done
	ka_start "$t" a
	ka_start "$t" b
	ka_wait_master_a "$t"
}


setup_ctd()
{
	log "conntrackd: topology, nftables, conntrackd, keepalived"
	topology ctd || return 1
	ctd_nft "$FWA" && ctd_nft "$FWB" || fail "ctd: nftables rules or sysctls" || return 1
	ctd_start ctd a 10.201.3.1 10.201.3.2 || return 1
	ctd_start ctd b 10.201.3.2 10.201.3.1 || return 1
	local name
	for name in a b; do
		ctd_notify_script ctd "$name"
		ka_conf ctd "$name" "" "    notify_master \"$TMP/ctd-notify-$name.sh primary\"
    notify_backup \"$TMP/ctd-notify-$name.sh backup\"
    notify_fault \"$TMP/ctd-notify-$name.sh fault\""
	done
	ka_start ctd a
	ka_start ctd b
	ka_wait_master_a ctd || return 1
	nl_wait_quiet 10 notify_logged "$TMP/ctd-notify-a.log" "primary done" ||
		log "ctd: fwA's primary notify script has not finished"
}

run_failover() # pf|ctd|pfN|pfnatN
{
	local t=$1 synced=pf_b_synced setup=setup_pf
	[ "$t" = ctd ] && synced=ctd_b_synced setup=setup_ctd
	if "$setup" "$t"; then
		failover "$t" "$synced"
	fi
	if [ "$t" = ctd ] && [ -f "$TMP/ctd-notify-b.log" ] && [ -n "${R[ctd.t0]:-}" ]; then
		R[ctd.commit_ms]=$(awk -v t0="${R[ctd.t0]}" '
			$2 == "primary" && $3 == "begin" && $1 >= t0 { b = $1 }
			$2 == "commit" && b { print $1 - t0; exit }' "$TMP/ctd-notify-b.log")
	fi
	teardown "$t"
}

# ---- defer: connect times --------------------------------------------------------------
write_connect_py()
{
	cat >"$TMP/connect.py" <<-'EOF'
		# connect.py ADDR PORT N OUT: N sequential connects, connect() time in ms per line
		import socket, sys, time
		addr, port, count, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
		with open(out, "a") as f:
		    for _ in range(count):
		        t0 = time.perf_counter()
		        try:
		            s = socket.create_connection((addr, port), timeout=5)
		        except OSError as e:
		            f.write("fail %s\n" % e)
		            continue
		        f.write("%.3f\n" % (1000 * (time.perf_counter() - t0)))
		        s.close()
	EOF
}

# setup_defer TAG [AGENT ARGS]: a pair with static gateways on fwA (no VRRP)
setup_defer()
{
	local t=$1
	shift
	topology "$t" || return 1
	pf_start "$t" a 0x0a0a0a0a "$@" || return 1
	pf_start "$t" b 0x0b0b0b0b "$@" || return 1
	ip -n "$FWA" addr add 10.201.1.1/24 dev lan0
	ip -n "$FWA" addr add 10.201.2.1/24 dev wan0
	# full TCP checksums from the client, as from a wire (see OFFLOAD below)
	nl_in "$CLI" ethtool -K eth0 tx off >/dev/null || fail "$t: ethtool -K eth0 tx off" || return 1
	nl_wait_quiet 30 pf_bulk_done "$t" a && nl_wait_quiet 30 pf_bulk_done "$t" b ||
		fail "$t: the pfsync bulk exchange did not finish" || return 1
	start_server "$t" || return 1
	# warm-up (ARP, first states): not counted
	nl_in "$CLI" python3 "$TMP/connect.py" 10.201.2.10 $PORT 5 "$TMP/$t-warmup.txt"
	grep -q fail "$TMP/$t-warmup.txt" && fail "$t: connects through fwA fail"
	: >"$TMP/$t-connect.txt"
}

# pctl FILE: count fails p50 p99 max of the connect times in FILE
pctl()
{
	python3 - "$1" <<-'EOF'
		import sys
		vals, fails = [], 0
		for line in open(sys.argv[1]):
		    if line.startswith("fail"):
		        fails += 1
		    else:
		        vals.append(float(line))
		vals.sort()
		def pct(f):
		    return vals[int(max(1, -(-len(vals) * f // 1))) - 1] if vals else -1
		print("count=%d fails=%d p50=%.2f p99=%.2f max=%.2f"
		      % (len(vals), fails, pct(0.5), pct(0.99), vals[-1] if vals else -1))
	EOF
}

# release_paths TAG: the defer release paths pfsync-agent finds allowed in
# TAG's fwA (each probed with a throw-away frame); refused ones, with their
# reason, go to $TMP/release-refused.txt
release_paths()
{
	local dir=$TMP/$1-bpf-probe
	mkdir -p "$dir" && mount -t bpf bpf "$dir" || return 1
	nl_in "$FWA" "$AGENT" --probe-defer-release --pin-dir "$dir/p" --obj "$OBJ" \
		>"$TMP/release-probe.txt" 2>&1
	umount "$dir"
	grep ': refused: ' "$TMP/release-probe.txt" >"$TMP/release-refused.txt"
	sed -n 's/^\(live\|redirect\): ok$/\1/p' "$TMP/release-probe.txt"
}

# defer_tag PATH: the topology copy measuring --defer --defer-release PATH
defer_tag() { echo "d${1:0:1}"; }

run_defer()
{
	local batch=$((CONNECTS / 10)) i t kv path clis=()
	[ "$batch" -ge 1 ] || batch=1
	write_connect_py
	setup_defer dx || { teardown dx; return 1; }
	clis[0]=$CLI
	mapfile -t DEFER_PATHS < <(release_paths dx)
	[ "${#DEFER_PATHS[@]}" -gt 0 ] || fail "defer: no release path allowed: $(cat "$TMP/release-probe.txt")"
	log "defer: pairs without --defer and with each release path (${DEFER_PATHS[*]}), $CONNECTS connects each"
	for path in "${DEFER_PATHS[@]}"; do
		t=$(defer_tag "$path")
		setup_defer "$t" --defer --defer-release "$path" || { teardown "$t"; return 1; }
		clis+=("$CLI")
	done
	for ((i = 0; i < CONNECTS; i += batch)); do
		nl_in "${clis[0]}" python3 "$TMP/connect.py" 10.201.2.10 $PORT "$batch" "$TMP/dx-connect.txt"
		for t in "${DEFER_PATHS[@]}"; do
			t=$(defer_tag "$t")
			nl_in "$(namespaces_of "$t" | cut -d' ' -f1)" python3 "$TMP/connect.py" 10.201.2.10 \
				$PORT "$batch" "$TMP/$t-connect.txt"
		done
	done
	for t in dx $(for path in "${DEFER_PATHS[@]}"; do defer_tag "$path"; done); do
		for kv in $(pctl "$TMP/$t-connect.txt"); do R[$t.${kv%%=*}]=${kv#*=}; done
	done
	for path in "${DEFER_PATHS[@]}"; do
		defer_measure_path "$path"
	done
	teardown dx
	if [ "${R[dx.fails]:-1}" != 0 ]; then
		fail "defer: connects without --defer failed (${R[dx.fails]:-?})"
	fi
}

# defer_measure_path PATH: the offload row, the release counts, and a check
# that the path released what it held (a defer that released nothing only
# measured the clients' SYN retransmissions)
defer_measure_path()
{
	local path=$1 t kv
	t=$(defer_tag "$path")
	# OFFLOAD: veth's default, a CHECKSUM_PARTIAL SYN; a few connects only
	nl_in "$(namespaces_of "$t" | cut -d' ' -f1)" ethtool -K eth0 tx on >/dev/null &&
		nl_in "$(namespaces_of "$t" | cut -d' ' -f1)" python3 "$TMP/connect.py" 10.201.2.10 $PORT 5 \
			"$TMP/${t}o-connect.txt"
	for kv in $(pctl "$TMP/${t}o-connect.txt"); do R[${t}o.${kv%%=*}]=${kv#*=}; done
	kv=$("$CTL" --ctl "$TMP/$t-a.sock" status --json)
	R[$t.ack]=$(sed -n 's/.*"defer_released_ack":\([0-9]*\).*/\1/p' <<<"$kv")
	R[$t.timeout]=$(sed -n 's/.*"defer_released_timeout":\([0-9]*\).*/\1/p' <<<"$kv")
	R[$t.failed]=$(sed -n 's/.*"defer_release_failed":\([0-9]*\).*/\1/p' <<<"$kv")
	R[$t.path]=$(sed -n 's/.*"defer_release":"\([a-z]*\)".*/\1/p' <<<"$kv")
	teardown "$t"
	[ "${R[$t.path]}" = "$path" ] || fail "defer ($path): the agent released by ${R[$t.path]:-?}"
	[ $((${R[$t.ack]:-0} + ${R[$t.timeout]:-0})) -gt 0 ] ||
		fail "defer ($path): released nothing (on ack ${R[$t.ack]:-?}, timeout ${R[$t.timeout]:-?}, failed ${R[$t.failed]:-?})"
	[ "${R[$t.failed]:-1}" = 0 ] || fail "defer ($path): ${R[$t.failed]:-?} releases failed"
	if [ "${R[$t.fails]:-1}" != 0 ]; then
		LOSSES+="${LOSSES:+; }${R[$t.fails]:-?} of $CONNECTS connects failed with --defer-release $path"
	fi
}

# ---- report --------------------------------------------------------------------------
val() { local v=${R[$1]:-}; [ -n "$v" ] && [ "$v" != -1 ] && echo "$v" || echo "n/a"; }
ratio() # OURS THEIRS: ours/theirs
{
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "n/a" || b == "n/a") print "n/a"; else if (b > 0) printf "%.2f\n", a / b; else print "n/a" }'
}

survived_txt() # TAG
{
	local s n
	s=$(val "$1.survived") n=$(val "$1.streams")
	[ "$s" = n/a ] || [ "$n" = n/a ] || [ "$n" = 0 ] && { echo n/a; return; }
	awk -v s="$s" -v n="$n" 'BEGIN { printf "%d/%d %.0f%%\n", s, n, 100 * s / n }'
}

fo_row() # LABEL TAG
{
	printf '| %-26s | %-13s | %7s | %7s | %7s | %9s |\n' "$1" "$(survived_txt "$2")" \
		"$(val "$2.stall_p50_ms")" "$(val "$2.stall_p99_ms")" "$(val "$2.stall_max_ms")" "$(val "$2.vip_ms")"
}

defer_report_path() # PATH: its rows in the defer table
{
	local path=$1 t k
	t=$(defer_tag "$path")
	printf '| %-29s | %8s | %8s | %8s | %6s |\n' "--defer-release $path" "$(val "$t.p50")" \
		"$(val "$t.p99")" "$(val "$t.max")" "$(val "$t.fails")"
	for k in p50 p99 max; do
		R[$t.add.$k]=$(awk -v a="$(val "$t.$k")" -v b="$(val dx.$k)" \
			'BEGIN { if (a == "n/a" || b == "n/a") print "n/a"; else printf "%.2f\n", a - b }')
	done
	printf '| %-29s | %8s | %8s | %8s | %6s |\n' "  added (bound ${DEFER_TIMEOUT_MS} ms)" \
		"$(val "$t.add.p50")" "$(val "$t.add.p99")" "$(val "$t.add.max")" ""
	printf '| %-29s | %8s | %8s | %8s | %6s |\n' "  client tx csum offload" "$(val "${t}o.p50")" \
		"n/a" "$(val "${t}o.max")" "$(val "${t}o.fails")"
}

# nat_fold KIND: R[KIND.*] from the trials KIND1..KINDn: survivors and
# socket counts summed, stalls over the streams of all trials (pooled),
# VIP and sync times as medians over the trials
nat_fold()
{
	local kind=$1 i k kv vals
	for k in streams survived same_peers public; do
		for ((i = 1; i <= NAT_TRIALS; i++)); do
			[ -n "${R[$kind$i.$k]:-}" ] && R[$kind.$k]=$((${R[$kind.$k]:-0} + ${R[$kind$i.$k]}))
		done
	done
	if [ -s "$TMP/$kind-stalls.txt" ]; then
		for kv in $(pctl "$TMP/$kind-stalls.txt"); do
			case $kv in
			p50=* | p99=* | max=*) R[$kind.stall_${kv%%=*}_ms]=$(printf '%.0f' "${kv#*=}") ;;
			esac
		done
	fi
	for k in vip_ms synced_ms; do
		vals=''
		for ((i = 1; i <= NAT_TRIALS; i++)); do
			[ -n "${R[$kind$i.$k]:-}" ] && [ "${R[$kind$i.$k]}" != -1 ] && vals+="${R[$kind$i.$k]} "
		done
		[ -n "$vals" ] && R[$kind.$k]=$(tr ' ' '\n' <<<"$vals" | grep . | sort -n |
			awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
	done
	return 0
}

# nat_report: NAT mode's table, pfnat against pf
nat_report()
{
	echo
	echo "bench/failover --nat: $STREAMS TCP streams, master fwA loses all links; pfsync-xdp with" \
		"nat-to the VRRP address vs without, $NAT_TRIALS trials each (alternating)," \
		"$(uname -r), $(nproc) CPUs, $(date -u +%FT%TZ)"
	echo "load average before the run: $LOADAVG (other work on this machine skews every figure)"
	printf '| %-22s | %-15s | %7s | %7s | %7s | %9s | %-13s |\n' set-up survived stall stall stall "VIP moved" \
		"server peers"
	printf '| %-22s | %-15s | %7s | %7s | %7s | %9s | %-13s |\n' "" "" "p50 ms" "p99 ms" "max ms" "after ms" \
		"kept / public"
	echo "|------------------------|-----------------|---------|---------|---------|-----------|---------------|"
	for t in pf pfnat; do
		printf '| %-22s | %-15s | %7s | %7s | %7s | %9s | %-13s |\n' \
			"$([ $t = pf ] && echo "plain (baseline)" || echo "nat-to VIP")" "$(survived_txt $t)" \
			"$(val $t.stall_p50_ms)" "$(val $t.stall_p99_ms)" "$(val $t.stall_max_ms)" "$(val $t.vip_ms)" \
			"$(val $t.same_peers) / $(val $t.public)"
	done
	printf '| %-22s | %-15s | %7s | %7s | %7s | %9s | %-13s |\n' "ratio nat/plain" "" \
		"$(ratio "$(val pfnat.stall_p50_ms)" "$(val pf.stall_p50_ms)")" \
		"$(ratio "$(val pfnat.stall_p99_ms)" "$(val pf.stall_p99_ms)")" \
		"$(ratio "$(val pfnat.stall_max_ms)" "$(val pf.stall_max_ms)")" \
		"$(ratio "$(val pfnat.vip_ms)" "$(val pf.vip_ms)")" ""
	echo "target: every NATed stream survives, stall within 10 % of the plain run (ratio <= 1.10)."
	echo "survived and server peers: summed over the trials; stalls: p50/p99/max over the streams of"
	echo "all trials ($(val pf.streams) / $(val pfnat.streams)); VIP moved: median over the trials. Each failure"
	echo "is timed 55 ms after fwA's VRRP advertisements (advert: how long before the cut it really"
	echo "came), so that fwB takes over about the same time after it; a trial's streams then mostly"
	echo "recover together, at the first or the second retransmission (~0.45 or ~0.7 s)."
	echo "fwB held all $STREAMS states (median over the trials; from the client's 'open', polled):" \
		"plain $(val pf.synced_ms) ms, nat-to $(val pfnat.synced_ms) ms."
	echo "Per trial (p50/p99/max ms over its streams; the client's median RTO):"
	for ((i = 1; i <= NAT_TRIALS; i++)); do
		echo "  trial $i: plain $(val pf$i.stall_p50_ms)/$(val pf$i.stall_p99_ms)/$(val pf$i.stall_max_ms)" \
			"(rto $(val pf$i.rto_ms), advert $(val pf$i.advert_age_ms) ms before the cut)," \
			"nat-to $(val pfnat$i.stall_p50_ms)/$(val pfnat$i.stall_p99_ms)/$(val pfnat$i.stall_max_ms)" \
			"(rto $(val pfnat$i.rto_ms), advert $(val pfnat$i.advert_age_ms))"
	done
	echo "server peers: of the server's sockets before the failure, how many still have the same peer"
	echo "address:port after it / how many of them came from the public address 10.201.2.1 (NAT;"
	echo "the plain run's peers are the client's own address, so 0 there)."
	echo "stall, survived, VIP moved: as in bench/failover's main table (status lines every" \
		"$(awk -v i="$STATUS_INTERVAL" 'BEGIN { print 1000 * i }') ms)."
}

report()
{
	local k
	echo
	echo "bench/failover: $STREAMS TCP streams, master fwA loses all links; pfsync-xdp vs conntrackd" \
		"$(conntrackd -v 2>&1 | sed -n 's/.*daemon v\([0-9.]*[0-9]\).*/\1/p') FTFW/UDP," \
		"$(uname -r), $(nproc) CPUs, $(date -u +%FT%TZ)"
	echo "load average before the run: $LOADAVG (other work on this machine skews every figure)"
	if [ "${FAILOVER_ONLY:-pf}" != defer ]; then
		printf '| %-26s | %-13s | %7s | %7s | %7s | %9s |\n' set-up survived "stall" "stall" "stall" "VIP moved"
		printf '| %-26s | %-13s | %7s | %7s | %7s | %9s |\n' "" "" "p50 ms" "p99 ms" "max ms" "after ms"
		echo "|----------------------------|---------------|---------|---------|---------|-----------|"
		fo_row "pfsync-xdp" pf
		fo_row "conntrack+conntrackd FTFW" ctd
		printf '| %-26s | %-13s | %7s | %7s | %7s | %9s |\n' "ratio ours/conntrackd" \
			"$(ratio "$(val pf.survived)" "$(val ctd.survived)")" \
			"$(ratio "$(val pf.stall_p50_ms)" "$(val ctd.stall_p50_ms)")" \
			"$(ratio "$(val pf.stall_p99_ms)" "$(val ctd.stall_p99_ms)")" \
			"$(ratio "$(val pf.stall_max_ms)" "$(val ctd.stall_max_ms)")" \
			"$(ratio "$(val pf.vip_ms)" "$(val ctd.vip_ms)")"
		[ -n "${R[pf.streams]:-}" ] && [ "${R[pf.survived]:-x}" != "$STREAMS" ] && echo "pfsync-xdp LOST CONNECTIONS in the failover (must be 100 %)"
		echo "stall = a stream's longest gap without new data after the failure (status lines every" \
			"$(awk -v i="$STATUS_INTERVAL" 'BEGIN { print 1000 * i }') ms;"
		echo "a stream that never moves again counts to the end); p50/p99/max over the streams; lower is better."
		echo "survived = no error and data in the last second of the run (${RECOVER_S} s allowed to recover)."
		echo "VIP moved = fwA's links down -> fwB holds the gateway (VRRP detection, 3 x 0.1 s + skew);" \
			"conntrackd's 'conntrackd -c' ended $(val ctd.commit_ms) ms after the failure."
		echo "broken streams (error lines): pfsync-xdp $(val pf.broken), conntrackd $(val ctd.broken)."
	fi
	if [ "${FAILOVER_ONLY:-defer}" = defer ]; then
		echo
		echo "defer: connect() time cli -> srv through fwA (SYN -> established), $(val dx.count) connects per row"
		printf '| %-29s | %8s | %8s | %8s | %6s |\n' "pfsync-agent" "p50 ms" "p99 ms" "max ms" failed
		echo "|-------------------------------|----------|----------|----------|--------|"
		printf '| %-29s | %8s | %8s | %8s | %6s |\n' "without --defer" "$(val dx.p50)" "$(val dx.p99)" \
			"$(val dx.max)" "$(val dx.fails)"
		for path in "${DEFER_PATHS[@]}"; do
			defer_report_path "$path"
		done
		for path in "${DEFER_PATHS[@]}"; do
			t=$(defer_tag "$path")
			echo "$path: held first packets released on the peer's ack: $(val "$t.ack"), on the" \
				"${DEFER_TIMEOUT_MS} ms timeout: $(val "$t.timeout"), failed: $(val "$t.failed") (warm-up included)."
		done
		sed 's/^/defer release path /' "$TMP/release-refused.txt" 2>/dev/null
		echo "The client's veth sends with tx checksum offload off (full checksums, as from a wire). The"
		echo "'client tx csum offload' rows (5 connects each) leave veth's default on: the held SYN carries"
		echo "a partial checksum (CHECKSUM_PARTIAL), which the agent completes before it releases the frame."
		echo "failed = connect() gave up after 5 s (SYN retransmits unanswered)."
	fi
}

main()
{
	LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
	preflight
	pf_rules
	if [ "$NAT_MODE" = 1 ]; then
		main_nat
		return
	fi
	case ${FAILOVER_ONLY:-} in
	'' | pf) run_failover pf ;;
	esac
	case ${FAILOVER_ONLY:-} in
	'' | ctd) run_failover ctd ;;
	esac
	case ${FAILOVER_ONLY:-} in
	'' | defer) run_defer ;;
	esac
	if [ -n "${R[pf.streams]:-}" ] && [ "${R[pf.survived]:-0}" != "$STREAMS" ]; then
		LOSSES+="${LOSSES:+; }failover: ${R[pf.survived]:-0} of $STREAMS streams survived"
	fi
	report
	[ -n "$LOSSES" ] && echo "pfsync-xdp LOST CONNECTIONS: $LOSSES"
	[ ${#ERRORS[@]} -gt 0 ] || [ -z "$LOSSES" ] || exit 1
	if [ ${#ERRORS[@]} -gt 0 ]; then
		printf '[failover] ERROR: %s\n' "${ERRORS[@]}" >&2
		for f in "$TMP"/*agent-*.log "$TMP"/*keepalived-*.log "$TMP"/conntrackd-*.log "$TMP"/*notify-*.log; do
			[ -s "$f" ] && echo "--- last lines of $(basename "$f")" >&2 && tail -n 5 "$f" >&2
		done
		exit 1
	fi
}

# main_nat: NAT mode (see the top), plain and NATed runs and their table
main_nat()
{
	local t
	command -v ethtool >/dev/null || { log "ethtool not found (scripts/deps.sh installs it)"; exit 1; }
	local i
	# alternating, and which kind goes first too (drift hits both alike)
	for ((i = 1; i <= NAT_TRIALS; i++)); do
		if [ $((i % 2)) = 1 ]; then
			run_failover "pf$i"
			run_failover "pfnat$i"
		else
			run_failover "pfnat$i"
			run_failover "pf$i"
		fi
	done
	for t in pf pfnat; do
		nat_fold "$t"
		if [ -n "${R[$t.streams]:-}" ] && [ "${R[$t.survived]:-0}" != "${R[$t.streams]}" ]; then
			LOSSES+="${LOSSES:+; }$t: ${R[$t.survived]:-0} of ${R[$t.streams]} streams survived"
		fi
	done
	if [ -n "${R[pfnat.streams]:-}" ] && [ "${R[pfnat.same_peers]:-0}" != "${R[pfnat.streams]}" ]; then
		LOSSES+="${LOSSES:+; }pfnat: ${R[pfnat.same_peers]:-0} of ${R[pfnat.streams]} server sockets kept their peer"
	fi
	nat_report
	[ -n "$LOSSES" ] && echo "pfsync-xdp LOST CONNECTIONS: $LOSSES"
	if [ ${#ERRORS[@]} -gt 0 ]; then
		printf '[failover] ERROR: %s\n' "${ERRORS[@]}" >&2
		for f in "$TMP"/pf*agent-*.log "$TMP"/pf*keepalived-*.log; do
			[ -s "$f" ] && echo "--- last lines of $(basename "$f")" >&2 && tail -n 5 "$f" >&2
		done
		exit 1
	fi
	[ -z "$LOSSES" ] || exit 1
}

main
