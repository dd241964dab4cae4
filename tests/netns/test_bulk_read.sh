#!/usr/bin/env bash
# Whole-table reads by each path of --bulk-read (issue 17):
#
#   fwA sync0 10.216.0.1 ── veth ── 10.216.0.2 sync0 fwB
#
# The agent reads its whole state table for a bulk update, a resend, the
# expiry pass and its index (rebuild and `index` check), through the
# pfsync_table_iter iterator (pfsync_iter.o) or bpf_map_lookup_batch. For
# each path forced with --bulk-read (a path the kernel refuses is a SKIP
# with its reason, never a pass), with states made by BPF_PROG_RUN of fwA's
# datapath (build/bench/sync_driver fill):
#   - status names the path in use;
#   - a restarted fwA rebuilds its index from the table (`index` finds every
#     state indexed, none missing or stale) and resends all of it;
#   - a fresh fwB gets exactly fwA's states (identities compared) by its bulk
#     update at start, and again after it was emptied (`flush`, `bulk`);
#   - expiry: states that timed out (pfsyncctl set timeout) are removed by
#     the expiry pass (--interval 1), on fwA and on fwB.
# Then --bulk-read auto takes the iterator exactly when the kernel took it.
# Every wait polls with a deadline.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. scripts/netns-lib.sh

nl_build
nl_need "$AGENT" "$OBJ" "$DRV" "$CTL" "$BUILD/pfsync_iter.o"
N_STATES=2000 # more than a few reads of either path (256 / ~186 states a read)
DEADLINE=30

nl_init br
declare -A NS PIN PEER
NS[A]="pfra-$NL_ID" NS[B]="pfrb-$NL_ID"
PEER[A]=10.216.0.2 PEER[B]=10.216.0.1
nl_netns_add "${NS[A]}"
nl_netns_add "${NS[B]}"
nl_veth "${NS[A]}" sync0 "${NS[B]}" sync0
nl_addr "${NS[A]}" sync0 10.216.0.1/24
nl_addr "${NS[B]}" sync0 10.216.0.2/24
PIN[A]=$(nl_bpffs_tmp)
PIN[B]=$(nl_bpffs_tmp)

count() { "$DRV" count "${PIN[$1]}"; }        # NAME
idents() { nl_states "${PIN[$1]}" idents | sort; } # NAME
same_states() { [ "$(idents A)" = "$(idents B)" ] && [ "$(count A)" -gt 0 ]; }
index_field() { nl_ctlq "$1" "index --json" "$2"; } # NAME FIELD
read_path() { nl_ctlq "$1" "status --json" bulk_read; } # NAME

# start_agent NAME PATH: 0 when up, 1 when it refused to start (log kept)
start_agent()
{
	local name=$1 path=$2 sock="$NL_TMP/$1.sock" pid
	rm -f "$sock"
	nsenter --net="/run/netns/${NS[$name]}" -- "$AGENT" --ctl "$sock" --syncdev sync0 \
		--syncpeer "${PEER[$name]}" --pin-dir "${PIN[$name]}" --obj "$OBJ" --pfsync-if none \
		--interval 1 --bulk-read "$path" >>"$NL_TMP/agent$name.log" 2>&1 &
	pid=$!
	nl_on_cleanup "kill $pid; wait $pid"
	nl_wait_until 30 agent_up_or_gone "$sock" "$pid" || nl_die "agent $name neither up nor gone"
	if ! test -S "$sock"; then
		wait "$pid"
		return 1
	fi
	NL_AGENT_PID[$name]=$pid
	NL_AGENT_SOCK[$name]=$sock
	"$DRV" config "${PIN[$name]}" >/dev/null || nl_die "cannot set long timeouts on $name"
}
agent_up_or_gone() { test -S "$1" || nl_pid_exited "$2"; } # SOCK PID

# refusal NAME: why the agent refused the forced iterator, from its log
refusal() { sed -n 's/.*--bulk-read iter: the kernel refuses [^:]*: //p' "$NL_TMP/agent$1.log" | tail -1; }

fill() # COUNT: states with fresh tuples on fwA
{
	nsenter --net="/run/netns/${NS[A]}" -- "$DRV" fill "${PIN[A]}" "$1" "$BASE" 0 >/dev/null
	local rc=$?
	BASE=$((BASE + $1))
	return $rc
}
BASE=0

# flush_table NAME: the agent's table and index emptied (`flush`)
flush_table() { nl_ctlq "$1" flush >/dev/null && nl_wait_until "$DEADLINE" test_count "$1" 0; }
test_count() { [ "$(count "$1")" = "$2" ]; } # NAME N

# check_path PATH: every whole-table read through PATH; 1 when refused
check_path()
{
	local path=$1 why
	if ! start_agent A "$path"; then
		why=$(refusal A)
		if [ "$path" = iter ] && [ -n "$why" ]; then
			nl_skip "whole-table reads with --bulk-read iter" "kernel refuses it: $why"
			return 1
		fi
		nl_die "agent A did not start with --bulk-read $path: $(tail -3 "$NL_TMP/agentA.log")"
	fi
	[ "$(read_path A)" = "$path" ] && nl_pass "--bulk-read $path: status says $path" ||
		nl_fail "--bulk-read $path: status says $(read_path A)"
	fill "$N_STATES" || nl_die "cannot make $N_STATES states on fwA"

	# A restarted onto its pinned states: its index rebuilt from the table,
	# and the whole table resent (the walk counts what it read)
	nl_agent_stop A
	start_agent A "$path" || nl_die "agent A did not restart with --bulk-read $path"
	if [ "$(index_field A states)" = "$N_STATES" ] && [ "$(index_field A indexed)" = "$N_STATES" ] &&
		[ "$(index_field A missing)" = 0 ] && [ "$(index_field A stale)" = 0 ]; then
		nl_pass "--bulk-read $path: restarted A indexed all $N_STATES states"
	else
		nl_fail "--bulk-read $path: A's index: $(nl_ctlq A "index --json")"
	fi
	nl_wait_until "$DEADLINE" nl_file_has "$NL_TMP/agentA.log" "full resend sent: $N_STATES states" &&
		nl_pass "--bulk-read $path: restarted A resent all $N_STATES states" ||
		nl_fail "--bulk-read $path: A's resend: $(grep "resend sent" "$NL_TMP/agentA.log" | tail -1)"

	# a fresh B asks for a bulk update at start
	start_agent B "$path" || nl_die "agent B did not start with --bulk-read $path"
	nl_wait_until "$DEADLINE" nl_bulk_done B && nl_wait_until "$DEADLINE" same_states &&
		nl_pass "--bulk-read $path: B's bulk update at start gave it exactly A's states" ||
		nl_fail "--bulk-read $path: after B's first bulk it holds $(count B) of A's $(count A)"

	# bulk update to B emptied
	flush_table B || nl_fail "--bulk-read $path: B not emptied by flush"
	nl_ctlq B bulk >/dev/null || nl_fail "--bulk-read $path: bulk request refused"
	if nl_wait_until "$DEADLINE" test_count B "$N_STATES" && same_states; then
		nl_pass "--bulk-read $path: bulk update gave B exactly A's $N_STATES states"
	else
		nl_fail "--bulk-read $path: after the bulk B holds $(count B) of A's $(count A)"
	fi

	# expiry: every state times out; each side's expiry pass removes them
	for name in A B; do
		nl_in "${NS[$name]}" "$CTL" --pin-dir "${PIN[$name]}" set timeout udp.first 1 >/dev/null &&
			nl_in "${NS[$name]}" "$CTL" --pin-dir "${PIN[$name]}" set timeout udp.single 1 >/dev/null ||
			nl_fail "--bulk-read $path: cannot shorten $name's timeouts"
	done
	for name in A B; do
		nl_wait_until "$DEADLINE" test_count "$name" 0 &&
			nl_pass "--bulk-read $path: $name's expiry pass removed the timed-out states" ||
			nl_fail "--bulk-read $path: $name still holds $(count "$name") states"
	done
	nl_agent_stop A
	nl_agent_stop B
	return 0
}

iter_ok=0
check_path batch
check_path iter && iter_ok=1

# auto: the iterator exactly when the kernel took it just now
start_agent A auto || nl_die "agent A did not start with --bulk-read auto"
want="batch"
[ "$iter_ok" = 1 ] && want=iter
[ "$(read_path A)" = "$want" ] && nl_pass "--bulk-read auto took $want" ||
	nl_fail "--bulk-read auto took $(read_path A), expected $want"
nl_finish
