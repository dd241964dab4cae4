#!/usr/bin/env bash
# Losses on the way never leave the peer silently behind (issue 3):
#
#   fwA sync0 10.214.0.1 ── veth ── 10.214.0.2 sync0 fwB
#
# Agents on private bpffs, states made by BPF_PROG_RUN of fwA's own datapath
# (build/bench/sync_driver fill). Checked:
#   - ring overflow: fwA's agent is stopped (SIGSTOP) while more states are
#     made than the 8 MB change ring holds. Resumed, it reads the loss
#     report, rebuilds its index once for all the reports in the ring,
#     resends every state, and fwB ends with all of them. The agent still
#     stops on SIGTERM afterwards (it used to rebuild once per report).
#   - receive drops: fwB's agent is stopped while fwA sends more inserts than
#     fwB's socket buffer holds (a small sync MTU makes that many packets). Resumed, fwB counts the kernel's drops, asks
#     for one bulk update once they stop, ends with every state, and its
#     bulk status stays "done" throughout (a master catching up must not be
#     demoted by keepalived's check).
# Every wait polls with a deadline.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. scripts/netns-lib.sh

nl_build
nl_need "$AGENT" "$OBJ" "$DRV" "$CTL"
STATES_MAX=400000
RING_RECORDS=$((8 * 1024 * 1024 / 80)) # PFSYNC_EVENTS_BYTES / (record + ringbuf header)
N_RING=$((RING_RECORDS + 30000))       # states made while fwA's agent is stopped
# states sent while fwB's agent is stopped: at the sync link's MTU of 576 two
# to a packet, 100k packets, more than fwB's receive buffer (64 MB) holds
N_DROP=200000
SYNC_MTU=576
DEADLINE=60

nl_init ov
declare -A NS PIN
NS[A]="pfoa-$NL_ID" NS[B]="pfob-$NL_ID"
nl_netns_add "${NS[A]}"
nl_netns_add "${NS[B]}"
nl_veth "${NS[A]}" sync0 "${NS[B]}" sync0
ip -n "${NS[A]}" link set dev sync0 mtu "$SYNC_MTU"
ip -n "${NS[B]}" link set dev sync0 mtu "$SYNC_MTU"
nl_addr "${NS[A]}" sync0 10.214.0.1/24
nl_addr "${NS[B]}" sync0 10.214.0.2/24

count() { "$DRV" count "${PIN[$1]}"; }                              # NAME
count_is() { [ "$(count "$1")" = "$2" ]; }                          # NAME N
pid_of() { echo "${NL_AGENT_PID[$1]}"; }                            # NAME

start_agent() # NAME PEER
{
	PIN[$1]=$(nl_bpffs_tmp) && nl_on_cleanup "umount -l '${PIN[$1]}'"
	nl_agent_run "$1" "${NS[$1]}" "$NL_TMP/$1.sock" --syncdev sync0 --syncpeer "$2" \
		--pin-dir "${PIN[$1]}" --obj "$OBJ" --pfsync-if none --states-max "$STATES_MAX"
	# a stopped agent must be continued before the cleanup's SIGTERM and wait
	nl_on_cleanup "kill -CONT $(pid_of "$1")"
	"$DRV" config "${PIN[$1]}" >/dev/null || nl_die "cannot set long timeouts on $1"
}

BASE=0
fill() # COUNT: states with fresh tuples on fwA, as fast as BPF_PROG_RUN goes
{
	nsenter --net="/run/netns/${NS[A]}" -- "$DRV" fill "${PIN[A]}" "$1" "$BASE" 0 >/dev/null
	local rc=$?
	BASE=$((BASE + $1))
	return $rc
}

stopped() { grep -q '^State:\s*T' "/proc/$1/status"; } # PID

start_agent B 10.214.0.1
start_agent A 10.214.0.2
nl_wait_until 20 nl_bulk_done A && nl_wait_until 20 nl_bulk_done B ||
	nl_die "start-up bulk updates not done: $(nl_ctlq A status | grep bulk) / $(nl_ctlq B status | grep bulk)"

# ---- ring overflow --------------------------------------------------------------
kill -STOP "$(pid_of A)"
nl_wait_until 5 stopped "$(pid_of A)" || nl_die "agent A did not stop"
fill "$N_RING" || nl_die "cannot make $N_RING states on fwA"
lost=$("$CTL" --pin-dir "${PIN[A]}" --ctl "$NL_TMP/none.sock" stats --json 2>/dev/null |
	python3 "$NL_LIB_DIR/ctlq.py" - datapath.ringbuf_lost)
[ "${lost:-0}" -gt 0 ] || nl_die "the ring did not overflow (lost ${lost:-?}): the check below would prove nothing"
kill -CONT "$(pid_of A)"
if nl_wait_until "$DEADLINE" count_is B "$N_RING"; then
	nl_pass "ring overflow ($lost records lost): fwB got all $N_RING states"
else
	nl_fail "after the ring overflow fwB holds $(count B) of $N_RING states"
fi
reports=$(nl_ctlq A "status --json" loss_reports)
covered=$(nl_ctlq A "status --json" loss_reports_covered)
rebuilds=$(grep -c "rebuilding the index" "$NL_TMP/agentA.log")
[ "$(nl_ctlq A "status --json" records_lost)" = "$lost" ] && [ "$reports" -ge 1 ] &&
	[ "$rebuilds" -eq $((reports - covered)) ] && [ "$rebuilds" -le 2 ] &&
	nl_pass "fwA counted the $lost lost records: $reports report(s), $rebuilds rebuild(s)" ||
	nl_fail "loss accounting: lost $(nl_ctlq A "status --json" records_lost) of $lost, $reports reports, $covered covered, $rebuilds rebuilds"

# ---- receive drops ---------------------------------------------------------------
kill -STOP "$(pid_of B)"
nl_wait_until 5 stopped "$(pid_of B)" || nl_die "agent B did not stop"
fill "$N_DROP" || nl_die "cannot make $N_DROP states on fwA"
total=$((N_RING + N_DROP))
# fwA has sent them all once its queue is empty (they pile up in fwB's socket)
sent_all() { [ "$(nl_ctlq A "status --json" pending)" = 0 ] && [ "$(nl_ctlq A "status --json" states_indexed)" = "$total" ]; }
nl_wait_until "$DEADLINE" sent_all || nl_fail "fwA did not send the $N_DROP new states"
kill -CONT "$(pid_of B)"
# the status while fwB catches up: sampled until it holds every state
statuses=$NL_TMP/b-bulk.txt
caught_up() { nl_ctlq B status | sed -n 's/^bulk: //p' >>"$statuses"; count_is B "$total"; }
if nl_wait_until "$DEADLINE" caught_up; then
	nl_pass "receive drops: fwB got all $total states"
else
	nl_fail "after the receive drops fwB holds $(count B) of $total states"
fi
drops=$(nl_ctlq B status | sed -n 's/^receive drops: \([0-9]*\) .*/\1/p')
resyncs=$(nl_ctlq B status | sed -n 's/.*bulk updates asked to catch up: \([0-9]*\).*/\1/p')
[ "${drops:-0}" -gt 0 ] && [ "${resyncs:-0}" -ge 1 ] &&
	nl_pass "fwB counted $drops dropped packets and asked $resyncs bulk update(s) to catch up" ||
	nl_fail "drops ${drops:-?}, catch-up bulk updates ${resyncs:-?}: $(grep -i "drop\|catch" "$NL_TMP/agentB.log" | tail -3)"
[ "$(sort -u "$statuses")" = done ] && nl_pass "fwB's bulk status stayed done while catching up" ||
	nl_fail "fwB's bulk status while catching up: $(sort -u "$statuses" | tr '\n' ' ')"

# ---- still answers SIGTERM ---------------------------------------------------------
# (nl_agent_stop records a failure with the status itself)
for name in A B; do
	nl_agent_stop "$name" && nl_pass "agent $name stopped cleanly on SIGTERM"
done

nl_finish
