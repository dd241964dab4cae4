#!/usr/bin/env bash
# Several peers and IPv6 transport (extensions to pfsync, pfsync-wire.md §4.2):
#
#   fw1 ──┐
#   fw2 ──┼── br0 (a bridge in its own namespace): the sync segment
#   fw3 ──┤   10.211.0.0/24, fd00:211::/64
#   rogue ┘   (a sender that is on the segment but not a peer)
#
# Each firewall runs pfsync-agent on sync0 with its own bpffs; states are
# created on each by BPF_PROG_RUN of its own datapath (build/bench/sync_driver
# fill: UDP flows 10.128.0.0+i, a distinct range per firewall). Checked:
#   - three firewalls, full mesh of unicast IPv4 peers (--syncpeer twice):
#     every firewall ends up with every state of the others; nothing is echoed
#     (each sends exactly the INS of its own states, receives exactly the
#     others'); per-peer packets in/out and last-heard in `pfsyncctl stats`;
#     peers and transport in `pfsyncctl status`
#   - a valid pfsync packet (TTL 255) from the rogue, not a peer: dropped,
#     counted (badsrc), nothing applied; the same from a peer is applied
#   - two firewalls over IPv6 multicast (ff12::f0) and over IPv6 unicast (with
#     --auth-key): states converge, traffic counted in ipackets6/opackets6, not
#     in IPv4, no send error (full packets fit the MTU)
# Every wait polls with a deadline.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. scripts/netns-lib.sh

nl_build
N=200 # states created on each firewall per round
DEADLINE=20

nl_need "$OBJ" "$AGENT" "$CTL" "$DRV"
nl_need_tools python3 ip nsenter

nl_init mp
SW="pfsw-$NL_ID"
nl_netns_add "$SW"
ip -n "$SW" link add br0 type bridge || nl_die "cannot create the bridge"
ip -n "$SW" link set br0 up

# fw1..fw3 and the rogue: one port each on the bridge; no DAD, so IPv6
# addresses (link-local too) are usable at once
join_segment() # NS INDEX
{
	nl_netns_add "$1"
	nl_in "$1" sysctl -qw net.ipv6.conf.default.accept_dad=0
	nl_in "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0
	nl_veth "$1" sync0 "$SW" "p$2"
	ip -n "$SW" link set "p$2" master br0
	nl_addr "$1" sync0 "10.211.0.$2/24"
	nl_addr "$1" sync0 "fd00:211::$2/64"
}
FW=()
for i in 1 2 3; do
	FW[i]="pfm$i-$NL_ID"
	join_segment "${FW[i]}" "$i"
done
ROGUE="pfrg-$NL_ID"
join_segment "$ROGUE" 9

# ---- helpers ---------------------------------------------------------------

ctlq() { nl_ctlq "fw$1" "${@:2}"; } # INDEX CMD [FIELD]: fw$INDEX's socket
count_creator() { nl_count_creator "${PIN[$1]}" "$2"; } # INDEX CREATOR

hostid() { printf '0x%08x' $((0x51510000 + $1)); }

PIN=()
start_agent() # INDEX ARGS...
{
	local i=$1
	shift
	[ -n "${PIN[i]:-}" ] || PIN[i]=$(nl_bpffs_tmp)
	nl_agent_run "$i" "${FW[i]}" "$NL_TMP/fw$i.sock" --syncdev sync0 --hostid "$(hostid "$i")" \
		--pin-dir "${PIN[i]}" --obj "$OBJ" --pfsync-if none --interval 5 -v "$@"
	"$DRV" config "${PIN[i]}" >/dev/null || nl_die "cannot set long timeouts on fw$i"
}

stop_agent() { nl_agent_stop "$1"; } # INDEX

bulk_settled() { nl_bulk_settled "fw$1"; } # INDEX

fill() # INDEX COUNT BASE
{
	nsenter --net="/run/netns/${FW[$1]}" -- "$DRV" fill "${PIN[$1]}" "$2" "$3" 0 >/dev/null
}

has_states_of() # INDEX CREATOR_INDEX COUNT
{
	[ "$(count_creator "$1" "$(hostid "$2")")" = "$3" ]
}

# ---- three firewalls, full mesh of IPv4 unicast peers -----------------------

for i in 1 2 3; do
	peers=()
	for j in 1 2 3; do
		[ "$j" = "$i" ] || peers+=(--syncpeer "10.211.0.$j")
	done
	start_agent "$i" "${peers[@]}"
done
for i in 1 2 3; do
	nl_wait_until 30 bulk_settled "$i" || nl_fail "fw$i: start-up bulk request did not end"
done
ctlq 1 status | nl_has '^pfsync: syncdev: sync0 syncpeer: 10.211.0.2,10.211.0.3 ' ||
	nl_fail "status line: $(ctlq 1 status | head -1)"
ctlq 1 status | nl_has '^transport: IPv4 unicast, 2 peers: 10.211.0.2 10.211.0.3$' ||
	nl_fail "transport line: $(ctlq 1 status | grep transport)"
nl_in "${FW[1]}" "$CTL" --pin-dir "${PIN[1]}" --ctl "$NL_TMP/fw1.sock" status |
	nl_has '^auth: off' || nl_fail "pfsyncctl status does not say auth is off"
[ "$(ctlq 1 "status --json" syncpeers)" = '["10.211.0.2", "10.211.0.3"]' ] ||
	nl_fail "status --json syncpeers: $(ctlq 1 "status --json" syncpeers)"

ins0=()
for i in 1 2 3; do
	ins0[i]=$(ctlq "$i" "stats --json" "in:13")
done
for i in 1 2 3; do
	fill "$i" "$N" $((i * 100000)) || nl_fail "creating $N states on fw$i failed"
done
converged=1
for i in 1 2 3; do
	for j in 1 2 3; do
		if ! nl_wait_until "$DEADLINE" has_states_of "$i" "$j" "$N"; then
			nl_fail "fw$i holds $(count_creator "$i" "$(hostid "$j")") of fw$j's $N states"
			converged=0
		fi
	done
done
[ "$converged" = 1 ] && nl_pass "full mesh of 3: every firewall holds all $((3 * N)) states"

# nothing echoed: each sent the INS of its own N states, received the 2N of the others
echo_ok=1
for i in 1 2 3; do
	out=$(ctlq "$i" "stats --json" "out:13")
	in=$(($(ctlq "$i" "stats --json" "in:13") - ins0[i]))
	[ "$out" = "$N" ] || { nl_fail "fw$i sent $out INS (created $N)"; echo_ok=0; }
	[ "$in" = $((2 * N)) ] || { nl_fail "fw$i received $in INS, expected $((2 * N))"; echo_ok=0; }
	[ "$(ctlq "$i" "stats --json" "out:4")" = 0 ] ||
		{ nl_fail "fw$i sent UPD_C for states it did not change"; echo_ok=0; }
done
[ "$echo_ok" = 1 ] && nl_pass "nothing echoed: each firewall sent $N INS and received $((2 * N))"

# per-peer counters: every peer heard from and sent to
stats_ok=1
for i in 1 2 3; do
	for j in 1 2 3; do
		[ "$i" = "$j" ] && continue
		pin=$(ctlq "$i" "stats --json" "peer=10.211.0.$j=packets_in")
		pout=$(ctlq "$i" "stats --json" "peer=10.211.0.$j=packets_out")
		heard=$(ctlq "$i" "stats --json" "peer=10.211.0.$j=last_heard_ms_ago")
		if [ "${pin:-0}" -lt 1 ] || [ "${pout:-0}" -lt 1 ] || [ "$heard" = null ]; then
			nl_fail "fw$i's stats for peer 10.211.0.$j: in=$pin out=$pout last_heard=$heard"
			stats_ok=0
		fi
	done
done
# each packet went to both peers: per-peer out counts are equal and sum to opackets
# (one snapshot: the agents send repair beacons meanwhile)
snap=$(ctlq 1 "stats --json")
o2=$(python3 "$NL_LIB_DIR/ctlq.py" - "peer=10.211.0.2=packets_out" <<<"$snap")
o3=$(python3 "$NL_LIB_DIR/ctlq.py" - "peer=10.211.0.3=packets_out" <<<"$snap")
out=$(python3 "$NL_LIB_DIR/ctlq.py" - opackets <<<"$snap")
[ "$o2" = "$o3" ] && [ "$((o2 + o3))" = "$out" ] ||
	{ nl_fail "fw1 per-peer out $o2/$o3 vs opackets $out"; stats_ok=0; }
nl_in "${FW[1]}" "$CTL" --pin-dir "${PIN[1]}" --ctl "$NL_TMP/fw1.sock" stats |
	nl_has -E '10\.211\.0\.2 +[1-9][0-9]* +[1-9][0-9]* +0 +0 +[0-9.]+ s ago' ||
	{ nl_fail "pfsyncctl stats has no per-peer line"; stats_ok=0; }
nl_in "${FW[1]}" "$CTL" --pin-dir "${PIN[1]}" --ctl "$NL_TMP/fw1.sock" --json stats |
	python3 -c 'import json,sys; p=json.load(sys.stdin)["pfsync"]["peers"]; assert len(p)==2, p' ||
	{ nl_fail "pfsyncctl --json stats has no peers"; stats_ok=0; }
nl_in "${FW[1]}" "$CTL" --pin-dir "${PIN[1]}" --ctl "$NL_TMP/fw1.sock" stats --prometheus |
	nl_has -E '^pfsync_peer_packets_total\{peer="10\.211\.0\.3",direction="in"\} [1-9]' ||
	{ nl_fail "pfsyncctl stats --prometheus has no per-peer counter"; stats_ok=0; }
[ "$stats_ok" = 1 ] && nl_pass "per-peer packets in/out and last-heard time in stats (text, JSON, Prometheus)"

# ---- a sender on the segment that is not a peer ---------------------------------

badsrc0=$(ctlq 1 "stats --json" badsrc)
nl_in "$ROGUE" python3 "$NL_LIB_DIR/pfsync_forge.py" 10.211.0.1 ins 0x7e570001 0xbadc0de1 || nl_fail "forging failed"
badsrc_up() { [ "$(ctlq 1 "stats --json" badsrc)" -gt "$badsrc0" ]; }
nl_wait_until 5 badsrc_up && nl_pass "packet from a non-peer counted (badsrc)" ||
	nl_fail "badsrc did not rise"
[ "$(count_creator 1 0xbadc0de1)" = 0 ] || nl_fail "state from the non-peer was applied"
# the same packet from a peer's address is applied: the drop above was the source check
nl_in "${FW[2]}" python3 "$NL_LIB_DIR/pfsync_forge.py" 10.211.0.1 ins 0x7e570002 0xbadc0de1 || nl_fail "forging failed"
from_peer() { [ "$(count_creator 1 0xbadc0de1)" = 1 ]; }
nl_wait_until 5 from_peer && nl_pass "the same packet from a peer is applied" ||
	nl_fail "forged INS from a peer's address not applied (the source check proves nothing)"

for i in 1 2 3; do
	stop_agent "$i"
done

# ---- two firewalls over IPv6: multicast ff12::f0, then unicast --------------------

v6_round() # NAME BASE PEER_OF_1 PEER_OF_2 [AGENT_ARGS...]
{
	local name=$1 base=$2 peer1=$3 peer2=$4 ok=1
	shift 4
	PIN[1]=$(nl_bpffs_tmp)
	PIN[2]=$(nl_bpffs_tmp)
	start_agent 1 --syncpeer "$peer1" "$@"
	start_agent 2 --syncpeer "$peer2" "$@"
	nl_wait_until 30 bulk_settled 1 || nl_fail "$name: fw1's bulk request did not end"
	nl_wait_until 30 bulk_settled 2 || nl_fail "$name: fw2's bulk request did not end"
	fill 1 "$N" "$base" || nl_fail "$name: creating states on fw1 failed"
	fill 2 "$N" $((base + 50000)) || nl_fail "$name: creating states on fw2 failed"
	nl_wait_until "$DEADLINE" has_states_of 2 1 "$N" ||
		{ nl_fail "$name: fw2 holds $(count_creator 2 "$(hostid 1)") of fw1's $N states"; ok=0; }
	nl_wait_until "$DEADLINE" has_states_of 1 2 "$N" ||
		{ nl_fail "$name: fw1 holds $(count_creator 1 "$(hostid 2)") of fw2's $N states"; ok=0; }
	for i in 1 2; do
		[ "$(ctlq "$i" "stats --json" opackets6)" -gt 0 ] &&
			[ "$(ctlq "$i" "stats --json" ipackets6)" -gt 0 ] &&
			[ "$(ctlq "$i" "stats --json" opackets)" = 0 ] &&
			[ "$(ctlq "$i" "stats --json" ipackets)" = 0 ] ||
			{ nl_fail "$name: fw$i counters: $(ctlq "$i" "stats --json" | head -c 200)"; ok=0; }
		[ "$(ctlq "$i" "stats --json" oerrors)" = 0 ] ||
			{ nl_fail "$name: fw$i had send errors (packets over the MTU?)"; ok=0; }
		[ "$(ctlq "$i" "stats --json" "out:13")" = "$N" ] ||
			{ nl_fail "$name: fw$i sent $(ctlq "$i" "stats --json" "out:13") INS"; ok=0; }
	done
	[ "$ok" = 1 ] && nl_pass "$name: both firewalls hold each other's $N states, counted as IPv6"
}

v6_round "IPv6 multicast" 300000 ff12::f0 "::"
ctlq 1 status | nl_has '^transport: IPv6 multicast, 1 peer: ff12::f0$' ||
	nl_fail "IPv6 multicast transport line: $(ctlq 1 status | grep transport)"
stop_agent 1
stop_agent 2
# unicast with --auth-key: full packets carry the longer IPv6 header and the trailer
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$NL_TMP/key"
chmod 600 "$NL_TMP/key"
v6_round "IPv6 unicast, authenticated" 400000 fd00:211::2 fd00:211::1 --auth-key "$NL_TMP/key"
ctlq 1 status | nl_has '^transport: IPv6 unicast, 1 peer: fd00:211::2$' ||
	nl_fail "IPv6 unicast transport line: $(ctlq 1 status | grep transport)"
[ "$(ctlq 1 "stats --json" badauth)" = 0 ] && [ "$(ctlq 2 "stats --json" badauth)" = 0 ] ||
	nl_fail "badauth over IPv6 with the same key"
ctlq 2 status | nl_has '^auth: on' || nl_fail "auth not on: $(ctlq 2 status | grep auth)"
stop_agent 1
stop_agent 2

if [ "$NL_FAILED" -ne 0 ]; then
	for i in 1 2 3; do
		nl_log "---- last lines of agent $i's log"
		grep -v 'sent \|received ' "$NL_TMP/agent$i.log" | tail -15 >&2
	done
fi
nl_finish
