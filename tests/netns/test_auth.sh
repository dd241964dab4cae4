#!/usr/bin/env bash
# Authenticated pfsync (--auth-key, agent/auth.h) and --min-ttl:
#
#   fwA ──┐
#   fwB ──┼── br0 (bridge namespace): sync segment 10.212.0.0/24, group 224.0.0.240
#   spoof ┤   (an attacker on the segment: crafts, captures, replays)
#   fwD ──┘   (no key: reads the signed packets as an OpenBSD receiver would)
#
#   fwR1 (10.213.1.1) ── router ── (10.213.2.1) fwR2: sync across one router hop
#
# States are created on a firewall by BPF_PROG_RUN of its own datapath
# (build/bench/sync_driver fill). Checked:
#   - a key file readable by group/others, and --min-ttl without a key: the
#     agent refuses to start and says why
#   - A and B with the same key sync; badauth stays 0
#   - the spoofer sends valid pfsync v6 (TTL 255, A's source address) INS,
#     DEL_C and CLR, and an INS with a trailer of the right shape but a made-up
#     MAC, at B: no state appears or disappears, badauth counts each one
#   - an authenticated CLR captured on the segment and replayed after A
#     re-created its states is rejected (replayed) and changes nothing
#   - key rotation (add the new key second, sign with it, drop the old):
#     every state created during the rotation reaches B, badauth stays put
#   - fwD without a key still applies A's signed packets (the trailer lies
#     after the length the pfsync header announces)
#   - across a router (TTL 254): with --auth-key and --min-ttl 254 states sync
#     both ways; without a key the packets are dropped as badttl
# Every wait polls with a deadline.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. scripts/netns-lib.sh

nl_build
N=100
DEADLINE=20
HOST_A=0xa5a5a5a5

nl_need "$OBJ" "$AGENT" "$DRV"
nl_need_tools python3 ip nsenter bpftool

nl_init au
SW="pasw-$NL_ID"
nl_netns_add "$SW"
ip -n "$SW" link add br0 type bridge || nl_die "cannot create the bridge"
ip -n "$SW" link set br0 up

declare -A NS ADDR PIN HOSTID
port=0
join_segment() # NAME ADDR
{
	port=$((port + 1))
	NS[$1]="pa$1-$NL_ID"
	ADDR[$1]=$2
	nl_netns_add "${NS[$1]}"
	nl_veth "${NS[$1]}" sync0 "$SW" "p$port"
	ip -n "$SW" link set "p$port" master br0
	nl_addr "${NS[$1]}" sync0 "$2/24"
}
join_segment A 10.212.0.1
join_segment B 10.212.0.2
join_segment S 10.212.0.9
join_segment D 10.212.0.4
HOSTID[A]=$HOST_A HOSTID[B]=0xb5b5b5b5 HOSTID[D]=0xd5d5d5d5

# the routed pair
NS[R1]="par1-$NL_ID" NS[R2]="par2-$NL_ID" RTR="part-$NL_ID"
HOSTID[R1]=0x1e1e1e1e HOSTID[R2]=0x2e2e2e2e
nl_netns_add "${NS[R1]}"
nl_netns_add "${NS[R2]}"
nl_netns_add "$RTR"
nl_veth "${NS[R1]}" sync0 "$RTR" r1
nl_veth "$RTR" r2 "${NS[R2]}" sync0
nl_addr "${NS[R1]}" sync0 10.213.1.1/24
nl_addr "$RTR" r1 10.213.1.254/24
nl_addr "$RTR" r2 10.213.2.254/24
nl_addr "${NS[R2]}" sync0 10.213.2.1/24
ip -n "${NS[R1]}" route add default via 10.213.1.254
ip -n "${NS[R2]}" route add default via 10.213.2.254
nl_in "$RTR" sysctl -qw net.ipv4.ip_forward=1

# keys: only the owner may read them
hexkey() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
hexkey >"$NL_TMP/k1"
hexkey >"$NL_TMP/k2"
chmod 600 "$NL_TMP/k1" "$NL_TMP/k2"

# ---- helpers ---------------------------------------------------------------

# The attacker's tools: scripts/pfsync_forge.py (--src: A's address) and
# capture.py OUT SRC ACTION READY: the first pfsync packet from SRC whose
# first section is ACTION, as hex (READY is touched once listening).
cat >"$NL_TMP/capture.py" <<'PY'
import socket, sys
out, src, action, ready = sys.argv[1], socket.inet_aton(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
s.bind(("sync0", 0))
s.settimeout(60)
open(ready, "w").close()
while True:
    p = s.recv(65536)
    ihl = (p[0] & 15) * 4
    if p[9] == 240 and p[12:16] == src and len(p) > ihl + 24 and p[ihl + 20] == action:
        open(out, "w").write(p.hex())
        break
PY
states() # NAME CMD CREATOR [ID]: nl_states on NAME's table
{
	nl_states "${PIN[$1]}" "${@:2}"
}

count_of() # NAME CREATOR_NAME
{
	nl_count_creator "${PIN[$1]}" "${HOSTID[$2]}"
}

start_agent() # NAME ARGS...
{
	local name=$1
	shift
	[ -n "${PIN[$name]:-}" ] || PIN[$name]=$(nl_bpffs_tmp)
	nl_agent_run "$name" "${NS[$name]}" "$NL_TMP/$name.sock" --syncdev sync0 \
		--hostid "${HOSTID[$name]}" --pin-dir "${PIN[$name]}" --obj "$OBJ" \
		--pfsync-if none --interval 5 -v "$@"
	"$DRV" config "${PIN[$name]}" >/dev/null || nl_die "cannot set long timeouts on $name"
}

stop_agent() { nl_agent_stop "$1"; } # NAME

BASE=0
fill() # NAME COUNT: states with fresh tuples
{
	nsenter --net="/run/netns/${NS[$1]}" -- "$DRV" fill "${PIN[$1]}" "$2" "$BASE" 0 >/dev/null
	local rc=$?
	BASE=$((BASE + 10000))
	return $rc
}

count_is() # NAME CREATOR_NAME N
{
	[ "$(count_of "$1" "$2")" = "$3" ]
}

badauth() { nl_ctlq "$1" "stats --json" badauth; }

# an agent that must refuse to start: exit status 2 and MESSAGE in its output
refuses() # WHAT MESSAGE ARGS...
{
	local what=$1 msg=$2 out rc
	shift 2
	out=$(timeout 10 nsenter --net="/run/netns/${NS[A]}" -- "$AGENT" --syncdev sync0 \
		--pin-dir "$NL_TMP/never" --ctl "$NL_TMP/never.sock" --pfsync-if none "$@" 2>&1)
	rc=$?
	if [ "$rc" = 2 ] && grep -q -- "$msg" <<<"$out"; then
		nl_pass "$what: refused ($(head -1 <<<"$out" | sed 's/.*error: //'))"
	else
		nl_fail "$what: exit $rc, output: $out"
	fi
}

# ---- start-up refusals ------------------------------------------------------------

cp "$NL_TMP/k1" "$NL_TMP/k1.open"
chmod 640 "$NL_TMP/k1.open"
refuses "group-readable key file" "group or others" --auth-key "$NL_TMP/k1.open"
chmod 604 "$NL_TMP/k1.open"
refuses "world-readable key file" "group or others" --auth-key "$NL_TMP/k1.open"
refuses "--min-ttl without --auth-key" "needs --auth-key" --min-ttl 254
[ -e "$NL_TMP/never" ] && nl_fail "a refused agent created its pin dir"

# ---- A and B share a key --------------------------------------------------------

start_agent A --auth-key "$NL_TMP/k1"
start_agent B --auth-key "$NL_TMP/k1"
nl_wait_until 30 nl_bulk_settled A || nl_fail "A's bulk request did not end"
nl_wait_until 30 nl_bulk_settled B || nl_fail "B's bulk request did not end"
nl_ctlq B status | nl_has '^auth: on (HMAC-SHA256, signing key [0-9a-f]\{8\}), min-ttl 255$' ||
	nl_fail "status auth line: $(nl_ctlq B status | grep auth)"
[ "$(nl_ctlq B "status --json" auth)" = true ] || nl_fail "status --json auth is not true"
KEYID1=$(nl_ctlq A "status --json" auth_keys | tr -d '[]" ')
fill A "$N" || nl_fail "creating states on A failed"
nl_wait_until "$DEADLINE" count_is B A "$N" && nl_pass "A -> B with --auth-key: $N states" ||
	nl_fail "B holds $(count_of B A) of A's $N states"
[ "$(badauth B)" = 0 ] && [ "$(badauth A)" = 0 ] ||
	nl_fail "badauth A=$(badauth A) B=$(badauth B) with the same key"
[ "$(nl_ctlq B "stats --json" auth_dropped.unauthenticated)" = 0 ] || nl_fail "auth_dropped not 0"
# full packets with the trailer still fit the MTU (DF: an oversized one fails to send)
[ "$(nl_ctlq A "stats --json" oerrors)" = 0 ] || nl_fail "A had $(nl_ctlq A "stats --json" oerrors) send errors"

# ---- spoofed packets from the segment -------------------------------------------

held=$(count_of B A)
victim=$(states B first-id "$HOST_A")
ba0=$(badauth B)
nl_in "${NS[S]}" python3 "$NL_LIB_DIR/pfsync_forge.py" --src "${ADDR[A]}" "${ADDR[B]}" ins 0x5bad0001 "$HOST_A" &&
	nl_in "${NS[S]}" python3 "$NL_LIB_DIR/pfsync_forge.py" --src "${ADDR[A]}" "${ADDR[B]}" delc "$victim" "$HOST_A" &&
	nl_in "${NS[S]}" python3 "$NL_LIB_DIR/pfsync_forge.py" --src "${ADDR[A]}" "${ADDR[B]}" clr "$HOST_A" &&
	nl_in "${NS[S]}" python3 "$NL_LIB_DIR/pfsync_forge.py" --src "${ADDR[A]}" "${ADDR[B]}" forged 0x5bad0002 \
		"$HOST_A" "$KEYID1" || nl_fail "spoofing failed"
four_more() { [ "$(badauth B)" -ge $((ba0 + 4)) ]; }
if nl_wait_until 5 four_more; then
	[ "$(badauth B)" = $((ba0 + 4)) ] || nl_fail "badauth rose by $(($(badauth B) - ba0)), not 4"
	[ "$(nl_ctlq B "stats --json" auth_dropped.unauthenticated)" = 3 ] &&
		[ "$(nl_ctlq B "stats --json" auth_dropped.forged)" = 1 ] ||
		nl_fail "auth_dropped: $(nl_ctlq B "stats --json" auth_dropped)"
	nl_pass "spoofed INS, DEL_C, CLR and a forged trailer: badauth counted each (4)"
else
	nl_fail "badauth on B rose by $(($(badauth B) - ba0)) for 4 spoofed packets"
fi
nl_absent states B has-id "$HOST_A" 0x5bad0001 || nl_fail "spoofed INS created a state (or B unreadable)"
nl_absent states B has-id "$HOST_A" 0x5bad0002 ||
	nl_fail "INS with a forged trailer created a state (or B unreadable)"
states B has-id "$HOST_A" "$victim" || nl_fail "spoofed DEL_C removed state $victim"
[ "$(count_of B A)" = "$held" ] && nl_pass "no state appeared or disappeared on B ($held held)" ||
	nl_fail "B holds $(count_of B A) of A's states, had $held"
[ "$(nl_ctlq B "stats --json" in:0)" = 0 ] || nl_fail "B counted a received CLR"

# ---- a captured authenticated packet, replayed later --------------------------------

rm -f "$NL_TMP/cap.ready"
nsenter --net="/run/netns/${NS[S]}" -- python3 "$NL_TMP/capture.py" "$NL_TMP/clr.hex" \
	"${ADDR[A]}" 0 "$NL_TMP/cap.ready" &
cap_pid=$!
nl_on_cleanup "kill $cap_pid"
nl_wait_until 5 test -e "$NL_TMP/cap.ready" || nl_fail "capture did not start"
nl_ctlq A flush >/dev/null || nl_fail "flush on A failed"
nl_wait_until "$DEADLINE" count_is B A 0 || nl_fail "A's authenticated CLR did not empty B"
wait "$cap_pid" && [ -s "$NL_TMP/clr.hex" ] || nl_fail "the CLR was not captured"
fill A "$N" || nl_fail "creating states on A failed"
nl_wait_until "$DEADLINE" count_is B A "$N" || nl_fail "B holds $(count_of B A) of A's new $N states"
ba0=$(badauth B)
rp0=$(nl_ctlq B "stats --json" auth_dropped.replayed)
nl_in "${NS[S]}" python3 "$NL_LIB_DIR/pfsync_forge.py" --src "${ADDR[A]}" "${ADDR[B]}" replay "$NL_TMP/clr.hex" ||
	nl_fail "replay failed"
one_more() { [ "$(badauth B)" -gt "$ba0" ]; }
if nl_wait_until 5 one_more && [ "$(nl_ctlq B "stats --json" auth_dropped.replayed)" = $((rp0 + 1)) ]; then
	nl_pass "replayed CLR rejected (counted as replayed)"
else
	nl_fail "replayed CLR: badauth $ba0 -> $(badauth B), replayed $rp0 -> $(nl_ctlq B "stats --json" auth_dropped.replayed)"
fi
count_is B A "$N" || nl_fail "replayed CLR removed states: B holds $(count_of B A) of $N"

# ---- key rotation: nothing lost ------------------------------------------------------

expect=$N
rotate_step() # WHAT
{
	fill A "$N" || nl_fail "$1: creating states on A failed"
	expect=$((expect + N))
	nl_wait_until "$DEADLINE" count_is B A "$expect" ||
		nl_fail "$1: B holds $(count_of B A) of A's $expect states"
}
# a restarted agent counts badauth from 0: each instance's count is read
# before it stops and summed, from a baseline taken before the rotation
rot_bad=$((-$(badauth A) - $(badauth B)))
stop_counted() # NAME
{
	rot_bad=$((rot_bad + $(badauth "$1")))
	stop_agent "$1"
}
stop_counted B
start_agent B --auth-key "$NL_TMP/k1" --auth-key "$NL_TMP/k2" # old signs, new accepted
rotate_step "B accepts k2"
stop_counted A
start_agent A --auth-key "$NL_TMP/k2" --auth-key "$NL_TMP/k1" # new signs
nl_wait_until 30 nl_bulk_settled A || nl_fail "A's bulk request (signed k2) not answered"
rotate_step "A signs with k2"
stop_counted B
start_agent B --auth-key "$NL_TMP/k2" # old key gone
nl_wait_until 30 nl_bulk_settled B || nl_fail "B's bulk request not answered"
rotate_step "k1 retired"
rot_bad=$((rot_bad + $(badauth A) + $(badauth B)))
[ "$rot_bad" = 0 ] &&
	nl_pass "key rotation: all $expect states reached B, no packet rejected by any instance" ||
	nl_fail "key rotation: $rot_bad packet(s) rejected (badauth summed over the restarts)"
nl_ctlq B status | nl_has "signing key $(nl_ctlq B "status --json" auth_keys | tr -d '[]" ')" ||
	nl_fail "B's status does not name its key"

# ---- a receiver without a key reads the signed packets -------------------------------

# (its bulk request is unsigned: A and B drop it, so it is not waited for)
start_agent D
d0=$(count_of D A)
fill A "$N" || nl_fail "creating states on A failed"
expect=$((expect + N))
nl_wait_until "$DEADLINE" count_is D A $((d0 + N)) &&
	nl_pass "D without a key applies A's signed INS (trailer ignored)" ||
	nl_fail "D holds $(count_of D A) of A's states, expected $((d0 + N))"
[ "$(nl_ctlq D "stats --json" badlen)" = 0 ] && [ "$(nl_ctlq D "stats --json" badact)" = 0 ] ||
	nl_fail "D counted errors: $(nl_ctlq D "stats --json" | head -c 300)"
# the spoofer's packets are valid pfsync: D, without a key, applies them
nl_in "${NS[S]}" python3 "$NL_LIB_DIR/pfsync_forge.py" --src "${ADDR[A]}" "${ADDR[D]}" ins 0x5bad0003 "$HOST_A" ||
	nl_fail "spoofing failed"
nl_wait_until 5 states D has-id "$HOST_A" 0x5bad0003 &&
	nl_pass "control: the spoofed INS is applied by D (no key)" ||
	nl_fail "the spoofed INS is not applied even without a key (the badauth check proves nothing)"
nl_in "${NS[S]}" python3 "$NL_LIB_DIR/pfsync_forge.py" --src "${ADDR[A]}" "${ADDR[D]}" clr "$HOST_A" ||
	nl_fail "spoofing failed"
nl_wait_until 5 count_is D A 0 && nl_pass "control: the spoofed CLR empties D of A's states" ||
	nl_fail "the spoofed CLR is not applied even without a key"
# and A, with a key, drops D's unsigned packets (its bulk request at least)
[ "$(nl_ctlq A "stats --json" auth_dropped.unauthenticated)" -ge 1 ] ||
	nl_fail "A did not count D's unsigned packets"
stop_agent D
stop_agent A
stop_agent B

# ---- across a router ------------------------------------------------------------------

start_agent R1 --syncpeer 10.213.2.1 --auth-key "$NL_TMP/k1" --min-ttl 254
start_agent R2 --syncpeer 10.213.1.1 --auth-key "$NL_TMP/k1" --min-ttl 254
nl_wait_until 30 nl_bulk_settled R1 || nl_fail "R1's bulk request did not end"
nl_ctlq R1 status | nl_has 'min-ttl 254$' || nl_fail "status does not show min-ttl 254"
fill R1 "$N" || nl_fail "creating states on R1 failed"
fill R2 "$N" || nl_fail "creating states on R2 failed"
nl_wait_until "$DEADLINE" count_is R2 R1 "$N" && nl_wait_until "$DEADLINE" count_is R1 R2 "$N" &&
	nl_pass "across a router with --auth-key --min-ttl 254: $N states each way" ||
	nl_fail "routed sync: R2 holds $(count_of R2 R1), R1 holds $(count_of R1 R2) of $N"
[ "$(nl_ctlq R2 "stats --json" badttl)" = 0 ] || nl_fail "R2 counted badttl with --min-ttl 254"
stop_agent R1
stop_agent R2
# no key: TTL 255 stays absolute, the routed packets are dropped
start_agent R1 --syncpeer 10.213.2.1
start_agent R2 --syncpeer 10.213.1.1
r1=$(count_of R2 R1)
fill R1 "$N" || nl_fail "creating states on R1 failed"
badttl_up() { [ "$(nl_ctlq R2 "stats --json" badttl)" -ge 1 ]; }
nl_wait_until "$DEADLINE" badttl_up && nl_pass "without a key, routed packets (TTL 254) are badttl" ||
	nl_fail "R2 badttl $(nl_ctlq R2 "stats --json" badttl) without a key"
[ "$(count_of R2 R1)" = "$r1" ] || nl_fail "R2 applied routed packets without a key"
stop_agent R1
stop_agent R2

if [ "$NL_FAILED" -ne 0 ]; then
	for name in A B D R1 R2; do
		[ -e "$NL_TMP/agent$name.log" ] || continue
		nl_log "---- last lines of agent $name's log"
		grep -v 'sent \|received ' "$NL_TMP/agent$name.log" | tail -12 >&2
	done
fi
nl_finish
