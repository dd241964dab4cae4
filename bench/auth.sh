#!/usr/bin/env bash
# bench/auth: what --auth-key and extra unicast peers cost pfsync-agent.
#
#   fwA ──┐
#   B1  ──┼── br0 (bridge namespace), 10.214.0.0/24
#   B2  ──┤
#   B3  ──┘
#
# Each configuration starts fresh agents (fresh bpffs), then creates BURST
# states on A by BPF_PROG_RUN of A's datapath (build/bench/sync_driver run,
# unpaced) and times their arrival in B1's map. Configurations, all in this
# run, ROUNDS times (the best round of each is kept): A -> B1 plain (the
# baseline) and with --auth-key, A -> B1+B2 and A -> B1+B2+B3 (every packet
# to each peer), plain and with --auth-key. B2 and B3 are
# sinks (an nftables rule drops protocol 240 on input), so the extra peers
# cost A its sends and nothing else on the 2 CPUs.
# Printed: states/s applied on B1, A's and B1's agent CPU per 100k states,
# ratios against the baseline; target: auth >= 0.8x the plain rate.
# Placement: A's agent alone on CPU 1; receivers and the driver on CPU 0.
# Nothing is asserted; a set-up failure exits non-zero.
#
# Environment: BENCH_QUICK=1 (smaller burst, one round), PFSYNC_BUILD.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. scripts/netns-lib.sh

BUILD=${PFSYNC_BUILD:-$PWD/build}
OBJ=$BUILD/pfsync_xdp.o
AGENT=$BUILD/pfsync-agent
DRV=$BUILD/bench/sync_driver
export PFSYNC_BPF_OBJ=$OBJ
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	BURST=20000 ROUNDS=1
else
	BURST=100000 ROUNDS=3
fi
CPU_A=$(($(nproc) > 1 ? 1 : 0))
TARGET_AUTH=0.8

for f in "$OBJ" "$AGENT" "$DRV"; do
	[ -e "$f" ] || nl_die "$f not built (make bench)"
done

nl_init ba
SW="bsw-$NL_ID"
nl_netns_add "$SW"
ip -n "$SW" link add br0 type bridge || nl_die "cannot create the bridge"
ip -n "$SW" link set br0 up
declare -A NS ADDR
port=0
for name in A B1 B2 B3; do
	port=$((port + 1))
	NS[$name]="b$name-$NL_ID"
	ADDR[$name]=10.214.0.$port
	nl_netns_add "${NS[$name]}"
	nl_veth "${NS[$name]}" sync0 "$SW" "p$port"
	ip -n "$SW" link set "p$port" master br0
	nl_addr "${NS[$name]}" sync0 "${ADDR[$name]}/24"
done
for name in B2 B3; do
	nl_in "${NS[$name]}" nft -f - <<'NFT' || nl_die "nft failed in $name"
table ip sink {
	chain input {
		type filter hook input priority 0; policy accept;
		ip protocol 240 drop
	}
}
NFT
done
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$NL_TMP/key"
chmod 600 "$NL_TMP/key"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }

declare -A PID PIN
start_agent() # NAME CPU ARGS...
{
	local name=$1 cpu=$2 pid
	shift 2
	PIN[$name]=$(nl_bpffs_tmp)
	rm -f "$NL_TMP/$name.sock"
	nsenter --net="/run/netns/${NS[$name]}" -- taskset -c "$cpu" "$AGENT" --syncdev sync0 \
		--pin-dir "${PIN[$name]}" --obj "$OBJ" --ctl "$NL_TMP/$name.sock" \
		--pfsync-if none --states-max $((BURST * 2)) -q "$@" >>"$NL_TMP/$name.log" 2>&1 &
	pid=$!
	nl_on_cleanup "kill $pid"
	PID[$name]=$pid
	nl_wait_until 10 test -S "$NL_TMP/$name.sock" ||
		{ tail -3 "$NL_TMP/$name.log" >&2; nl_die "agent $name did not start"; }
	"$DRV" config "${PIN[$name]}" >/dev/null || nl_die "cannot configure $name's maps"
}

stop_agents()
{
	local name
	for name in "${!PID[@]}"; do
		kill -TERM "${PID[$name]}" 2>/dev/null
		wait "${PID[$name]}" 2>/dev/null
	done
	PID=()
}

declare -A R # R[config.key]
# measure CONFIG NPEERS AUTH(0|1)
measure()
{
	local cfg=$1 npeers=$2 auth=$3 peers=() key=() i a0 b0 out
	[ "$auth" = 1 ] && key=(--auth-key "$NL_TMP/key")
	for ((i = 1; i <= npeers; i++)); do
		peers+=(--syncpeer "${ADDR[B$i]}")
	done
	start_agent B1 0 --syncpeer "${ADDR[A]}" --hostid 0xb1 "${key[@]}"
	start_agent A "$CPU_A" "${peers[@]}" --hostid 0xa0 "${key[@]}"
	for name in A B1; do
		nl_wait_until 30 nl_bulk_settled "$name" || nl_log "$cfg: $name's start-up bulk still running"
	done
	a0=$(cpu_ticks "${PID[A]}") b0=$(cpu_ticks "${PID[B1]}")
	out=$(taskset -c 0 "$DRV" run "${PIN[A]}" "${PIN[B1]}" "$BURST" 0 0 200 30) ||
		nl_die "$cfg: the driver failed"
	local rate
	rate=$(sed -n 's/^applied_per_s=//p' <<<"$out")
	local cpu_a cpu_b
	cpu_a=$(calc "($(cpu_ticks "${PID[A]}") - $a0) / $(getconf CLK_TCK) * 100000 / $BURST")
	cpu_b=$(calc "($(cpu_ticks "${PID[B1]}") - $b0) / $(getconf CLK_TCK) * 100000 / $BURST")
	[ "$(sed -n 's/^complete_s=//p' <<<"$out")" = -1 ] && nl_log "$cfg: not every sample reached B1"
	stop_agents
	nl_log "$cfg: $rate states/s, CPU A ${cpu_a}s B1 ${cpu_b}s per 100k"
	# keep the round with the best rate
	if [ -z "${R[$cfg.rate]:-}" ] || [ "${rate%.*}" -gt "${R[$cfg.rate]%.*}" ]; then
		R[$cfg.rate]=$rate R[$cfg.cpu_a]=$cpu_a R[$cfg.cpu_b]=$cpu_b
	fi
}

for ((round = 1; round <= ROUNDS; round++)); do
	measure plain 1 0
	measure auth 1 1
	measure plain_2peers 2 0
	measure auth_2peers 2 1
	measure plain_3peers 3 0
	measure auth_3peers 3 1
done

base=${R[plain.rate]}
base_cpu=${R[plain.cpu_a]}
printf '\nbench/auth: %d states burst A -> B1, %d CPUs, %s\n' "$BURST" "$(nproc)" "$(uname -r)"
printf '%-14s %12s %8s %14s %14s %10s\n' config "states/s B1" ratio "CPU A/100k s" "CPU B1/100k s" "CPU A x"
for cfg in plain auth plain_2peers plain_3peers auth_2peers auth_3peers; do
	printf '%-14s %12.0f %8s %14s %14s %10s\n' "$cfg" "${R[$cfg.rate]}" \
		"$(calc "${R[$cfg.rate]} / $base")" "${R[$cfg.cpu_a]}" "${R[$cfg.cpu_b]}" \
		"$(calc "${R[$cfg.cpu_a]} / ($base_cpu > 0 ? $base_cpu : 1)")"
done
printf 'auth/plain rate %s (target >= %s); extra unicast peer: +%s s CPU on A per 100k states (plain, 1 -> 3 peers, per peer)\n' \
	"$(calc "${R[auth.rate]} / $base")" "$TARGET_AUTH" \
	"$(calc "(${R[plain_3peers.cpu_a]} - ${R[plain.cpu_a]}) / 2")"
