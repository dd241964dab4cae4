#!/usr/bin/env bash
# Two firewalls keeping the same states with pfsync-agent:
#
#   client (eth0) ---- (in0) fwA (out0) ---- (eth0) server
#                           (sync0)
#                              |  dedicated sync link, 10.210.9.0/24
#                           (sync0)
#                             fwB  (in0 <-> out0: a veth pair of its own)
#
# Each firewall has its own bpffs (a temp dir mounted on the host, passed
# as --pin-dir); the agents load and attach the datapath themselves
# (--attach). Real traffic passes fwA only, so every state fwB holds came
# over the sync link. Checked:
#   - TCP, UDP and ICMP states created on A appear on B with the same id,
#     creatorid, key, peer states and timeout class (polled, with deadline)
#   - B never sends back what it received (no INS/UPD_C out of B)
#   - an expired state's DEL_C removes it on B; `flush` (CLR) empties B of A's states
#   - a no-sync rule's states stay on A (needs pfsyncctl rules)
#   - B restarted with an empty table gets every state by bulk update
#   - a forged pfsync packet with TTL 64 is counted (badttl) and not applied,
#     while the same packet with TTL 255 is applied
#   - tcpdump -i pfsync0 on B sees the pfsync traffic (if tcpdump exists)
#   - with --defer, once per release path the kernel allows (forced with
#     --defer-release; a refused one is reported as SKIP with its reason):
#     a new connection's first packet is held and released on B's INS_ACK,
#     by that path, and every packet the datapath held is accounted once
#     (released on ack + by timeout + failed = held)
# No sleeps stand in for synchronisation: every wait polls with a deadline.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. scripts/netns-lib.sh

nl_build
TCP_PORT=8080
HOSTID_A=0xa1a1a1a1
HOSTID_B=0xb2b2b2b2
DEADLINE=10

nl_need "$OBJ" "$AGENT" "$CTL"
nl_need_tools bpftool python3 ip nsenter

nl_init sy
nl_topology
FWA=$NL_FW
FWB="pffb-$NL_ID"
nl_netns_add "$FWB"
nl_veth "$FWA" sync0 "$FWB" sync0
nl_addr "$FWA" sync0 10.210.9.1/24
nl_addr "$FWB" sync0 10.210.9.2/24
ip link add name in0 netns "$FWB" type veth peer name out0 netns "$FWB" ||
	nl_die "cannot create fwB's veth pair"
# fwB must stay silent: no IPv6 chatter (ND, MLD) that would create states of its own
for ifname in in0 out0; do
	nl_in "$FWB" sysctl -qw "net.ipv6.conf.$ifname.disable_ipv6=1"
	ip -n "$FWB" link set dev "$ifname" up
done
PIN_A=$(nl_bpffs_tmp)
PIN_B=$(nl_bpffs_tmp)

# ---- helpers ---------------------------------------------------------------

dump_states() # PIN
{
	bpftool -j map dump pinned "$1/pfsync_states"
}

field() { python3 "$NL_LIB_DIR/ctlq.py" - "$1"; } # FIELD: of the JSON on stdin

dp_held() # packets A's datapath held (pfsync_counters, kept across agent restarts)
{
	"$CTL" --pin-dir "$PIN_A" --ctl "$NL_TMP/none.sock" stats --json | field datapath.defer_held
}

start_agent() # A|B PIN HOSTID ATTACH...
{
	local name=$1 pin=$2 hostid=$3 ns
	shift 3
	[ "$name" = A ] && ns=$FWA || ns=$FWB
	local args=(--syncdev sync0 --hostid "$hostid" --pin-dir "$pin" --obj "$OBJ" --interval 1 -v)
	[ -n "${SYNCPEER_B:-}" ] && [ "$name" = B ] && args+=(--syncpeer "$SYNCPEER_B")
	[ -n "${DEFER_A:-}" ] && [ "$name" = A ] && args+=(--defer --defer-release "$DEFER_A")
	for ifname in "$@"; do
		args+=(--attach "$ifname")
	done
	nl_agent_run "$name" "$ns" "$NL_TMP/$name.sock" "${args[@]}"
}

stop_agent() { nl_agent_stop "$1"; } # A|B

# B holds a state equal to A's (identity, key, peers, timeout class)
same_on_b() # PROTO ADDR
{
	local a b
	a=$(nl_states "$PIN_A" find "$1" "$2") || return 1
	b=$(nl_states "$PIN_B" ident "$(jq_id "$a" id)" "$(jq_id "$a" creatorid)") || return 1
	[ "$a" = "$b" ]
}

jq_id() # JSON FIELD
{
	python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}

absent_on_b() # ID CREATOR
{
	nl_absent nl_states "$PIN_B" ident "$1" "$2"
}

present_on_b() # ID CREATOR
{
	nl_states "$PIN_B" ident "$1" "$2" >/dev/null
}

b_count_creator() # CREATOR
{
	nl_count_creator "$PIN_B" "$1"
}

b_has_all_of_a()
{
	local ident a_idents
	a_idents=$(nl_states "$PIN_A" idents) || return 1
	[ -n "$a_idents" ] || return 1 # an empty dump of A proves nothing
	for ident in $a_idents; do
		nl_states "$PIN_B" idents | nl_has -x "$ident" || return 1
	done
}

# ---- start ---------------------------------------------------------------------

start_agent A "$PIN_A" "$HOSTID_A" in0 out0
start_agent B "$PIN_B" "$HOSTID_B" in0 out0
nl_pass "agents running on fwA and fwB"

# the first agent asked while alone; both must finish a bulk exchange
nl_wait_until 30 nl_bulk_done B && nl_pass "B's bulk update done" ||
	nl_fail "B's bulk update not done: $(nl_ctlq B status | grep bulk)"
nl_ctlq A status | nl_has '^pfsync: syncdev: sync0 maxupd: 128 defer: off$' ||
	nl_fail "status line: $(nl_ctlq A status | head -1)"

TCPDUMP_PID=
if command -v tcpdump >/dev/null; then
	nsenter --net="/run/netns/$FWB" -- tcpdump -l -n -i pfsync0 -c 1 \
		>"$NL_TMP/tcpdump.out" 2>"$NL_TMP/tcpdump.err" &
	TCPDUMP_PID=$!
	nl_on_cleanup "kill $TCPDUMP_PID"
	nl_wait_until 5 nl_file_has "$NL_TMP/tcpdump.err" "listening on" ||
		nl_fail "tcpdump did not start on pfsync0"
fi

nl_wait_until 5 nl_in "$NL_CLIENT" ping -c1 -W1 -q "$NL_SERVER4" >/dev/null ||
	nl_die "ping client -> server through fwA fails"

# ---- traffic on A shows up on B -------------------------------------------------

cat >"$NL_TMP/server.py" <<'PY'
import socket, sys, threading
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
open(sys.argv[2], "w").write("listening\n")
def serve(c):
    with c:
        while c.recv(4096):
            c.sendall(b"ok")
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
# connects, then sends one more message when STATUS.more appears, closes
# when CLOSE_FILE appears (polled, 90 s deadline)
cat >"$NL_TMP/client.py" <<'PY'
import os, socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
c.sendall(b"hello")
c.recv(16)
open(sys.argv[3], "a").write("established\n")
deadline = time.monotonic() + 90
more_sent = False
while not os.path.exists(sys.argv[4]) and time.monotonic() < deadline:
    if not more_sent and os.path.exists(sys.argv[3] + ".more"):
        c.sendall(b"more")
        c.recv(16)
        more_sent = True
        open(sys.argv[3], "a").write("more-done\n")
    time.sleep(0.05)
c.close()
PY
nl_bg SERVER_PID "$NL_SERVER" python3 "$NL_TMP/server.py" "$TCP_PORT" "$NL_TMP/server.status"
nl_wait_until 5 nl_file_has "$NL_TMP/server.status" listening || nl_die "server did not start"
nl_bg CLIENT_PID "$NL_CLIENT" python3 "$NL_TMP/client.py" "$NL_SERVER4" "$TCP_PORT" \
	"$NL_TMP/client.status" "$NL_TMP/client.close"
nl_on_cleanup "touch '$NL_TMP/client.close'"
nl_wait_until 10 nl_file_has "$NL_TMP/client.status" established ||
	nl_die "TCP connection through fwA failed"

# TCP ESTABLISHED on both sides once the handshake's updates have synced
tcp_synced()
{
	local a
	a=$(nl_states "$PIN_A" find 6 "$NL_SERVER4") || return 1
	[ "$(jq_id "$a" peer0):$(jq_id "$a" peer1)" = "4:4" ] && same_on_b 6 "$NL_SERVER4"
}
if nl_wait_until "$DEADLINE" tcp_synced; then
	nl_pass "TCP state on B: same id, creatorid, key, peers ESTABLISHED, timeout class"
else
	nl_fail "TCP state differs: A=$(nl_states "$PIN_A" find 6 "$NL_SERVER4") B=$(nl_states "$PIN_B" find 6 "$NL_SERVER4")"
fi
tcp_a=$(nl_states "$PIN_A" find 6 "$NL_SERVER4")
[ "$(jq_id "$tcp_a" creatorid)" = "$((HOSTID_A))" ] ||
	nl_fail "A's state creatorid $(jq_id "$tcp_a" creatorid), expected $((HOSTID_A))"

nl_in "$NL_CLIENT" python3 -c 'import socket,sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"pfsync", (sys.argv[1], 5353))' "$NL_SERVER4"
nl_wait_until "$DEADLINE" same_on_b 17 "$NL_SERVER4" && nl_pass "UDP state on B equals A's" ||
	nl_fail "UDP state differs: A=$(nl_states "$PIN_A" find 17 "$NL_SERVER4") B=$(nl_states "$PIN_B" find 17 "$NL_SERVER4")"

nl_in "$NL_CLIENT" ping -c2 -i0.2 -W1 -q "$NL_SERVER4" >/dev/null || nl_fail "ping failed"
nl_wait_until "$DEADLINE" same_on_b 1 "$NL_SERVER4" && nl_pass "ICMP state on B equals A's" ||
	nl_fail "ICMP state differs: A=$(nl_states "$PIN_A" find 1 "$NL_SERVER4") B=$(nl_states "$PIN_B" find 1 "$NL_SERVER4")"

# ---- nothing received is sent back ----------------------------------------------

# (DEL_C from B is legitimate: B expires its copies on its own clock, as pf does)
for act in 4 13; do # UPD_C, INS
	n=$(nl_ctlq B "stats --json" "out:$act")
	[ "$n" = 0 ] || nl_fail "B sent $n messages of action $act (echo of received states)"
done
n=$(nl_ctlq A "stats --json" "in:13")
[ "$n" = 0 ] || nl_fail "A received $n INS back"
[ "$(nl_ctlq B "stats --json" "in:13")" -ge 3 ] || nl_fail "B received fewer than 3 INS"
nl_pass "B sends nothing back (no INS/UPD_C out of B, no INS into A)"

# ---- B lost a state: the next UPD_C makes it ask (UPD_REQ) and recover ----------

tcp_key_hex=$(dump_states "$PIN_B" | python3 -c '
import json, struct, sys
for e in json.load(sys.stdin):
    f = e.get("formatted", e)
    if f["key"]["proto"] == 6 and f["value"]["creatorid"] == int(sys.argv[1], 0):
        print(" ".join(b.replace("0x", "") for b in e["key"])); break' "$HOSTID_A")
tcp_id=$(jq_id "$tcp_a" id)
if [ -n "$tcp_key_hex" ] && bpftool map delete pinned "$PIN_B/pfsync_states" key hex $tcp_key_hex; then
	req_before=$(nl_ctlq B "stats --json" "out:5")
	absent_on_b "$tcp_id" "$HOSTID_A" || nl_fail "TCP state still on B after deleting it"
	touch "$NL_TMP/client.status.more"
	nl_wait_until 10 nl_file_has "$NL_TMP/client.status" more-done || nl_fail "client could not send more"
	if nl_wait_until "$DEADLINE" present_on_b "$tcp_id" "$HOSTID_A"; then
		[ "$(nl_ctlq B "stats --json" "out:5")" -gt "$req_before" ] &&
			nl_pass "UPD_C for a state B lost: B sent UPD_REQ and got the state back" ||
			nl_fail "B recovered the state without an UPD_REQ"
	else
		nl_fail "B did not recover the lost TCP state"
	fi
	nl_wait_until "$DEADLINE" same_on_b 6 "$NL_SERVER4" ||
		nl_fail "recovered TCP state differs: A=$(nl_states "$PIN_A" find 6 "$NL_SERVER4") B=$(nl_states "$PIN_B" find 6 "$NL_SERVER4")"
else
	nl_fail "could not delete the TCP state on B"
fi

if [ -n "$TCPDUMP_PID" ]; then
	nl_wait_until 5 nl_file_has "$NL_TMP/tcpdump.out" "proto.*240\|pfsync\|PFSYNC" &&
		nl_pass "tcpdump -i pfsync0 on B sees pfsync packets" ||
		nl_fail "tcpdump -i pfsync0 saw nothing: $(cat "$NL_TMP/tcpdump.out" "$NL_TMP/tcpdump.err")"
fi

# ---- forged packet with TTL 64 --------------------------------------------------

badttl_before=$(nl_ctlq B "stats --json" badttl)
nl_in "$FWA" python3 "$NL_LIB_DIR/pfsync_forge.py" --ttl 64 10.210.9.2 ins 0x5eed0001 0xfeedf00d || nl_fail "forging failed"
badttl_above() { [ "$(nl_ctlq B "stats --json" badttl)" -gt "$badttl_before" ]; }
nl_wait_until 5 badttl_above && nl_pass "TTL 64 packet counted as badttl" ||
	nl_fail "badttl did not rise"
absent_on_b 0x5eed0001 0xfeedf00d || nl_fail "state from a TTL 64 packet was applied"
nl_in "$FWA" python3 "$NL_LIB_DIR/pfsync_forge.py" 10.210.9.2 ins 0x5eed0002 0xfeedf00d || nl_fail "forging failed"
nl_wait_until 5 present_on_b 0x5eed0002 0xfeedf00d &&
	nl_pass "the same packet with TTL 255 is applied" ||
	nl_fail "TTL 255 forged INS not applied (the badttl check proves nothing)"

# ---- expiry on A removes the state on B (DEL_C) ---------------------------------

if [ -x "$CTL" ]; then
	for t in udp.first udp.single udp.multiple; do
		nl_in "$FWA" "$CTL" --pin-dir "$PIN_A" set timeout "$t" 1 ||
			nl_fail "pfsyncctl set timeout $t 1 failed"
	done
	# what reaches B, to find the DEL_C naming the state (other 1-s UDP states
	# expire too: A's DEL_C total proves nothing about this one)
	nsenter --net="/run/netns/$FWB" -- tcpdump -i sync0 -U -n -w "$NL_TMP/delc.pcap" \
		'ip proto 240' 2>"$NL_TMP/delc.err" &
	delc_cap=$!
	nl_on_cleanup "kill $delc_cap"
	nl_wait_until 10 nl_file_has "$NL_TMP/delc.err" "listening on" || nl_fail "tcpdump on B did not start"
	nl_in "$NL_CLIENT" python3 -c 'import socket,sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"bye", (sys.argv[1], 6000))' "$NL_SERVER4"
	udp6000()
	{
		nl_states "$PIN_A" find 17 "$NL_SERVER4" >/dev/null
	}
	ident_u=""
	grab_udp6000()
	{
		local s
		s=$(dump_states "$PIN_A" | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    f = e.get("formatted", e)
    k, v = f["key"], f["value"]
    ports = [((p & 0xff) << 8) | (p >> 8) for p in k["port"]]
    if k["proto"] == 17 and 6000 in ports:
        print(v["id"], v["creatorid"]); break') || return 1
		[ -n "$s" ] && ident_u=$s
	}
	if nl_wait_until 5 grab_udp6000; then
		read -r uid ucr <<<"$ident_u"
		nl_wait_until "$DEADLINE" present_on_b "$uid" "$ucr" || nl_fail "UDP 6000 state never reached B"
		named=$(printf 'id: %016x creatorid: %08x' "$uid" "$ucr")
		# a DEL_C naming it on the wire to B (the id lines of DEL ST COMP sections);
		# B may drop its copy first on its own clock (the remaining time came along)
		delc_seen()
		{
			"$CTL" decode -v "$NL_TMP/delc.pcap" >"$NL_TMP/delc.txt" 2>&1 &&
				awk '/^ *act /{delc = /act DEL ST COMP/} delc && /id: /{sub(/^[ \t]*/, ""); print}' \
					"$NL_TMP/delc.txt" | nl_has -Fx "$named"
		}
		if nl_wait_until 15 absent_on_b "$uid" "$ucr"; then
			nl_wait_until 15 delc_seen &&
				nl_pass "expired on A: gone from B, and A's DEL_C naming it reached B ($named)" ||
				nl_fail "no DEL_C naming the expired state reached B ($named): $(grep -c 'DEL ST COMP' "$NL_TMP/delc.txt") DEL_C sections, $(tail -1 "$NL_TMP/delc.txt")"
			kill "$delc_cap" && wait "$delc_cap"
		else
			nl_fail "expired UDP state still on B"
		fi
	else
		nl_fail "no UDP state for port 6000 on A"
	fi
	# back to pf's defaults so that later UDP states live as long as usual
	nl_in "$FWA" "$CTL" --pin-dir "$PIN_A" set timeout udp.first 60 &&
		nl_in "$FWA" "$CTL" --pin-dir "$PIN_A" set timeout udp.single 30 &&
		nl_in "$FWA" "$CTL" --pin-dir "$PIN_A" set timeout udp.multiple 60 ||
		nl_fail "could not restore the UDP timeouts"
else
	nl_log "note: $CTL not built; expiry (DEL_C) and no-sync checks skipped"
fi

# ---- no-sync rule -----------------------------------------------------------------

if [ -x "$CTL" ]; then
	# pf: the last matching rule wins
	printf 'pass\npass in on in0 proto udp from any to any port 7000 keep state (no-sync)\n' \
		>"$NL_TMP/nosync.conf"
	if nl_in "$FWA" "$CTL" --pin-dir "$PIN_A" rules load "$NL_TMP/nosync.conf" >/dev/null; then
		nl_in "$NL_CLIENT" python3 -c 'import socket,sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"n", (sys.argv[1], 7000))' "$NL_SERVER4"
		nl_in "$NL_CLIENT" python3 -c 'import socket,sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"s", (sys.argv[1], 7001))' "$NL_SERVER4"
		port_ident() # PIN PORT: 1 = none; 2 = the map could not be read
		{
			local dump
			dump=$(dump_states "$1") || return 2
			python3 -c '
import json, sys
for e in json.load(sys.stdin):
    f = e.get("formatted", e)
    k, v = f["key"], f["value"]
    ports = [((p & 0xff) << 8) | (p >> 8) for p in k["port"]]
    if k["proto"] == 17 and int(sys.argv[1]) in ports:
        print(v["id"], v["creatorid"]); sys.exit(0)
sys.exit(1)' "$2" <<<"$dump"
		}
		if nl_wait_until 5 port_ident "$PIN_A" 7000 >/dev/null &&
			nl_wait_until "$DEADLINE" port_ident "$PIN_B" 7001 >/dev/null; then
			# 7001 (synced) was sent after 7000: had 7000 been sent it would be there
			nl_absent port_ident "$PIN_B" 7000 && nl_pass "no-sync rule's state stays on A" ||
				nl_fail "no-sync state reached B (or B's map unreadable)"
		else
			nl_fail "no-sync check: states for ports 7000/7001 missing"
		fi
		printf 'pass\n' >"$NL_TMP/pass.conf"
		nl_in "$FWA" "$CTL" --pin-dir "$PIN_A" rules load "$NL_TMP/pass.conf" >/dev/null ||
			nl_fail "restoring pass-all failed"
	else
		nl_fail "pfsyncctl rules load (no-sync) failed"
	fi
fi

# ---- B restarted with an empty table: bulk update --------------------------------

stop_agent B
[ -e "$NL_TMP/B.sock" ] && nl_fail "B's control socket left behind"
PIN_B=$(nl_bpffs_tmp)
[ "$(nl_states "$PIN_A" count)" -ge 3 ] || nl_fail "A has fewer than 3 states before B's restart"
SYNCPEER_B=10.210.9.1 start_agent B "$PIN_B" "$HOSTID_B" in0 out0
nl_ctlq B status | nl_has '^pfsync: syncdev: sync0 syncpeer: 10.210.9.1 maxupd: 128 defer: off$' ||
	nl_fail "unicast status line: $(nl_ctlq B status | head -1)"
if nl_wait_until 20 nl_bulk_done B && nl_wait_until 5 b_has_all_of_a; then
	nl_pass "restarted B (unicast --syncpeer) with an empty table got all $(nl_states "$PIN_A" idents | wc -l) synced states of A by bulk update"
else
	nl_fail "after restart B has $(nl_states "$PIN_B" count) of A's $(nl_states "$PIN_A" idents | wc -l) synced states; $(nl_ctlq B status | grep bulk)"
fi
nl_wait_until "$DEADLINE" same_on_b 6 "$NL_SERVER4" ||
	nl_fail "bulk-updated TCP state differs: A=$(nl_states "$PIN_A" find 6 "$NL_SERVER4") B=$(nl_states "$PIN_B" find 6 "$NL_SERVER4")"

# ---- a new state after the restart reaches the unicast B ---------------------------
nl_in "$NL_CLIENT" python3 -c 'import socket,sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"late", (sys.argv[1], 7002))' "$NL_SERVER4"
late_on_b()
{
	dump_states "$PIN_B" | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    f = e.get("formatted", e)
    ports = [((p & 0xff) << 8) | (p >> 8) for p in f["key"]["port"]]
    if f["key"]["proto"] == 17 and 7002 in ports:
        sys.exit(0)
sys.exit(1)'
}
nl_wait_until "$DEADLINE" late_on_b && nl_pass "new state on A reaches the restarted B" ||
	nl_fail "new UDP state (port 7002) did not reach the restarted B"
[ "$(nl_ctlq B "stats --json" opackets)" -gt 0 ] || nl_fail "unicast B sent nothing (its bulk request)"

# ---- A restarted: finds its pinned states, rebuilds its index, asks for a bulk -----

stop_agent A
# nothing touches the map while no agent runs and no program is attached
a_synced=$(dump_states "$PIN_A" | python3 -c '
import json, sys
print(sum(1 for e in json.load(sys.stdin) if not e.get("formatted", e)["value"]["flags"] & 1))')
nl_release_paths "$FWA" "$PIN_A" "test_sync defer" || nl_fail "defer: no release path allowed"
held_before=$(dp_held)
DEFER_A=${NL_RELEASE_PATHS[0]:-auto} start_agent A "$PIN_A" "$HOSTID_A" in0 out0
two_starts() { [ "$(grep -c 'running:.*hostid 0xa1a1a1a1' "$NL_TMP/agentA.log")" -ge 2 ]; }
nl_wait_until 5 two_starts || nl_fail "restarted A did not log its start"
a_indexed=$(grep "running:.*hostid 0xa1a1a1a1" "$NL_TMP/agentA.log" | tail -1 |
	sed -n 's/.*, \([0-9]*\) states in the table.*/\1/p')
# (>=: the re-attached datapath may add a state before the index is rebuilt)
[ "${a_indexed:-0}" -ge "$a_synced" ] && [ "$a_synced" -gt 0 ] && nl_pass "restarted A indexed its $a_synced pinned states" ||
	nl_fail "restarted A indexed ${a_indexed:-?} of $a_synced pinned states"
nl_wait_until 20 nl_bulk_done A || nl_fail "restarted A's bulk update not done: $(nl_ctlq A status | grep bulk)"

# with --defer, a new connection's first packet waits for B's INS_ACK
acked() { [ "$(nl_ctlq A "status --json" defer_released_ack)" -gt 0 ]; }
# every packet held since A started ($held_before held then) was released once
accounted()
{
	local s
	s=$(nl_ctlq A "status --json") || return 1
	[ "$(field defer_held <<<"$s")" = 0 ] &&
		[ $(($(dp_held) - held_before)) = $(($(field defer_released_ack <<<"$s") +
			$(field defer_released_timeout <<<"$s") + $(field defer_release_failed <<<"$s"))) ]
}
defer_check() # PATH: A runs with --defer --defer-release PATH
{
	local path=$1
	[ "$(nl_ctlq A "status --json" defer_release)" = "$path" ] ||
		nl_fail "defer ($path): A releases by $(nl_ctlq A "status --json" defer_release)"
	nl_ctlq A status | nl_has "^defer release: $path at ingress" ||
		nl_fail "defer ($path): not in pfsyncctl status: $(nl_ctlq A status | grep '^defer')"
	"$CTL" --pin-dir "$PIN_A" --ctl "$NL_TMP/A.sock" stats --prometheus |
		nl_has "^pfsync_defer_release_info{path=\"$path\"} 1\$" ||
		nl_fail "defer ($path): no pfsync_defer_release_info{path=\"$path\"} in the Prometheus output"
	if nl_in "$NL_CLIENT" python3 -c '
import socket, sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()' "$NL_SERVER4" "$TCP_PORT" 2>"$NL_TMP/defer.err"; then
		nl_wait_until 5 acked && nl_pass "defer ($path): first packet held and released on B's INS_ACK" ||
			nl_fail "defer ($path): nothing released on ack ($(nl_ctlq A status | grep defer))"
	else
		nl_fail "defer ($path): TCP connection through fwA failed ($(nl_ctlq A status | grep defer)): $(tail -1 "$NL_TMP/defer.err")"
	fi
	nl_wait_until 5 accounted && nl_pass "defer ($path): every held packet released once ($(nl_ctlq A status | grep '^defer:'))" ||
		nl_fail "defer ($path): $(($(dp_held) - held_before)) held by the datapath, agent: $(nl_ctlq A status | grep '^defer:')"
	[ "$(nl_ctlq A "status --json" defer_release_failed)" = 0 ] || nl_fail "defer ($path): releases failed"
	if [ "$path" = redirect ]; then
		# the held SYN came in on in0: lo's program put it back there
		[ "$(nl_ctlq A "status --json" defer_redirected)" -ge 1 ] &&
			[ "$(nl_ctlq A "status --json" defer_redirect_refused)" = 0 ] ||
			nl_fail "defer (redirect): $(nl_ctlq A status | grep '^defer release:')"
	fi
}
defer_check "${NL_RELEASE_PATHS[0]:-auto}"
for path in "${NL_RELEASE_PATHS[@]:1}"; do
	stop_agent A
	held_before=$(dp_held)
	DEFER_A=$path start_agent A "$PIN_A" "$HOSTID_A" in0 out0
	nl_wait_until 20 nl_bulk_done A || nl_fail "A ($path) bulk update not done"
	defer_check "$path"
done

# ---- flush on A: CLR empties B of A's states --------------------------------------

nl_in "$FWA" python3 "$NL_LIB_DIR/pfsync_forge.py" 10.210.9.2 ins 0x5eed0003 0xfeedf00d || nl_fail "forging failed"
nl_wait_until 5 present_on_b 0x5eed0003 0xfeedf00d || nl_fail "forged INS (TTL 255) not applied on restarted B"
[ "$(b_count_creator "$HOSTID_A")" -gt 0 ] || nl_fail "B holds no state of A before the flush"
# traffic still running may create new states on A after the flush: judge the
# CLR by the states B held before it
a_states_before=$(nl_states "$PIN_B" idents | grep "/$((HOSTID_A))\$")
nl_ctlq A flush >/dev/null || nl_fail "flush on A failed"
b_left_of() # IDENTS: how many of them B still holds
{
	local held
	held=$(nl_states "$PIN_B" idents)
	grep -cxF -f <(printf '%s\n' "$1") <<<"$held"
}
b_clear() { [ "$(b_left_of "$a_states_before")" = 0 ]; }
nl_wait_until "$DEADLINE" b_clear && nl_pass "flush on A (CLR) removed A's states on B" ||
	nl_fail "B still has $(b_left_of "$a_states_before") of A's states after CLR"
present_on_b 0x5eed0003 0xfeedf00d || nl_fail "CLR of A removed another creator's state on B"
[ "$(nl_ctlq A "stats --json" "out:0")" = 1 ] || nl_fail "A did not send exactly one CLR"

# ---- stop cleanly --------------------------------------------------------------------

stop_agent A
stop_agent B
test -e "$PIN_A/pfsync_states" || nl_fail "A's maps not left pinned"
if [ "$NL_FAILED" -ne 0 ]; then
	for name in A B; do
		nl_log "---- last lines of agent $name's log"
		grep -v '^[0-9]*: \|^;' "$NL_TMP/agent$name.log" | tail -25 >&2
	done
fi
nl_finish
