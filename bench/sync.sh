#!/usr/bin/env bash
# bench/sync: state synchronisation between two firewalls, pfsync-xdp against
# conntrackd (FTFW over UDP, Debian's package) on the same topology in the
# same run, one table with both and the ratios (issue 3, "Benchmark").
#
#   gen 10.201.1.10 ── lan0 [fwA] wan0 ── srv 10.201.2.10   (10.202/16 routed to srv)
#                          sync0 10.201.3.1/30 <── veth ──> sync0 [fwB] 10.201.3.2/30
#
# pfsync-xdp: each firewall has a private bpffs and runs build/pfsync-agent
# on sync0 (unicast to the peer). States are created on A by BPF_PROG_RUN of
# A's pfsync_xdp with a fresh UDP tuple per packet (build/bench/sync_driver):
# paced runs one packet per call; the burst in a single call of
# build/bench_driver.o, which gives each repeat its tuple, stamps the
# sampled ones and tail-calls pfsync_xdp. The driver also looks sampled keys
# up in B's map to time their arrival.
# conntrackd: conntrack entries on fwA, made over ctnetlink for the burst and
# the bulk fills (build/bench/sync_driver ctinsert: the packet path cannot
# offer conntrackd enough) and by single-datagram UDP flows from gen through
# fwA (nftables conntrack) for the lag run; either way conntrackd sees NEW
# events. B's external cache is polled over conntrackd's UNIX socket
# (bench/sync_ctdpoll.py).
#
# Measured, both systems, same steps: states/s applied on B for a burst; lag
# from insert on A to presence on B at 10k states/s (p50/p99); bulk of 100k
# and 1M states to an emptied B (pfsync: `flush` then `bulk` on B; conntrackd:
# `-f external` then `-n` on B), and for the last one conntrackd's commit
# (`-c`) until fwB's kernel table holds the states, where pfsync's bulk
# already put them; kernel bytes and daemon RSS per state; daemon CPU per
# 100k states. Placement as in the anchor (PIN=1): fwA's daemon alone
# on CPU 1; fwB's daemon, the load and the pollers on CPU 0.
#
# Nothing here asserts a time: targets are printed next to the results. A
# set-up or measurement failure exits non-zero with a message (the table is
# still printed). The host's net.netfilter.nf_conntrack_max is raised for the
# run (a netns cannot exceed it) and restored on exit.
#
# Environment: BENCH_QUICK=1 smaller run (no 1M bulk); PFSYNC_BUILD build dir;
# SYNC_ONLY=ctd|pf one side only; SYNC_HOLD=SECONDS keep the namespaces and
# temp files after the table (debugging); SYNC_LAG_SAMPLES=FILE keeps the
# pfsync lag run's samples; PF_AGENT_ARGS extra agent options;
# PF_RT=1 (default) runs the agents SCHED_RR 99 like conntrackd, which sets
# that itself by default; PF_RT=0 leaves them SCHED_OTHER. SYNC_MTU (default
# 9000) is the sync link's MTU for both systems. BURST_RUNS (default 3):
# bursts per system, the one with the median rate is reported.
set -uo pipefail
shopt -s lastpipe # `helper | read_kv` fills R in this shell
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=scripts/netns-lib.sh
. scripts/netns-lib.sh # nl_in, nl_wait_quiet
NL_POLL_S=0.02          # polls that end a timed wait: finer than the tests'
ROOT=$PWD
BUILD=${PFSYNC_BUILD:-$ROOT/build}
DRV=$BUILD/bench/sync_driver
AGENT=$BUILD/pfsync-agent
BPF_OBJ=$BUILD/pfsync_xdp.o
CTDPOLL=$ROOT/bench/sync_ctdpoll.py
export PFSYNC_BPF_OBJ=$BPF_OBJ

if [ "${BENCH_QUICK:-0}" = 1 ]; then
	N_BURST=20000 N_LAG=10000 BULKS="100000" STATES_MAX=200000
else
	N_BURST=100000 N_LAG=50000 BULKS="100000 1000000" STATES_MAX=1100000
fi
LAG_RATE=10000
BURST_RUNS=${BURST_RUNS:-3} # bursts per system; the median one is reported
SYNC_MTU=${SYNC_MTU:-9000} # the sync link (a dedicated link: jumbo frames are usual)
TARGET_RATE=100000 TARGET_LAG_P99_MS=10 TARGET_BULK_1M_S=10 TARGET_FACTOR=2

ID=sb$$
NS_GEN=$ID-gen NS_FWA=$ID-fwa NS_FWB=$ID-fwb NS_SRV=$ID-srv
CLEANUP=()
declare -A R # results: R[pf.KEY] / R[ctd.KEY]
ERRORS=() # set-up or measurement failures: reported, then exit 1

log() { echo "[sync] $*" >&2; }
die()
{
	log "ERROR: $*"
	exit 1
}
fail()
{
	log "FAILED: $*"
	ERRORS+=("$*")
}
on_cleanup() { CLEANUP+=("$1"); }
run_cleanup()
{
	local rc=$? i
	trap - EXIT INT TERM
	for ((i = ${#CLEANUP[@]} - 1; i >= 0; i--)); do
		eval "${CLEANUP[i]}" >/dev/null 2>&1 || true
	done
	return "$rc"
}
trap run_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# kill_pid PID: SIGTERM, up to 5 s, then SIGKILL (only processes we started).
kill_pid()
{
	local pid=$1 i
	kill "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 250; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.02
	done
	kill -KILL "$pid" 2>/dev/null
}

# key=value lines (a helper's output) into R[PREFIX.key]
read_kv()
{
	local prefix=$1 k v
	while IFS='=' read -r k v; do
		[ -n "$k" ] && R[$prefix.$k]=$v
	done
}

now() { "$DRV" now; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
calc() { awk "BEGIN { printf \"%.${2:-3}f\", $1 }"; }

# ---- checks -------------------------------------------------------------------
preflight()
{
	local t
	[ "$(id -u)" -eq 0 ] || die "must run as root (namespaces, BPF)"
	for t in nsenter ip nft taskset python3 conntrackd conntrack; do
		command -v "$t" >/dev/null || die "$t not found (scripts/deps.sh installs it)"
	done
	[ -x "$DRV" ] || die "$DRV missing: run make bench (builds bench/*.c)"
	[ -f "$BPF_OBJ" ] || die "$BPF_OBJ missing: run make"
	[ "$(nproc)" -ge 2 ] || log "only $(nproc) CPU: the placement falls back to CPU 0"
	TMP=$(mktemp -d "/tmp/pfsync-$ID.XXXXXX") || die "mktemp failed"
	on_cleanup "rm -rf '$TMP'"
}

cpu_for() # the anchor's placement, if there is a CPU 1
{
	if [ "$(nproc)" -ge 2 ]; then echo "$1"; else echo 0; fi
}

# ---- topology -----------------------------------------------------------------
topology()
{
	local ns
	for ns in $NS_GEN $NS_FWA $NS_FWB $NS_SRV; do
		ip netns add "$ns" || die "cannot create namespace $ns"
		on_cleanup "ip netns del $ns"
		ip -n "$ns" link set lo up
	done
	if ! ip link add lan0 netns "$NS_FWA" type veth peer name eth0 netns "$NS_GEN" ||
		! ip link add wan0 netns "$NS_FWA" type veth peer name eth0 netns "$NS_SRV" ||
		! ip link add sync0 netns "$NS_FWA" type veth peer name sync0 netns "$NS_FWB"; then
		die "cannot create the veth pairs"
	fi
	ip -n "$NS_GEN" addr add 10.201.1.10/24 dev eth0
	ip -n "$NS_FWA" addr add 10.201.1.1/24 dev lan0
	ip -n "$NS_FWA" addr add 10.201.2.1/24 dev wan0
	ip -n "$NS_SRV" addr add 10.201.2.10/24 dev eth0
	ip -n "$NS_FWA" addr add 10.201.3.1/30 dev sync0
	ip -n "$NS_FWB" addr add 10.201.3.2/30 dev sync0
	for ns in $NS_GEN $NS_SRV; do ip -n "$ns" link set eth0 up; done
	ip -n "$NS_FWA" link set lan0 up
	ip -n "$NS_FWA" link set wan0 up
	# both daemons size their packets from the sync link's MTU (pfsync-agent:
	# the interface MTU; conntrackd: its Interface's MTU), so both gain alike
	ip -n "$NS_FWA" link set sync0 mtu "$SYNC_MTU" || die "sync0 mtu $SYNC_MTU on fwA"
	ip -n "$NS_FWB" link set sync0 mtu "$SYNC_MTU" || die "sync0 mtu $SYNC_MTU on fwB"
	ip -n "$NS_FWA" link set sync0 up
	ip -n "$NS_FWB" link set sync0 up
	ip -n "$NS_GEN" route add default via 10.201.1.1
	ip -n "$NS_FWA" route add 10.202.0.0/16 via 10.201.2.10 || die "routes failed"
	nl_in "$NS_FWA" sysctl -qw net.ipv4.ip_forward=1 || die "ip_forward in fwA"
	nl_wait_quiet 5 nl_in "$NS_GEN" ping -c1 -W1 10.201.1.1 || die "gen cannot reach fwA"
	nl_wait_quiet 5 nl_in "$NS_FWA" ping -c1 -W1 10.201.2.10 || die "fwA cannot reach srv"
	nl_wait_quiet 5 nl_in "$NS_FWA" ping -c1 -W1 10.201.3.2 || die "sync link is down"
}

# nftables conntrack on fwA (the anchor's forward chain), only for conntrackd.
fwa_conntrack()
{
	local need=$1 cur
	nl_in "$NS_FWA" nft -f "$ROOT/bench/conf/anchor-forward.nft" || die "nftables ruleset on fwA failed"
	# a netns cannot go above the host's limit: raise it for the run only
	cur=$(sysctl -n net.netfilter.nf_conntrack_max)
	if [ "$cur" -lt "$need" ]; then
		sysctl -qw net.netfilter.nf_conntrack_max="$need" ||
			die "cannot raise net.netfilter.nf_conntrack_max to $need"
		on_cleanup "sysctl -qw net.netfilter.nf_conntrack_max=$cur"
	fi
	# (a netns cannot write nf_conntrack_max here; it follows the host's)
	nl_in "$NS_FWA" sysctl -qw net.netfilter.nf_conntrack_events=1 \
		net.netfilter.nf_conntrack_udp_timeout=600 \
		net.netfilter.nf_conntrack_udp_timeout_stream=600 ||
		die "conntrack sysctls on fwA failed"
}

# ---- conntrackd ---------------------------------------------------------------
CTD_PID_A='' CTD_PID_B=''
ctd_conf() # TAG LOCAL PEER
{
	sed -e "s|@LOCAL@|$2|; s|@PEER@|$3|; s|@DIR@|$TMP|g; s|@TAG@|$1|g" \
		-e "s|@HASHLIMIT@|$((STATES_MAX * 2))|" \
		"$ROOT/bench/conf/conntrackd.conf.in" >"$TMP/ctd-$1.conf"
}

ctd_sock() { echo "$TMP/conntrackd-$1.ctl"; }
ctd_count() { python3 "$CTDPOLL" count "$(ctd_sock "$1")" "${2:-external}"; }

ctd_start() # TAG NS LOCAL PEER CPU
{
	local tag=$1 ns=$2 pid
	ctd_conf "$tag" "$3" "$4"
	# nsenter and taskset exec: $! is the daemon itself (not a subshell)
	nsenter --net="/run/netns/$ns" taskset -c "$5" conntrackd -C "$TMP/ctd-$tag.conf" \
		>"$TMP/ctd-$tag.out" 2>&1 &
	pid=$!
	on_cleanup "kill_pid $pid"
	nl_wait_quiet 10 ctd_count "$tag" || {
		tail -5 "$TMP/ctd-$tag.out" "$TMP/conntrackd-$tag.log" >&2
		die "conntrackd ($tag) did not come up"
	}
	[ "$(cat "/proc/$pid/comm")" = conntrackd ] || die "conntrackd ($tag): PID $pid is not it"
	eval "CTD_PID_${tag^^}=$pid"
}

ctd_cli() # TAG ARGS...: conntrackd's client, in that firewall's netns
{
	local ns=$NS_FWA
	[ "$1" = b ] && ns=$NS_FWB
	nl_in "$ns" conntrackd -C "$TMP/ctd-$1.conf" "${@:2}"
}

# ctd_flows BASE COUNT RATE [TIMES]: single-datagram UDP flows gen -> fwA -> srv
ctd_flows()
{
	nl_in "$NS_GEN" taskset -c 0 "$DRV" udpgen 10.202.0.0 "$2" "$3" "$1" ${4:+"$4"} >/dev/null
}

# ctd_insert BASE COUNT RATE [TIMES]: the same kind of flows' conntrack entries
# made on fwA over ctnetlink (RATE 0 = as fast as the kernel takes them). The
# packet path (gen's sends, fwA's forwarding, on CPU 0) tops out near 35-70k
# flows/s on this machine, below what conntrackd drains: a burst of real
# packets measured the load, not conntrackd. pfsync's load is made without
# packet I/O as well (BPF_PROG_RUN).
ctd_insert()
{
	nl_in "$NS_FWA" taskset -c 0 "$DRV" ctinsert 10.201.1.10 10.202.0.0 "$2" "$3" "$1" \
		${4:+"$4"} >/dev/null
}

CTD_FLOWS=0 # flows sent so far (the next flow's number)

ctd_burst()
{
	local c0 a0 b0 pp
	c0=$(ctd_count b) || return 1
	a0=$(cpu_ticks "$CTD_PID_A") b0=$(cpu_ticks "$CTD_PID_B")
	# stops 5 s after the count last moved: FTFW resends within that, or never
	taskset -c 0 python3 "$CTDPOLL" poll "$(ctd_sock b)" $((c0 + N_BURST)) 60 \
		"$TMP/ctd-burst.poll" 5 >/dev/null &
	pp=$!
	nl_wait_quiet 10 test -e "$TMP/ctd-burst.poll.ready" || return 1
	ctd_insert "$CTD_FLOWS" "$N_BURST" 0 "$TMP/ctd-burst.times" || return 1
	CTD_FLOWS=$((CTD_FLOWS + N_BURST))
	wait "$pp"
	R[ctd.cpu_a_s]=$(calc "($(cpu_ticks "$CTD_PID_A") - $a0) / $(getconf CLK_TCK)")
	R[ctd.cpu_b_s]=$(calc "($(cpu_ticks "$CTD_PID_B") - $b0) / $(getconf CLK_TCK)")
	python3 "$CTDPOLL" burst "$TMP/ctd-burst.times" "$TMP/ctd-burst.poll" "$c0" |
		read_kv ctd.burst
	# states lost on the way are reported (below the table), not a set-up failure
	[ "${R[ctd.burst.applied_per_s]:--1}" != -1 ]
}

ctd_lag()
{
	local c0 pp
	c0=$(ctd_count b) || return 1
	taskset -c 0 python3 "$CTDPOLL" poll "$(ctd_sock b)" $((c0 + N_LAG)) 60 \
		"$TMP/ctd-lag.poll" >/dev/null &
	pp=$!
	nl_wait_quiet 10 test -e "$TMP/ctd-lag.poll.ready" || return 1
	ctd_flows "$CTD_FLOWS" "$N_LAG" "$LAG_RATE" "$TMP/ctd-lag.times" || return 1
	CTD_FLOWS=$((CTD_FLOWS + N_LAG))
	wait "$pp"
	python3 "$CTDPOLL" lag "$TMP/ctd-lag.times" "$TMP/ctd-lag.poll" "$c0" | read_kv ctd.lag
}

# ctd_bulk N: fwA's tables hold N flows (more are sent if needed); fwB's
# external cache is flushed and refilled with `conntrackd -n`.
ctd_bulk()
{
	local n=$1 have start
	if [ "$CTD_FLOWS" -lt "$n" ]; then
		ctd_insert "$CTD_FLOWS" $((n - CTD_FLOWS)) 100000 || return 1
		CTD_FLOWS=$n
	fi
	settle "ctd_count a internal" "$n" 60 ||
		log "conntrackd fwA holds only $(ctd_count a internal) of $n states"
	have=$(ctd_count a internal)
	# let live sync settle so the bulk is measured alone
	settle "ctd_count b" "$have" 60 || {
		R[ctd.live_short$n]=$((have - $(ctd_count b)))
		log "conntrackd fwB holds only $(ctd_count b) of $have before the bulk"
	}
	ctd_cli b -f external >/dev/null
	nl_wait_quiet 10 test_zero "ctd_count b" || return 1
	start=$(now)
	ctd_cli b -n >/dev/null || return 1
	python3 "$CTDPOLL" wait "$(ctd_sock b)" "$have" 60 "$start" | read_kv "ctd.bulk$n"
	R[ctd.bulk$n.states]=$have
	[ "${R[ctd.bulk$n.elapsed]:--1}" != -1 ]
}

fwb_ct_count() { nl_in "$NS_FWB" cat /proc/sys/net/netfilter/nf_conntrack_count; }

# ctd_commit N: after `ctd_bulk N`, `conntrackd -c` on B (external cache into
# fwB's kernel table, what a failover script runs) until fwB's conntrack
# holds them all. pfsync's bulk already ends in B's kernel table: this is the
# step conntrackd needs on top of `-n` before B's datapath has the states.
ctd_commit()
{
	local n=$1 have=${R[ctd.bulk$1.states]:-0} start
	[ "$have" -gt 0 ] || return 1
	start=$(now)
	ctd_cli b -c >/dev/null || return 1
	# polled every 20 ms like pfsync's bulk (settle's 0.5 s steps would add up to 0.5 s)
	nl_wait_quiet 120 test_ge fwb_ct_count "$have" || {
		log "conntrackd fwB's kernel table holds only $(fwb_ct_count) of $have after -c"
		return 1
	}
	R[ctd.commit$n]=$(calc "$(now) - $start" 6)
	R[ctd.bulkc$n]=$(calc "${R[ctd.bulk$n.elapsed]} + ${R[ctd.commit$n]}" 6)
}

test_ge() { [ "$(eval "$1")" -ge "$2" ]; }

# settle CMD TARGET SECONDS: waits until CMD prints >= TARGET, or its figure
# stops moving for 1.5 s (live sync lost some: waiting longer is pointless),
# or the deadline; returns 0 only when TARGET was reached.
settle()
{
	local end=$((SECONDS + $3)) prev=-1 v still=0
	while [ "$SECONDS" -lt "$end" ]; do
		v=$(eval "$1") || v=0
		[ "$v" -ge "$2" ] && return 0
		if [ "$v" = "$prev" ]; then
			still=$((still + 1))
			[ "$still" -ge 3 ] && return 1
		else
			still=0
		fi
		prev=$v
		sleep 0.5
	done
	return 1
}
test_zero() { [ "$(eval "$1")" = 0 ]; }

# burst_runs PREFIX FN: FN (a burst) BURST_RUNS times. The run with the
# median applied rate is reported; daemon CPU is summed over the runs done
# (PREFIX.bursts_done of them, which the CPU rows divide by).
burst_runs()
{
	local p=$1 fn=$2 i k mid cpu_a=0 cpu_b=0 rates=()
	local -A runs
	for ((i = 1; i <= BURST_RUNS; i++)); do
		# a run that fails must not report the previous run's figures
		for k in "${!R[@]}"; do
			[[ $k == "$p.burst."* ]] && unset "R[$k]"
		done
		if ! "$fn"; then
			R[$p.cpu_a_s]=$cpu_a R[$p.cpu_b_s]=$cpu_b
			return 1
		fi
		rates+=("${R[$p.burst.applied_per_s]:--1} $i")
		for k in "${!R[@]}"; do
			[[ $k == "$p.burst."* ]] && runs[$i/$k]=${R[$k]}
		done
		cpu_a=$(calc "$cpu_a + ${R[$p.cpu_a_s]}") cpu_b=$(calc "$cpu_b + ${R[$p.cpu_b_s]}")
		R[$p.bursts_done]=$i
	done
	mid=$(printf '%s\n' "${rates[@]}" | sort -n | sed -n "$(((BURST_RUNS + 1) / 2))p" | cut -d' ' -f2)
	for k in "${!runs[@]}"; do
		[[ $k == "$mid/"* ]] && R[${k#"$mid/"}]=${runs[$k]}
	done
	R[$p.burst.rates]=$(printf '%s\n' "${rates[@]}" | cut -d' ' -f1 | sort -n | paste -sd/ -)
	R[$p.cpu_a_s]=$cpu_a R[$p.cpu_b_s]=$cpu_b
}

conntrackd_side()
{
	local n rss_a rss_b
	log "conntrackd: starting on fwA and fwB"
	fwa_conntrack $((STATES_MAX + 100000))
	ctd_start a "$NS_FWA" 10.201.3.1 10.201.3.2 "$(cpu_for 1)"
	ctd_start b "$NS_FWB" 10.201.3.2 10.201.3.1 0
	rss_a=$(rss_kb "$CTD_PID_A") rss_b=$(rss_kb "$CTD_PID_B")
	# the 100k bulk first: it sends what the table holds, and the bursts add to it
	log "conntrackd: bulk of 100000"
	ctd_bulk 100000 || fail "conntrackd: bulk of 100000"
	log "conntrackd: $BURST_RUNS bursts of $N_BURST flows"
	burst_runs ctd ctd_burst || fail "conntrackd: burst of $N_BURST"
	log "conntrackd: $N_LAG flows at $LAG_RATE/s"
	ctd_lag || fail "conntrackd: lag run"
	for n in $BULKS; do
		[ "$n" = 100000 ] && continue
		log "conntrackd: bulk of $n"
		ctd_bulk "$n" || fail "conntrackd: bulk of $n"
	done
	# last, so the committed entries (and their events on B) disturb nothing
	log "conntrackd: commit of the bulk of $n on B (-c)"
	ctd_commit "$n" || fail "conntrackd: commit of $n"
	n=$(ctd_count b)
	R[ctd.states_end]=$n
	R[ctd.rss_a_per_state]=$(calc "($(rss_kb "$CTD_PID_A") - $rss_a) * 1024 / $n" 0)
	R[ctd.rss_b_per_state]=$(calc "($(rss_kb "$CTD_PID_B") - $rss_b) * 1024 / $n" 0)
	R[ctd.kernel_per_state]=$(awk '$1 == "nf_conntrack" {print $4}' /proc/slabinfo)
	kill_pid "$CTD_PID_A"
	kill_pid "$CTD_PID_B"
	# a million entries per table would keep conntrack's GC busy during pfsync's turn
	nl_in "$NS_FWA" conntrack -F >/dev/null 2>&1
	nl_in "$NS_FWB" conntrack -F >/dev/null 2>&1
}

# ---- pfsync-xdp ---------------------------------------------------------------
PF_PID_A='' PF_PID_B='' PF_BASE=0
PF_RT_CMD=()
[ "${PF_RT:-1}" = 1 ] && PF_RT_CMD=(chrt -r 99)

pf_start() # TAG NS PEER HOSTID CPU
{
	local tag=$1 dir=$TMP/bpf-$1 pid
	mkdir -p "$dir" || die "cannot create $dir"
	mount -t bpf bpf "$dir" || die "cannot mount a bpffs on $dir"
	on_cleanup "umount '$dir'"
	# shellcheck disable=SC2086 # PF_AGENT_ARGS: extra options, split on purpose
	nsenter --net="/run/netns/$2" taskset -c "$5" ${PF_RT_CMD[@]+"${PF_RT_CMD[@]}"} "$AGENT" --syncdev sync0 --syncpeer "$3" --hostid "$4" \
		--pin-dir "$dir" --ctl "$TMP/agent-$tag.sock" --obj "$BPF_OBJ" \
		--states-max "$STATES_MAX" ${PF_AGENT_ARGS:-} >"$TMP/agent-$tag.log" 2>&1 &
	pid=$!
	on_cleanup "kill_pid $pid"
	nl_wait_quiet 10 "$DRV" ctl "$TMP/agent-$tag.sock" status || {
		tail -5 "$TMP/agent-$tag.log" >&2
		die "pfsync-agent ($tag) did not come up"
	}
	"$DRV" config "$dir" >/dev/null || die "cannot configure the maps in $dir"
	[ "$(cat "/proc/$pid/comm")" = pfsync-agent ] || die "pfsync-agent ($tag): PID $pid is not it"
	eval "PF_PID_${tag^^}=$pid"
}

# true once TAG's start-up bulk request is over and it is not sending one
pf_bulk_idle()
{
	local st
	st=$("$DRV" ctl "$TMP/agent-$1.sock" "status --json") || return 1
	case $st in
	*'"bulk":"requested"'* | *'"bulk":"in progress"'* | *'"bulk_sending":true'*) return 1 ;;
	esac
}

pf_indexed() { "$DRV" waitidx "$TMP/agent-$1.sock" 0 1 0 | sed -n 's/^indexed=//p'; }
# TAG's RSS in KiB less its index (reserved at start for the whole map):
# the baseline the per-state figure is counted from, so the index counts
pf_rss_base_kb()
{
	local st
	st=$("$DRV" ctl "$TMP/agent-$1.sock" "status --json") || return 1
	st=${st#*\"index_bytes\":}
	echo $(($(rss_kb "$2") - ${st%%[,\}]*} / 1024))
}
pf_count() { "$DRV" count "$TMP/bpf-$1"; }

pf_burst()
{
	local a0 b0 onb0
	a0=$(cpu_ticks "$PF_PID_A") b0=$(cpu_ticks "$PF_PID_B") onb0=$(pf_count b)
	taskset -c 0 "$DRV" run "$TMP/bpf-a" "$TMP/bpf-b" "$N_BURST" 0 "$PF_BASE" 1000 10 |
		read_kv pf.burst
	PF_BASE=$((PF_BASE + N_BURST))
	R[pf.burst.onb]=$(($(pf_count b) - onb0))
	R[pf.cpu_a_s]=$(calc "($(cpu_ticks "$PF_PID_A") - $a0) / $(getconf CLK_TCK)")
	R[pf.cpu_b_s]=$(calc "($(cpu_ticks "$PF_PID_B") - $b0) / $(getconf CLK_TCK)")
	[ "${R[pf.burst.complete_s]:--1}" != -1 ]
}

pf_lag()
{
	SYNC_DRIVER_SAMPLES=$TMP/pf-lag.samples taskset -c 0 "$DRV" run "$TMP/bpf-a" "$TMP/bpf-b" \
		"$N_LAG" "$LAG_RATE" "$PF_BASE" $((N_LAG / 10)) 30 | read_kv pf.lag
	PF_BASE=$((PF_BASE + N_LAG))
	# SYNC_LAG_SAMPLES=FILE keeps "t_insert lag_ms lower_bound_ms" per sample (diagnosis)
	[ -n "${SYNC_LAG_SAMPLES:-}" ] && cp "$TMP/pf-lag.samples" "$SYNC_LAG_SAMPLES"
	[ "${R[pf.lag.samples_found]:-0}" = "${R[pf.lag.samples]:-x}" ]
}

# pf_bulk N: A holds N states (more are inserted if needed); B is flushed
# (`flush`, which clears B's table and index) and asks for a bulk (`bulk`).
pf_bulk()
{
	local n=$1 start a0 b0
	if [ "$PF_BASE" -lt "$n" ]; then
		# paced below what agent A drains, so the ringbuf does not overflow
		taskset -c 0 "$DRV" fill "$TMP/bpf-a" $((n - PF_BASE)) "$PF_BASE" 100000 >/dev/null ||
			return 1
		PF_BASE=$n
	fi
	# let live sync settle so the bulk is measured alone
	settle "pf_indexed b" "$n" 60 || {
		R[pf.live_short$n]=$((n - $(pf_indexed b)))
		log "pfsync B indexed only $(pf_indexed b) of $n before the bulk"
	}
	"$DRV" ctl "$TMP/agent-b.sock" flush >/dev/null || return 1
	nl_wait_quiet 10 test_zero "pf_count b" || {
		log "pfsync B still holds $(pf_count b) states after flush"
		return 1
	}
	[ "$(pf_indexed b)" = 0 ] || log "pfsync B index not empty after flush: $(pf_indexed b)"
	a0=$(cpu_ticks "$PF_PID_A") b0=$(cpu_ticks "$PF_PID_B")
	start=$(now)
	"$DRV" ctl "$TMP/agent-b.sock" bulk >/dev/null || return 1
	"$DRV" waitidx "$TMP/agent-b.sock" "$n" 60 "$start" | read_kv "pf.bulk$n"
	R[pf.bulk$n.cpu]="A $(calc "($(cpu_ticks "$PF_PID_A") - $a0) / $(getconf CLK_TCK)" 2) s, B $(calc "($(cpu_ticks "$PF_PID_B") - $b0) / $(getconf CLK_TCK)" 2) s"
	R[pf.bulk$n.states]=$(pf_count b)
	[ "${R[pf.bulk$n.elapsed]:--1}" != -1 ]
}

pfsync_side()
{
	local n rss_a rss_b
	[ -x "$AGENT" ] || {
		fail "$AGENT missing (make): pfsync-xdp not measured"
		return 1
	}
	log "pfsync-xdp: starting agents on fwA and fwB"
	pf_start a "$NS_FWA" 10.201.3.2 1 "$(cpu_for 1)"
	pf_start b "$NS_FWB" 10.201.3.1 2 0
	# A asked for a bulk before B was up and retries every 2 s: let that
	# exchange end so it does not run during the burst
	if ! nl_wait_quiet 30 pf_bulk_idle a || ! nl_wait_quiet 30 pf_bulk_idle b; then
		log "pfsync-xdp: the start-up bulk exchange is still running"
	fi
	rss_a=$(pf_rss_base_kb a "$PF_PID_A") rss_b=$(pf_rss_base_kb b "$PF_PID_B")
	log "pfsync-xdp: bulk of 100000"
	pf_bulk 100000 || fail "pfsync-xdp: bulk of 100000"
	log "pfsync-xdp: $BURST_RUNS bursts of $N_BURST states"
	burst_runs pf pf_burst || fail "pfsync-xdp: burst of $N_BURST did not fully reach B"
	log "pfsync-xdp: $N_LAG states at $LAG_RATE/s"
	pf_lag || fail "pfsync-xdp: lag run"
	for n in $BULKS; do
		[ "$n" = 100000 ] && continue
		log "pfsync-xdp: bulk of $n"
		pf_bulk "$n" || fail "pfsync-xdp: bulk of $n"
	done
	n=$(pf_count b)
	R[pf.states_end]=$n
	R[pf.rss_a_per_state]=$(calc "($(rss_kb "$PF_PID_A") - $rss_a) * 1024 / $n" 0)
	R[pf.rss_b_per_state]=$(calc "($(rss_kb "$PF_PID_B") - $rss_b) * 1024 / $n" 0)
	"$DRV" mapmem "$TMP/bpf-b" | read_kv pf.map
	R[pf.kernel_per_state]=$(calc "${R[pf.map.memlock]} / ${R[pf.map.max_entries]}" 0)
	kill_pid "$PF_PID_A"
	kill_pid "$PF_PID_B"
}

# ---- report -------------------------------------------------------------------
val() { local v=${R[$1]:-}; [ -n "$v" ] && [ "$v" != -1 ] && echo "$v" || echo "n/a"; }

# row LABEL UNIT PF CTD BETTER(higher|lower) TARGET
row()
{
	local ratio=n/a
	if [ "$3" != n/a ] && [ "$4" != n/a ]; then
		if [ "$5" = higher ]; then
			ratio=$(awk -v a="$3" -v b="$4" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }')
		else
			ratio=$(awk -v a="$3" -v b="$4" 'BEGIN { if (a > 0) printf "%.2fx", b / a; else print "inf" }')
		fi
	fi
	printf '| %-36s | %-8s | %12s | %12s | %8s | %-22s |\n' "$1" "$2" "$3" "$4" "$ratio" "$6"
}

# load_bound PREFIX NAME: whether a side's burst was set by its load (applied >= 90% of offered)
load_bound()
{
	local a=${R[$1.burst.applied_per_s]:--1} o=${R[$1.burst.offered_per_s]:--1}
	if [ "$a" = -1 ] || [ "$o" = -1 ]; then
		echo "$2 n/a;"
	elif awk -v a="$a" -v o="$o" 'BEGIN { exit !(a >= 0.9 * o) }'; then
		echo "$2 kept up with its load;"
	else
		echo "$2 fell behind its load;"
	fi
}

per_100k() # KEY STATES: seconds of CPU per 100k states
{
	local s
	s=$(val "$1")
	if [ "$s" = n/a ] || [ "$2" -eq 0 ]; then echo n/a; else calc "$s * 100000 / $2" 3; fi
}

report()
{
	local n
	echo
	echo "bench/sync: pfsync-xdp vs conntrackd $(conntrackd -v 2>&1 | sed -n 's/.*daemon v\([0-9.]*[0-9]\).*/\1/p') (FTFW/UDP)," \
		"$(uname -r), $(nproc) CPUs, $(date -u +%FT%TZ)${BENCH_QUICK:+ (BENCH_QUICK)}"
	echo "load average before the run: $LOADAVG (other work on this machine skews every figure)"
	echo "ratio = how many times pfsync-xdp is better (rate: pf/ctd; time, lag, memory, CPU: ctd/pf)"
	printf '| %-36s | %-8s | %12s | %12s | %8s | %-22s |\n' metric unit pfsync-xdp conntrackd ratio target
	echo "|--------------------------------------|----------|--------------|--------------|----------|------------------------|"
	row "applied on B, burst of $N_BURST" "states/s" "$(val pf.burst.applied_per_s)" \
		"$(val ctd.burst.applied_per_s)" higher ">= ${TARGET_RATE} and >= ${TARGET_FACTOR}x"
	row "  offered on A (load, for reference)" "states/s" "$(val pf.burst.offered_per_s)" \
		"$(val ctd.burst.offered_per_s)" higher ""
	row "lag A->B at ${LAG_RATE}/s, p50" ms "$(val pf.lag.lag_p50_ms)" "$(val ctd.lag.lag_p50_ms)" lower ""
	row "lag A->B at ${LAG_RATE}/s, p99" ms "$(val pf.lag.lag_p99_ms)" "$(val ctd.lag.lag_p99_ms)" lower \
		"<= ${TARGET_LAG_P99_MS} and >= ${TARGET_FACTOR}x"
	row "lag A->B at ${LAG_RATE}/s, max" ms "$(val pf.lag.lag_max_ms)" "$(val ctd.lag.lag_max_ms)" lower ""
	row "  p99, lower bound (see below)" ms "$(val pf.lag.lag_lo_p99_ms)" "$(val ctd.lag.lag_lo_p99_ms)" lower ""
	for n in $BULKS; do
		local tgt=""
		[ "$n" = 1000000 ] && tgt="<= ${TARGET_BULK_1M_S} and >= ${TARGET_FACTOR}x"
		row "bulk of $n to an emptied B" s "$(val "pf.bulk$n.elapsed")" "$(val "ctd.bulk$n.elapsed")" lower "$tgt"
	done
	n=${BULKS##* }
	row "  same, until in B's kernel table" s "$(val "pf.bulk$n.elapsed")" "$(val "ctd.bulkc$n")" lower \
		"(ctd: -n, then -c)"
	row "kernel memory per state" bytes "$(val pf.kernel_per_state)" "$(val ctd.kernel_per_state)" lower ""
	row "daemon RSS per state, A (sender)" bytes "$(val pf.rss_a_per_state)" "$(val ctd.rss_a_per_state)" lower ""
	row "daemon RSS per state, B (receiver)" bytes "$(val pf.rss_b_per_state)" "$(val ctd.rss_b_per_state)" lower ""
	local n_pf=$((N_BURST * ${R[pf.bursts_done]:-0})) n_ctd=$((N_BURST * ${R[ctd.bursts_done]:-0}))
	row "daemon CPU per 100k states, A" s "$(per_100k pf.cpu_a_s "$n_pf")" "$(per_100k ctd.cpu_a_s "$n_ctd")" lower ""
	row "daemon CPU per 100k states, B" s "$(per_100k pf.cpu_b_s "$n_pf")" "$(per_100k ctd.cpu_b_s "$n_ctd")" lower ""
	echo
	echo "How: pfsync load = BPF_PROG_RUN of A's pfsync_xdp, fresh UDP tuple per packet (the burst: one"
	echo "run of bench_driver, which stamps the sampled packets); lag = sampled keys looked up in B's"
	echo "map every ~50 us (${R[pf.lag.samples_found]:-0}/${R[pf.lag.samples]:-0} found)."
	echo "conntrackd load: burst and bulk fills = conntrack entries made on fwA over ctnetlink (ctinsert;"
	echo "conntrackd gets the same NEW events as from packets; fwA's packet path could not offer more"
	echo "than ~35-70k flows/s here, below conntrackd's rate); lag run = single-datagram UDP flows"
	echo "gen->fwA (nftables conntrack), lag per flow = send time to the first 1 ms poll of B's"
	echo "external cache that counts it (FIFO; ${R[ctd.lag.samples_found]:-0}/${R[ctd.lag.samples]:-0}): up to ~1.2 ms of it is the poll step."
	echo "Applied rate = states on B / (first insert on A -> last state present on B). Bulk = B emptied"
	echo "(pfsync: flush; conntrackd: -f external), then bulk request (bulk / -n) until B holds all:"
	echo "pfsync's B holds them in its kernel state table (the datapath's), conntrackd's B in its"
	echo "userspace external cache. 'until in B's kernel table' adds conntrackd's commit (-c, run by"
	echo "failover scripts) until fwB's conntrack holds them: ${R[ctd.commit${BULKS##* }]:-?} s for ${R[ctd.bulk${BULKS##* }.states]:-?} states."
	for n in $BULKS; do
		echo "Bulk of $n: B then held ${R[pf.bulk$n.states]:-?} states (pfsync-xdp, daemon CPU" \
			"${R[pf.bulk$n.cpu]:-?}); ${R[ctd.bulk$n.count]:-?} of ${R[ctd.bulk$n.states]:-?} in fwA's cache (conntrackd)."
	done
	echo "Bursts: $BURST_RUNS each, applied states/s pfsync-xdp ${R[pf.burst.rates]:-?}, conntrackd" \
		"${R[ctd.burst.rates]:-?}; the median run is in the table."
	echo "After the median burst B held ${R[pf.burst.onb]:-?} more of $N_BURST states (pfsync-xdp);" \
		"conntrackd's B missed ${R[ctd.burst.missing]:-?} (its rate counts only those that came)."
	echo "Burst: $(load_bound pf pfsync-xdp) $(load_bound ctd conntrackd) A daemon that keeps up"
	echo "applies what its load offers: then the row compares the load generators, and the CPU rows"
	echo "(cost per state) compare the daemons."
	for n in $BULKS; do
		echo "Live sync while filling A to $n: B stayed ${R[pf.live_short$n]:-0} (pfsync-xdp, 100k/s)" \
			"/ ${R[ctd.live_short$n]:-0} (conntrackd, 100k/s) states short."
	done
	echo "Lag bounds: an arrival lies between the last look that missed it and the one that saw it;"
	echo "the table's p50/p99/max use the later one, 'lower bound' the earlier (they part when the"
	echo "measuring process itself was not scheduled)."
	echo "Lag run stalls of the measuring process (CPU 0 is shared): longest gap between the" \
		"driver's inserts ${R[pf.lag.insert_gap_max_ms]:-?} ms (pfsync-xdp), between conntrackd" \
		"polls ${R[ctd.lag.poll_gap_max_ms]:-?} ms; p99/max include such stalls."
	echo "Kernel memory: pfsync = states map memlock / max_entries (preallocated slots, ${R[pf.map.max_entries]:-?});"
	echo "conntrack = nf_conntrack slab object (extensions not counted). RSS per state over"
	echo "${R[pf.states_end]:-?} / ${R[ctd.states_end]:-?} states held at the end, from the RSS after start"
	echo "(pfsync-agent's less its index, which it reserves at start for the whole map: the index counts)."
	echo "CPU = utime+stime during the bursts."
	echo "Placement: fwA's daemon on CPU 1; fwB's daemon, load and pollers on CPU 0. conntrackd runs"
	local sched=SCHED_OTHER
	[ "${PF_RT:-1}" = 1 ] && sched="SCHED_RR 99 (as conntrackd; PF_RT=0 for SCHED_OTHER)"
	echo "SCHED_RR 99 (its default), pfsync-agent $sched."
	echo "Sync link MTU $SYNC_MTU on both (each daemon sizes its packets from the link's MTU)." \
		"pfsync-agent bulk pacing: ${PF_AGENT_ARGS:-default} (adaptive: halves after a lossy bulk)."
}

main()
{
	LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
	preflight
	topology
	# SYNC_ONLY=ctd|pf runs one side (debugging)
	[ "${SYNC_ONLY:-ctd}" = ctd ] && conntrackd_side
	[ "${SYNC_ONLY:-pf}" = pf ] && { pfsync_side || true; }
	report
	# SYNC_HOLD=SECONDS keeps the topology up for inspection (debugging)
	[ -n "${SYNC_HOLD:-}" ] && log "holding: namespaces $ID-*, files $TMP" && sleep "$SYNC_HOLD"
	if [ ${#ERRORS[@]} -gt 0 ]; then
		printf '[sync] ERROR: %s\n' "${ERRORS[@]}" >&2
		for f in "$TMP"/agent-*.log "$TMP"/conntrackd-*.log; do
			[ -f "$f" ] && echo "--- last lines of $(basename "$f")" >&2 && tail -n 5 "$f" >&2
		done
		exit 1
	fi
}

main "$@"
