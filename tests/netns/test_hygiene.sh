#!/usr/bin/env bash
# Restarts, identities, the peer table and the table-size-derived adaptive
# timeouts (issue 13), on two firewalls joined by a sync link:
#
#   fwA lan0 <-> lan1 (a veth pair inside fwA, for --attach)
#   fwA sync0 10.219.3.1 <-- veth --> 10.219.3.2 sync0 fwB
#
# Checked:
#   - fwA's agent with --attach lan0 --attach lan1, killed with -9 twice and
#     started again each time: then exactly one XDP program and one tc
#     egress filter on each interface (bpftool net, tc filter show), no
#     libbpf "Exclusivity flag" message; after SIGTERM none at all
#   - --states-max 2000: `pfsyncctl timeouts` shows adaptive.start 1200 and
#     adaptive.end 2400 (60 % / 120 % of the table), the limit 2000
#   - thousands of pfsync packets from random sources that each fail a check
#     (TTL 254, version 5, length beyond the packet, bad value) reach fwB:
#     each is counted, none enters the peer table; fwA's first valid packet
#     does (the real peer is learned)
#   - an INS naming an identity fwB holds under another key (20 of them,
#     other ports) is refused and counted (dupident), one state stays
#   - both identity indexes cover their whole tables (`pfsyncctl index`)
#     after local states, imported ones and the refused clashes
# Every wait polls with a deadline.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. scripts/netns-lib.sh

nl_build
DEADLINE=20
JUNK_BATCH=500
JUNK_BATCHES=8
CLASH_CREATOR=0xc1c1c1c1

nl_need "$OBJ" "$AGENT" "$CTL" "$DRV"
nl_need_tools python3 ip nsenter bpftool tc

nl_init hy
NSA="pfha-$NL_ID"
NSB="pfhb-$NL_ID"
nl_netns_add "$NSA"
nl_netns_add "$NSB"
nl_veth "$NSA" sync0 "$NSB" sync0
nl_addr "$NSA" sync0 10.219.3.1/24
nl_addr "$NSB" sync0 10.219.3.2/24
ip -n "$NSA" link add lan0 type veth peer name lan1 || nl_die "cannot create fwA's veth pair"
ip -n "$NSA" link set dev lan0 up
ip -n "$NSA" link set dev lan1 up
# nl_bpffs_tmp runs in a $(...) subshell: its own cleanup entry is lost, so register the umount here
PIN_A=$(nl_bpffs_tmp) && nl_on_cleanup "umount -l '$PIN_A'"
PIN_B=$(nl_bpffs_tmp) && nl_on_cleanup "umount -l '$PIN_B'"

start_a() # ARGS...
{
	nl_agent_run A "$NSA" "$NL_TMP/A.sock" --syncdev sync0 --pin-dir "$PIN_A" --obj "$OBJ" \
		--pfsync-if none --hostid 0xa1a1a1a1 "$@"
}

crash_a()
{
	local pid=${NL_AGENT_PID[A]}
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null
	NL_AGENT_PID[A]=
	rm -f "$NL_TMP/A.sock"
}

xdp_progs() # IF: XDP programs attached (bpftool net)
{
	nl_in "$NSA" bpftool -j net show dev "$1" |
		python3 -c 'import json,sys; print(sum(len(e.get("xdp", [])) for e in json.load(sys.stdin)))'
}

tc_filters() # IF: bpf filters on egress
{
	local out
	out=$(nl_in "$NSA" tc filter show dev "$1" egress 2>/dev/null)
	grep -c 'direct-action' <<<"$out"
}

# ---- restarts: kill -9 twice, then SIGTERM ------------------------------------

ATTACH=(--attach lan0 --attach lan1 --states-max 2000)
start_a "${ATTACH[@]}"
for _ in 1 2; do
	crash_a
	start_a "${ATTACH[@]}"
done
for ifname in lan0 lan1; do
	x=$(xdp_progs "$ifname") t=$(tc_filters "$ifname")
	if [ "$x" = 1 ] && [ "$t" = 1 ]; then
		nl_pass "after two kill -9 and restarts: one XDP program, one tc egress filter on $ifname"
	else
		nl_fail "after two kill -9 and restarts $ifname has $x XDP program(s), $t tc filter(s)"
	fi
done
if grep -i "exclusivity" "$NL_TMP/agentA.log" >/dev/null; then
	nl_fail "libbpf noise at start: $(grep -i exclusivity "$NL_TMP/agentA.log" | head -1)"
else
	nl_pass "no libbpf exclusivity message in three starts"
fi

# ---- adaptive timeouts from the table size ----------------------------------------

"$CTL" --pin-dir "$PIN_A" timeouts --json >"$NL_TMP/timeouts.json" ||
	nl_fail "pfsyncctl timeouts --json failed"
tmo() { python3 "$NL_LIB_DIR/ctlq.py" - "$1" <"$NL_TMP/timeouts.json"; }
if [ "$(tmo adaptive.start)" = 1200 ] && [ "$(tmo adaptive.end)" = 2400 ] &&
	[ "$(tmo limit_states)" = 2000 ] && [ "$(tmo table_size)" = 2000 ]; then
	nl_pass "--states-max 2000: adaptive.start 1200, adaptive.end 2400 (pfsyncctl timeouts)"
else
	nl_fail "--states-max 2000: pfsyncctl timeouts says $(cat "$NL_TMP/timeouts.json")"
fi

nl_agent_stop A || nl_fail "agent A did not stop cleanly"
left=""
for ifname in lan0 lan1; do
	x=$(xdp_progs "$ifname") t=$(tc_filters "$ifname")
	[ "$x" = 0 ] && [ "$t" = 0 ] || left="$left $ifname: $x XDP, $t tc;"
done
if [ -z "$left" ]; then
	nl_pass "SIGTERM: nothing left attached on lan0 and lan1"
else
	nl_fail "SIGTERM left programs attached:$left"
fi

# ---- the peer table: forged sources are never learned ------------------------------

nl_agent_run B "$NSB" "$NL_TMP/B.sock" --syncdev sync0 --pin-dir "$PIN_B" --obj "$OBJ" \
	--pfsync-if none --hostid 0xb2b2b2b2
"$DRV" config "$PIN_B" >/dev/null || nl_die "cannot set long timeouts on fwB"

learned_peers() # the senders fwB learned (not its group)
{
	nl_ctlq B "stats --json" peers |
		python3 -c 'import json,sys; print(" ".join(p["peer"] for p in json.load(sys.stdin) if not p["group"]))'
}

rejected() # packets fwB counted as failing a check
{
	nl_ctlq B "stats --json" >"$NL_TMP/bstats.json" || return 1
	local sum=0 c
	for c in badttl badver badlen badval; do
		sum=$((sum + $(python3 "$NL_LIB_DIR/ctlq.py" - "$c" <"$NL_TMP/bstats.json")))
	done
	echo "$sum"
}

rejected_reach() { [ "$(rejected)" -ge "$1" ]; } # N

sent=0
for ((batch = 0; batch < JUNK_BATCHES; batch++)); do
	nl_in "$NSA" python3 scripts/pfsync_forge.py --src random --count "$JUNK_BATCH" \
		224.0.0.240 invalid $((batch * JUNK_BATCH + 1)) 0x5eed5eed ||
		nl_die "pfsync_forge.py failed"
	sent=$((sent + JUNK_BATCH))
	# each batch counted before the next, so the receive buffer never overflows
	nl_wait_until "$DEADLINE" rejected_reach "$sent" ||
		nl_die "fwB counted $(rejected) of $sent invalid packets"
done
peers=$(learned_peers)
if [ -z "$peers" ]; then
	nl_pass "$sent invalid packets from random sources counted ($(rejected)), no peer learned"
else
	nl_fail "invalid packets filled the peer table: $(wc -w <<<"$peers") learned"
fi

start_a
peer_is_a() { [ "$(learned_peers)" = 10.219.3.1 ]; }
if nl_wait_until "$DEADLINE" peer_is_a; then
	nl_pass "the real peer 10.219.3.1 is learned from its first valid packet, alone"
else
	nl_fail "fwB's learned peers: '$(learned_peers)', expected 10.219.3.1 alone"
fi

# ---- identities ------------------------------------------------------------------

forge_ins() # ID SPORT: a valid INS from fwA's address
{
	nl_in "$NSA" python3 scripts/pfsync_forge.py --src 10.219.3.1 224.0.0.240 ins "$1" \
		"$CLASH_CREATOR" "$2"
}
has_clash_state() { [ "$(nl_count_creator "$PIN_B" "$CLASH_CREATOR")" = 1 ]; }
dupident() { nl_ctlq B "stats --json" dupident; }
dupident_is() { [ "$(dupident)" = "$1" ]; }

forge_ins 0x77 5000
nl_wait_until "$DEADLINE" has_clash_state || nl_die "fwB did not import the forged INS"
for ((port = 5001; port <= 5020; port++)); do
	forge_ins 0x77 "$port"
done
if nl_wait_until "$DEADLINE" dupident_is 20 && has_clash_state; then
	nl_pass "20 INS naming a held identity under other keys: refused, dupident 20, one state"
else
	nl_fail "identity clash: dupident $(dupident), $(nl_count_creator "$PIN_B" "$CLASH_CREATOR") states"
fi

# local states on fwB (BPF_PROG_RUN of its datapath), sent to fwA
nl_in "$NSB" "$DRV" fill "$PIN_B" 300 0 0 >/dev/null || nl_fail "cannot create states on fwB"
index_field() { python3 "$NL_LIB_DIR/ctlq.py" - "$1" <"$NL_TMP/index.json"; }
index_whole() # A|B MIN_STATES
{
	"$CTL" --ctl "$NL_TMP/$1.sock" index --json >"$NL_TMP/index.json" || return 1
	[ "$(index_field states)" -ge "$2" ] && [ "$(index_field missing)" = 0 ] &&
		[ "$(index_field stale)" = 0 ]
}
for fw in B A; do
	if nl_wait_until "$DEADLINE" index_whole "$fw" 300; then
		nl_pass "fw$fw: the index covers the table ($(cat "$NL_TMP/index.json"))"
	else
		nl_fail "fw$fw: index against table: $(cat "$NL_TMP/index.json")"
	fi
done

nl_agent_stop A || nl_fail "agent A did not stop cleanly"
nl_agent_stop B || nl_fail "agent B did not stop cleanly"
nl_finish
