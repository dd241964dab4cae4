#!/usr/bin/env bash
# Options and commands that the man pages and README promise and no other
# suite runs:
#
#   fwA ──┐
#   fwB ──┼── br0 (bridge namespace): 10.216.0.0/24 and fd00:216::/64
#   fwC ──┘
#   fwD      alone (a veth pair of its own): no peer ever answers
#
#   - IPv4 and IPv6 unicast --syncpeer mixed in one agent: A syncs with B
#     over IPv4 and with C over IPv6 at once, both ways
#   - the hostid kept in the pinned maps: D started twice without --hostid
#     on one pin dir has the same hostid; on a fresh pin dir another one
#   - READY=1 (sd_notify) once the bulk update failed because no peer answered
#   - -q keeps warnings and errors only; with $JOURNAL_STREAM naming stderr
#     every line carries its syslog priority (<4>warning, <6>info)
#   - pfsyncctl set maxupd / set limit states / set timeout NAME N and
#     NAME 0 (back to the default), timeouts, rules flush, and flush with no
#     agent running (the sweep program run by pfsyncctl itself)
# Every wait polls with a deadline.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. scripts/netns-lib.sh

nl_build
N=50
DEADLINE=20
nl_need "$OBJ" "$AGENT" "$CTL" "$DRV"
nl_need_tools python3 ip nsenter bpftool

nl_init op
SW="posw-$NL_ID"
nl_netns_add "$SW"
ip -n "$SW" link add br0 type bridge || nl_die "cannot create the bridge"
ip -n "$SW" link set br0 up

declare -A NS PIN HOSTID
port=0
join_segment() # NAME N: 10.216.0.N and fd00:216::N
{
	port=$((port + 1))
	NS[$1]="po$1-$NL_ID"
	nl_netns_add "${NS[$1]}"
	nl_veth "${NS[$1]}" sync0 "$SW" "p$port"
	ip -n "$SW" link set "p$port" master br0
	nl_addr "${NS[$1]}" sync0 "10.216.0.$2/24"
	nl_addr "${NS[$1]}" sync0 "fd00:216::$2/64"
}
join_segment A 1
join_segment B 2
join_segment C 3
HOSTID[A]=0xa1a1a1a1 HOSTID[B]=0xb1b1b1b1 HOSTID[C]=0xc1c1c1c1
NS[D]="poD-$NL_ID"
nl_netns_add "${NS[D]}"
ip -n "${NS[D]}" link add sync0 type veth peer name sync1 || nl_die "cannot create fwD's veth"
ip -n "${NS[D]}" link set sync0 up
ip -n "${NS[D]}" link set sync1 up
nl_addr "${NS[D]}" sync0 10.217.0.1/24

ctl() # NAME ARGS...: pfsyncctl on NAME's pinned maps and control socket
{
	local name=$1
	shift
	"$CTL" --pin-dir "${PIN[$name]}" --ctl "$NL_TMP/$name.sock" "$@"
}

start_agent() # NAME ARGS...
{
	local name=$1
	shift
	[ -n "${PIN[$name]:-}" ] || PIN[$name]=$(nl_bpffs_tmp)
	nl_agent_run "$name" "${NS[$name]}" "$NL_TMP/$name.sock" --syncdev sync0 \
		--pin-dir "${PIN[$name]}" --obj "$OBJ" --pfsync-if none --interval 5 "$@"
	"$DRV" config "${PIN[$name]}" >/dev/null || nl_die "cannot set long timeouts on $name"
}

BASE=0
fill() # NAME COUNT: states with fresh tuples
{
	nsenter --net="/run/netns/${NS[$1]}" -- "$DRV" fill "${PIN[$1]}" "$2" "$BASE" 0 >/dev/null
	local rc=$?
	BASE=$((BASE + 10000))
	return $rc
}

count_of() { nl_count_creator "${PIN[$1]}" "$2"; } # NAME CREATOR: states of that creator in NAME's map
count_is() { [ "$(count_of "$1" "$2")" = "$3" ]; } # NAME CREATOR N

# ---- fwD: no --hostid, no peer; READY=1 once the bulk update failed ----------------
# (twelve requests two seconds apart: started first, checked after the sync part)
nl_notify_listen "$NL_TMP/notify.sock" "$NL_TMP/notify.log"
NOTIFY_SOCKET=$NL_TMP/notify.sock start_agent D
HOST_D=$(nl_ctlq D "status --json" hostid)

# ---- IPv4 and IPv6 unicast peers in one agent -----------------------------------------
start_agent A --hostid "${HOSTID[A]}" --syncpeer 10.216.0.2 --syncpeer fd00:216::3
start_agent B --hostid "${HOSTID[B]}" --syncpeer 10.216.0.1
start_agent C --hostid "${HOSTID[C]}" --syncpeer fd00:216::1
nl_ctlq A status | nl_has '^transport: .*10\.216\.0\.2.*fd00:216::3' &&
	nl_pass "A's status names an IPv4 and an IPv6 peer: $(nl_ctlq A status | grep '^transport')" ||
	nl_fail "A's transport line: $(nl_ctlq A status | grep '^transport')"
fill A "$N" || nl_fail "creating states on A failed"
fill B "$N" || nl_fail "creating states on B failed"
fill C "$N" || nl_fail "creating states on C failed"
nl_wait_until "$DEADLINE" count_is B "${HOSTID[A]}" "$N" &&
	nl_wait_until "$DEADLINE" count_is C "${HOSTID[A]}" "$N" &&
	nl_pass "A's $N states reached B (IPv4) and C (IPv6)" ||
	nl_fail "A's $N states: B holds $(count_of B "${HOSTID[A]}"), C holds $(count_of C "${HOSTID[A]}")"
nl_wait_until "$DEADLINE" count_is A "${HOSTID[B]}" "$N" &&
	nl_wait_until "$DEADLINE" count_is A "${HOSTID[C]}" "$N" &&
	nl_pass "A applies both peers' states: B's over IPv4, C's over IPv6" ||
	nl_fail "A holds $(count_of A "${HOSTID[B]}") of B's and $(count_of A "${HOSTID[C]}") of C's $N states"
[ "$(nl_ctlq A "stats --json" ipackets)" -ge 1 ] && [ "$(nl_ctlq A "stats --json" ipackets6)" -ge 1 ] &&
	nl_pass "A counted packets in over IPv4 and over IPv6" ||
	nl_fail "A's ipackets $(nl_ctlq A "stats --json" ipackets), ipackets6 $(nl_ctlq A "stats --json" ipackets6)"
for peer in 10.216.0.2 fd00:216::3; do
	[ "$(nl_ctlq A "stats --json" "peer=$peer=packets_out")" -ge 1 ] ||
		nl_fail "A sent nothing to $peer"
done

# ---- -q and journal priorities ------------------------------------------------------------
nl_agent_stop C
# journal_run NAME ARGS...: agent NAME on fwC, its stderr a file that $JOURNAL_STREAM names
journal_run()
{
	local name=$1 log=$NL_TMP/agent$1.log
	shift
	: >"$log"
	PIN[$name]=${PIN[C]}
	NS[$name]=${NS[C]}
	JOURNAL_STREAM=$(stat -c %d:%i "$log") start_agent "$name" --hostid "${HOSTID[C]}" "$@"
}
journal_run Cq -q --syncpeer fd00:216::1
# a packet from B, which is no peer of C: a warning
nl_in "${NS[B]}" python3 "$NL_LIB_DIR/pfsync_forge.py" 10.216.0.3 ins 0x5eed0001 0xfeedf00d ||
	nl_fail "forging failed"
nl_wait_until 10 nl_file_has "$NL_TMP/agentCq.log" "not a --syncpeer" || nl_fail "no warning from C"
nl_agent_stop Cq
grep -x '<4>warning: pfsync packet from 10.216.0.2 dropped: not a --syncpeer' "$NL_TMP/agentCq.log" \
	>/dev/null && nl_pass "-q under the journal: the warning with priority <4>" ||
	nl_fail "-q warning line: $(head -3 "$NL_TMP/agentCq.log")"
grep -v '^<[34]>' "$NL_TMP/agentCq.log" >"$NL_TMP/notquiet.txt"
[ ! -s "$NL_TMP/notquiet.txt" ] && nl_pass "-q: only warnings and errors ($(wc -l <"$NL_TMP/agentCq.log") lines)" ||
	nl_fail "-q let through: $(head -3 "$NL_TMP/notquiet.txt")"
journal_run Ci --syncpeer fd00:216::1
nl_wait_until 10 nl_file_has "$NL_TMP/agentCi.log" '^<6>info: running: ' &&
	nl_pass "without -q under the journal: info lines with priority <6>" ||
	nl_fail "info line: $(head -3 "$NL_TMP/agentCi.log")"
nl_agent_stop Ci
grep -E '^[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} pfsync-agent info: running: ' "$NL_TMP/agentA.log" >/dev/null &&
	nl_pass "outside the journal: timestamped lines, no priority prefix" ||
	nl_fail "A's log lines: $(head -2 "$NL_TMP/agentA.log")"

# ---- READY=1 with no peer, the hostid across restarts -------------------------------------
if nl_wait_until 40 nl_file_has "$NL_TMP/notify.log" "READY=1"; then
	grep "READY=1" "$NL_TMP/notify.log" | head -1 | nl_has "STATUS=bulk update failed" &&
		nl_pass "READY=1 when no peer answered ($(grep -m1 READY=1 "$NL_TMP/notify.log"))" ||
		nl_fail "READY=1 without 'bulk update failed': $(cat "$NL_TMP/notify.log")"
else
	nl_fail "no READY=1 from the lone fwD: $(tr '\n' ';' <"$NL_TMP/notify.log")"
fi
fill D "$N" || nl_fail "creating states on D failed"
nl_agent_stop D
start_agent D
[ "$(nl_ctlq D "status --json" hostid)" = "$HOST_D" ] &&
	nl_pass "restarted without --hostid: the hostid from the pinned maps ($(printf '0x%08x' "$HOST_D"))" ||
	nl_fail "hostid $HOST_D before the restart, $(nl_ctlq D "status --json" hostid) after"
count_is D "$HOST_D" "$N" || nl_fail "D's $N states not kept across the restart: $(count_of D "$HOST_D")"
PIN[E]=$(nl_bpffs_tmp) NS[E]=${NS[D]}
nl_agent_stop D
start_agent E
host_e=$(nl_ctlq E "status --json" hostid)
[ -n "$host_e" ] && [ "$host_e" != "$HOST_D" ] && [ "$host_e" != 0 ] &&
	nl_pass "a fresh pin dir without --hostid: a new hostid ($(printf '0x%08x' "$host_e"))" ||
	nl_fail "fresh pin dir: hostid $host_e (the other was $HOST_D)"
nl_agent_stop E

# ---- pfsyncctl set / timeouts / rules flush, agent running ---------------------------------
start_agent D
timeout_of() # NAME: its value in `timeouts --json` (names hold dots: no ctlq.py path)
{
	ctl D timeouts --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}
default_est=$(timeout_of tcp.established)
[ -n "$default_est" ] || nl_fail "timeouts --json has no tcp.established"
ctl D set timeout tcp.established 4321 >/dev/null && [ "$(timeout_of tcp.established)" = 4321 ] &&
	ctl D timeouts | nl_has '^tcp.established  *4321s$' &&
	nl_pass "set timeout tcp.established 4321: timeouts shows it" ||
	nl_fail "set timeout: $(ctl D timeouts | grep tcp.established)"
ctl D set timeout tcp.established 0 >/dev/null && [ "$(timeout_of tcp.established)" = "$default_est" ] &&
	[ "$default_est" != 4321 ] &&
	nl_pass "set timeout tcp.established 0: back to the default ($default_est)" ||
	nl_fail "set timeout ... 0: $(timeout_of tcp.established), default $default_est"
ctl D set maxupd 9 >/dev/null && [ "$(timeout_of maxupd)" = 9 ] &&
	nl_ctlq D status | nl_has ' maxupd: 9 ' &&
	nl_pass "set maxupd 9: in the config and in the agent's status" ||
	nl_fail "set maxupd: $(timeout_of maxupd), agent: $(nl_ctlq D status | grep maxupd)"
ctl D set limit states 5000 >/dev/null && [ "$(timeout_of limit_states)" = 5000 ] &&
	nl_pass "set limit states 5000" || nl_fail "set limit states: $(timeout_of limit_states)"
ctl D set limit states 4000000000 >/dev/null 2>"$NL_TMP/limit.err"
rc=$?
[ $rc = 1 ] && grep 'above the table size' "$NL_TMP/limit.err" >/dev/null &&
	[ "$(timeout_of limit_states)" = 5000 ] &&
	nl_pass "a state limit above the table size is refused, the old one kept" ||
	nl_fail "limit above the table: exit $rc, $(cat "$NL_TMP/limit.err"), now $(timeout_of limit_states)"
printf 'block in all\npass in proto tcp to any port 22\n' >"$NL_TMP/rules.conf"
ctl D rules load "$NL_TMP/rules.conf" >/dev/null || nl_fail "rules load failed"
rules_n() { ctl D rules --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
[ "$(rules_n)" = 2 ] || nl_fail "rules load: $(ctl D rules)"
ctl D rules flush >/dev/null && [ "$(rules_n)" = 0 ] &&
	nl_pass "rules flush empties the 2-rule set" || nl_fail "rules flush: $(ctl D rules)"

# ---- flush without an agent -------------------------------------------------------------------
count_is D "$HOST_D" "$N" || nl_fail "D holds $(count_of D "$HOST_D") states before the flush, not $N"
nl_agent_stop D
ctl D flush >"$NL_TMP/flush.out" 2>&1 && nl_has "^$N states cleared (agent not reachable" <"$NL_TMP/flush.out" &&
	count_is D "$HOST_D" 0 &&
	nl_pass "flush with no agent: $(cat "$NL_TMP/flush.out")" ||
	nl_fail "flush with no agent: $(cat "$NL_TMP/flush.out"); $(count_of D "$HOST_D") left"

if [ "$NL_FAILED" -ne 0 ]; then
	for name in A B C D; do
		nl_log "---- last lines of agent $name's log"
		tail -8 "$NL_TMP/agent$name.log" >&2
	done
fi
nl_finish
