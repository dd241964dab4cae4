#!/usr/bin/env bash
# The fault suite (issue 13): the adversarial run as a test.
#
#   cli eth0 ── br-lan ── lan0 fwA wan0 ── br-wan ── eth0 srv      (fwA forwards)
#                         lan0 fwB wan0
#               fwA sync0 NET.3.1 ── veth ── NET.3.2 sync0 fwB
#
# Agents on private bpffs; fwA's agent attaches the datapath to lan0/wan0.
# States are made on fwA by BPF_PROG_RUN of its datapath (sync_driver fill).
# Each sub-test prints its figure:
#   1. kill -9 of fwA's agent, then of fwB's, while states are being made:
#      both converge (fwB holds every state of fwA's, none lost), and fwA's
#      datapath forwards while its agent is dead. Figure: convergence time
#      after the restart, states lost.
#   2. 30 % of the proto-240 packets dropped (nftables numgen, both ways):
#      a) during a 20000-state load, in each transport (multicast, unicast
#         peers, unicast with --auth-key): once the loss stops, fwB holds
#         every state within 5 s. Figure: time to converge, packets
#         dropped, numbers lost and repaired.
#      b) with the loss going on, sampled through a paced 20000-state load:
#         every state older than 5 s is on fwB. Figure: the worst sample.
#   3. hostile packets to fwB (random, truncated, mutated captures of fwA's
#      packets): exact badver/badlen counts for the first two kinds, the
#      agent alive, nothing synced lost. Figure: the counters.
#   4. table full (fwA 3000 states max, fwB 2000): new states refused and
#      counted on both sides, nothing else lost. Figure: the counters.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. scripts/netns-lib.sh

nl_build
nl_need "$AGENT" "$OBJ" "$DRV" "$CTL"
nl_need_tools nft python3
NET=10.216
LOAD=20000
CONVERGE_S=5   # the issue's target after the loss stops
DEADLINE=60    # set-up and kill -9 convergence

nl_init flt
declare -A NS PIN ADDR ARGS
NS[A]="pffa-$NL_ID" NS[B]="pffb-$NL_ID"
CLI="pffc-$NL_ID" SRV="pffs-$NL_ID" SW="pffw-$NL_ID"
ADDR[A]=$NET.3.1 ADDR[B]=$NET.3.2
nl_fw_pair "$CLI" "$SRV" "$SW" "${NS[A]}" "${NS[B]}" "$NET"
ip -n "$CLI" route add default via "$NET.1.2"
ip -n "$SRV" route add default via "$NET.2.2"
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$NL_TMP/key"
chmod 600 "$NL_TMP/key"

count() { "$DRV" count "${PIN[$1]}"; }                              # NAME
dpstat() { "$CTL" --pin-dir "${PIN[$1]}" --ctl "$NL_TMP/none.sock" stats --json 2>/dev/null |
	python3 "$NL_LIB_DIR/ctlq.py" - "datapath.$2"; } # NAME COUNTER
# fwA's states at least $1 s old that fwB lacks, as total= old= missing=
missing() { "$DRV" missing "${PIN[A]}" "${PIN[B]}" "$1"; }
field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p"; } # NAME (of missing's output)
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

# start NAME ARGS...: the agent of fw NAME on its pin dir (made once), ARGS extra
start()
{
	local name=$1
	shift
	if [ -z "${PIN[$name]:-}" ]; then
		PIN[$name]=$(nl_bpffs_tmp) && nl_on_cleanup "umount -l '${PIN[$name]}'"
	fi
	ARGS[$name]="$*"
	nl_agent_run "$name" "${NS[$name]}" "$NL_TMP/$name.sock" --syncdev sync0 \
		--pin-dir "${PIN[$name]}" --obj "$OBJ" --pfsync-if none "$@"
	"$DRV" config "${PIN[$name]}" >/dev/null || nl_die "cannot set long timeouts on $name"
}
# restart NAME: again with the same arguments and pin dir (the state table kept)
restart()
{
	# shellcheck disable=SC2086 # the arguments as words
	start "$1" ${ARGS[$1]}
}
kill9()
{
	local pid=${NL_AGENT_PID[$1]}
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null
	NL_AGENT_PID[$1]=
	rm -f "$NL_TMP/$1.sock"
}
stop_all()
{
	nl_agent_stop A || nl_fail "agent A did not stop cleanly"
	nl_agent_stop B || nl_fail "agent B did not stop cleanly"
}
# fresh NAME: forget the pin dir (a new, empty table next start)
fresh() { umount -l "${PIN[$1]}"; PIN[$1]=; }
both_up()
{
	nl_wait_until 20 nl_bulk_done A && nl_wait_until 20 nl_bulk_done B ||
		nl_die "start-up bulk updates not done: $(nl_ctlq A status | grep bulk) / $(nl_ctlq B status | grep bulk)"
}

BASE=0
# fill COUNT RATE: fresh states on fwA (RATE 0: as fast as BPF_PROG_RUN goes)
fill()
{
	nl_in "${NS[A]}" "$DRV" fill "${PIN[A]}" "$1" "$BASE" "$2" >/dev/null
	local rc=$?
	BASE=$((BASE + $1))
	return $rc
}
fill_bg() # VAR COUNT RATE: the same in the background, PID in VAR
{
	nl_in "${NS[A]}" "$DRV" fill "${PIN[A]}" "$2" "$BASE" "$3" >/dev/null &
	printf -v "$1" '%s' "$!"
	nl_on_cleanup "kill $!"
	BASE=$((BASE + $2))
}
at_least() { [ "$(count "$1")" -ge "$2" ]; } # NAME N
same_tables() { [ "$(missing 0 | field missing)" = 0 ] && [ "$(count A)" = "$(count B)" ]; }

# ---- 1. kill -9 under load ------------------------------------------------------------
start B --syncpeer "${ADDR[A]}"
start A --syncpeer "${ADDR[B]}" --attach lan0 --attach wan0
both_up

forwards() { nl_in "$CLI" ping -c 2 -i 0.2 -W 1 -q "$NET.2.10" >/dev/null; }
xdp_on() { ip -n "${NS[A]}" link show dev lan0 | nl_has 'xdp'; }

# kill9_under_load VICTIM: kills VICTIM's agent a quarter into a load, restarts it
kill9_under_load()
{
	local victim=$1 before pid t0 t1 total passed0
	before=$(count A)
	fill_bg pid "$LOAD" 10000
	nl_wait_until 20 at_least A $((before + LOAD / 4)) || nl_fail "the load did not start"
	kill9 "$victim"
	if [ "$victim" = A ]; then
		passed0=$(dpstat A packets_passed)
		forwards && xdp_on && [ "$(dpstat A packets_passed)" -gt "${passed0:-0}" ] &&
			nl_pass "fwA's datapath forwards while its agent is dead (XDP attached, pass counted)" ||
			nl_fail "fwA does not forward with its agent dead (xdp: $(xdp_on && echo on || echo off))"
	fi
	restart "$victim"
	t0=$(now_ms)
	wait "$pid" || nl_fail "the load failed"
	total=$(count A)
	[ "$total" -ge $((before + LOAD)) ] || nl_fail "fwA holds $total states, expected at least $((before + LOAD))"
	if nl_wait_until "$DEADLINE" same_tables; then
		t1=$(now_ms)
		nl_pass "kill -9 of agent $victim under load: converged $((t1 - t0)) ms after the restart, $total states on both, 0 lost"
	else
		nl_fail "kill -9 of agent $victim: fwB lacks $(missing 0 | field missing) of fwA's $(count A) states"
	fi
}
kill9_under_load A
kill9_under_load B
stop_all

# ---- 2. 30 % loss on the sync link ----------------------------------------------------
# nftables has no -n option: the rule goes in through nsenter
loss_on()
{
	local n
	for n in A B; do
		nl_in "${NS[$n]}" nft -f - <<-EOF || nl_die "nftables: cannot add the loss rule in ${NS[$n]}"
			table inet pfloss {
				chain in { type filter hook input priority 0; ip protocol 240 numgen random mod 10 < 3 counter drop; }
			}
		EOF
	done
}
dropped() # packets the loss rules dropped, both sides
{
	local n sum=0 c
	for n in A B; do
		c=$(nl_in "${NS[$n]}" nft list table inet pfloss | sed -n 's/.*counter packets \([0-9]*\).*/\1/p')
		sum=$((sum + ${c:-0}))
	done
	echo "$sum"
}
loss_off() { nl_in "${NS[A]}" nft delete table inet pfloss; nl_in "${NS[B]}" nft delete table inet pfloss; }
sent_all() { [ "$(nl_ctlq A "status --json" pending)" = 0 ] && [ "$(nl_ctlq A "status --json" states_indexed)" -ge "$1" ]; }
repair_figures()
{
	echo "fwB: $(nl_ctlq B "status --json" repair_lost) numbers lost, $(nl_ctlq B "status --json" repair_repaired) repaired," \
		"$(nl_ctlq B "status --json" repair_naks_sent) NAKs; fwA: $(nl_ctlq A "status --json" repair_states_resent) states resent," \
		"$(nl_ctlq A "status --json" repair_full_resends) full resends"
}

# loss_then_recovery MODE PEER_ARGS_A PEER_ARGS_B: fresh tables each time
loss_then_recovery()
{
	local mode=$1 t0 t1 expect
	fresh A
	fresh B
	BASE=0
	# shellcheck disable=SC2086
	start B $3
	# shellcheck disable=SC2086
	start A $2
	both_up
	loss_on
	fill "$LOAD" 0 || nl_fail "$mode: cannot make $LOAD states"
	expect=$(count A)
	nl_wait_until "$DEADLINE" sent_all "$expect" || nl_fail "$mode: fwA did not send its states"
	local drops lost_now
	drops=$(dropped)
	lost_now=$(missing 0 | field missing)
	loss_off
	t0=$(now_ms)
	if nl_wait_until "$CONVERGE_S" same_tables; then
		t1=$(now_ms)
		nl_pass "30 % loss, $mode: fwB holds all $expect states $((t1 - t0)) ms after the loss stopped" \
			"($drops packets dropped, $lost_now states missing when it stopped; $(repair_figures))"
	else
		nl_fail "30 % loss, $mode: $CONVERGE_S s after the loss stopped fwB lacks" \
			"$(missing 0 | field missing) of $expect ($drops dropped; $(repair_figures))"
	fi
	[ "$drops" -gt 0 ] || nl_fail "$mode: the loss rule dropped nothing: the check proved nothing"
	stop_all
}
loss_then_recovery multicast "" ""
loss_then_recovery unicast "--syncpeer ${ADDR[B]}" "--syncpeer ${ADDR[A]}"
loss_then_recovery "unicast+auth" "--syncpeer ${ADDR[B]} --auth-key $NL_TMP/key" \
	"--syncpeer ${ADDR[A]} --auth-key $NL_TMP/key"

# b) the loss goes on: sampled through a paced load until every state is 5 s old
fresh A
fresh B
BASE=0
start B --syncpeer "${ADDR[A]}"
start A --syncpeer "${ADDR[B]}"
both_up
loss_on
worst=0 samples=0 last=
fill_bg pid "$LOAD" 2000
# one sample; true once the load is over and every state is 5 s old
sample()
{
	last=$(missing 5)
	local m
	m=$(field missing <<<"$last")
	samples=$((samples + 1))
	[ "${m:-1}" -gt "$worst" ] && worst=${m:-1}
	nl_pid_exited "$pid" && [ "$(field old <<<"$last")" = "$LOAD" ]
}
nl_wait_until $((LOAD / 2000 + 40)) sample || nl_fail "the paced load did not end in time ($last)"
wait "$pid" || nl_fail "the paced load failed"
drops=$(dropped)
loss_off
[ "$drops" -gt 0 ] || nl_fail "the continuing loss dropped nothing"
if [ "$worst" = 0 ]; then
	nl_pass "30 % loss going on: in $samples samples no state older than 5 s was missing on fwB ($drops packets dropped; $(repair_figures))"
else
	nl_fail "30 % loss going on: up to $worst states older than 5 s missing on fwB ($samples samples; $(repair_figures))"
fi

# ---- 3. hostile packets ---------------------------------------------------------------
forge() { nl_in "${NS[A]}" python3 "$NL_LIB_DIR/pfsync_forge.py" --src "${ADDR[A]}" "${ADDR[B]}" "$@"; }
bstat() { nl_ctlq B "stats --json" "$1"; }
caps=$NL_TMP/captures.hex
nl_in "${NS[B]}" timeout 30 python3 "$NL_LIB_DIR/pfsync_forge.py" 0.0.0.0 capture "$caps" 40 &
cap_pid=$!
nl_wait_until 5 test -e "$caps" || nl_die "the capture did not start" # made once it listens
fill 2000 0 || nl_fail "cannot make states for the captures"
wait "$cap_pid" || nl_die "capturing fwA's packets failed"
nl_wait_until "$DEADLINE" same_tables || nl_fail "fwB did not get the states before the hostile run"
synced=$(count A)
declare -A before
for c in ipackets badver badlen badact badval hdrops badstate; do before[$c]=$(bstat "$c"); done
forge hostile garbage 300 1 && forge hostile truncated 300 2 "$caps" || nl_fail "sending hostile packets failed"
# fwA's own packets go on meanwhile: the counters themselves tell when all are in
got() {
	dv=$(($(bstat badver) - before[badver])) dl=$(($(bstat badlen) - before[badlen]))
	[ "$dv" -ge 300 ] && [ "$dl" -ge 300 ]
}
nl_wait_until 10 got || nl_fail "fwB did not count the 600 hostile packets"
[ "$dv" = 300 ] && [ "$dl" = 300 ] &&
	nl_pass "hostile: 300 random packets counted badver ($dv), 300 truncated captures badlen ($dl)" ||
	nl_fail "hostile: badver +$dv, badlen +$dl (300 each expected)"
forge hostile mutated 2000 3 "$caps" || nl_fail "sending mutated captures failed"
got_all() { [ $(($(bstat ipackets) - before[ipackets])) -ge 2600 ]; }
nl_wait_until 10 got_all || nl_fail "fwB did not receive the 2000 mutated captures"
figures=
for c in badver badlen badact badval hdrops badstate; do figures+=" $c +$(($(bstat "$c") - before[$c]))"; done
if kill -0 "${NL_AGENT_PID[B]}" && [ "$(missing 0 | field missing)" = 0 ] && [ "$(count A)" = "$synced" ]; then
	nl_pass "hostile: 2600 packets, agent alive, all $synced synced states kept; counters:$figures"
else
	nl_fail "hostile: agent $(kill -0 "${NL_AGENT_PID[B]}" && echo alive || echo dead)," \
		"fwB lacks $(missing 0 | field missing) of $synced; counters:$figures"
fi
stop_all

# ---- 4. table full --------------------------------------------------------------------
fresh A
fresh B
BASE=0
start B --syncpeer "${ADDR[A]}" --states-max 2000
start A --syncpeer "${ADDR[B]}" --states-max 3000
both_up
fill 3500 0
full_a=$(dpstat A table_full)
nl_wait_until "$DEADLINE" at_least B 2000
b_only=$("$DRV" missing "${PIN[B]}" "${PIN[A]}" 0 | field missing) # fwB's states fwA lacks
bad=$(nl_ctlq B "stats --json" badstate)
if [ "$(count A)" = 3000 ] && [ "${full_a:-0}" -ge 500 ] && [ "$(count B)" = 2000 ] &&
	[ "$b_only" = 0 ] && [ "${bad:-0}" -ge 1000 ]; then
	nl_pass "table full: fwA holds 3000 of 3500 (table_full $full_a), fwB 2000 of fwA's (badstate $bad), nothing else lost"
else
	nl_fail "table full: fwA $(count A) (table_full $full_a), fwB $(count B) (badstate $bad, $b_only not fwA's)"
fi
stop_all

nl_finish
