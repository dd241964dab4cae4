#!/usr/bin/env bash
# Integration test of the datapath with real traffic:
#
#   client (eth0) ---- (in0) firewall (out0) ---- (eth0) server
#
# build/pfsync_xdp.o is attached with plain iproute2 on both firewall
# interfaces (XDP ingress + tc egress), inside the firewall namespace with a
# bpffs private to this run, so the maps are pinned in a
# /sys/fs/bpf/tc/globals that only this test sees. Then:
#   - a TCP connection passes; its state is in `bpftool map dump` with the
#     peer states ESTABLISHED:ESTABLISHED, then FIN_WAIT_2:FIN_WAIT_2 after
#     close, and in `pfsyncctl states --json`; counters move
#   - UDP, ICMP echo, ICMPv6 echo and TCP over IPv6 create states
#   - with `block in on out0`, `pass out`, `pass in on in0` loaded by
#     pfsyncctl, a SYN from the server side is dropped (blocked_rule rises)
#     while connections from the client still pass
#   - a state whose timeout is set to 1 s is removed by `pfsyncctl expire`
#     (states_removed rises)
# Every wait is a poll with a deadline; nothing here asserts timing.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. scripts/netns-lib.sh

nl_build
PIN=/sys/fs/bpf/tc/globals
TCP_PORT=8080
BACK_PORT=9090

nl_need "$OBJ" "$CTL"
nl_need_tools bpftool python3 tc ip nsenter unshare

nl_init dp
nl_topology
nl_fw_bpffs

# ---- helpers ---------------------------------------------------------------

# Reads bpftool JSON on stdin and answers questions about states and
# counters (bpftool prints BTF-named fields under "formatted").
cat >"$NL_TMP/pfq.py" <<'PY'
import ipaddress, json, struct, sys

def formatted(entry):
    return entry.get("formatted", entry)

def addr(words, af):
    raw = b"".join(struct.pack("<I", w & 0xffffffff) for w in words)
    return str(ipaddress.ip_address(raw[:4] if af == 2 else raw))

def port(v):
    return struct.unpack(">H", struct.pack("<H", v))[0]

def states(dump):
    for e in dump:
        f = formatted(e)
        k, v = f["key"], f["value"]
        yield k, v, {addr(k["addr"][0], k["af"]), addr(k["addr"][1], k["af"])}, \
            {port(k["port"][0]), port(k["port"][1])}

def main():
    dump = json.load(sys.stdin)
    if isinstance(dump, dict):
        print("bpftool: %s" % dump.get("error", dump), file=sys.stderr)
        sys.exit(2)  # unreadable, not "no such state"
    cmd = sys.argv[1]
    if cmd == "counter":
        # per-CPU array: sum the field over CPUs
        total = 0
        for e in dump:
            for cpu in formatted(e)["values"]:
                total += cpu["value"][sys.argv[2]]
        print(total)
        return 0
    if cmd == "count":
        print(len(dump))
        return 0
    # state PROTO ADDR_A ADDR_B [PORT]: prints the value of the first match
    proto, a, b = int(sys.argv[2]), sys.argv[3], sys.argv[4]
    want_port = int(sys.argv[5]) if len(sys.argv) > 5 else None
    for k, v, addrs, ports in states(dump):
        if k["proto"] != proto or addrs != {a, b}:
            continue
        if want_port is not None and want_port not in ports:
            continue
        init = addr(k["addr"][v["init_side"]], k["af"])
        print(json.dumps({"af": k["af"], "initiator": init,
                          "peer0": v["peer"][0]["state"], "peer1": v["peer"][1]["state"],
                          "timeout": v["timeout"], "packets": v["packets"],
                          "bytes": v["bytes"], "id": v["id"], "creatorid": v["creatorid"],
                          "direction": v["direction"]}))
        return 0
    return 1

sys.exit(main())
PY

dump_states()
{
	nl_fw bpftool -j map dump pinned "$PIN/pfsync_states"
}

# state_get PROTO A B [PORT] -> JSON summary of the state (1 if none, 2 if
# the map could not be read)
state_get()
{
	local dump
	dump=$(dump_states) || return 2
	python3 "$NL_TMP/pfq.py" state "$@" <<<"$dump"
}

# state_field JSON FIELD
state_field()
{
	python3 -c 'import json,sys; v=json.loads(sys.argv[1])[sys.argv[2]]; print(v if not isinstance(v, list) else " ".join(map(str, v)))' "$1" "$2"
}

# state_peers_are PROTO A B PORT "P0:P1" -> true when the peer states match
state_peers_are()
{
	local s
	s=$(state_get "$1" "$2" "$3" "$4") || return 1
	[ "$(state_field "$s" peer0):$(state_field "$s" peer1)" = "$5" ]
}

state_absent()
{
	nl_absent state_get "$@"
}

# counter NAME: the per-CPU counter summed, -1 (and status 1) if unreadable
counter()
{
	local v
	if ! v=$(nl_fw bpftool -j map dump pinned "$PIN/pfsync_counters" |
		python3 "$NL_TMP/pfq.py" counter "$1"); then
		echo -1
		return 1
	fi
	echo "$v"
}

counter_above()
{
	[ "$(counter "$1")" -gt "$2" ]
}

have_ctl()
{
	[ -x "$CTL" ]
}

ctl()
{
	nl_fw "$CTL" "$@"
}

# ---- traffic programs --------------------------------------------------------

# Echo server on [::]:PORT (IPv4 and IPv6): echoes until the peer closes,
# then closes its side. Writes "listening" once bound.
cat >"$NL_TMP/server.py" <<'PY'
import socket, sys, threading
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1])))
s.listen(16)
open(sys.argv[2], "w").write("listening\n")
def serve(c):
    with c:
        while True:
            data = c.recv(4096)
            if not data:
                break
            c.sendall(data)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY

# Client: connects, exchanges one message, reports "established", waits for
# the file CLOSE_FILE (polled, 30 s deadline), closes its side, reads until
# the server's FIN and reports "closed". Without CLOSE_FILE it closes at once.
cat >"$NL_TMP/client.py" <<'PY'
import os, socket, sys, time
host, port, status = sys.argv[1], int(sys.argv[2]), sys.argv[3]
close_file = sys.argv[4] if len(sys.argv) > 4 else None
c = socket.create_connection((host, port), timeout=5)
c.sendall(b"hello pfsync")
got = b""
while len(got) < 12:
    got += c.recv(64)
open(status, "a").write("established\n")
deadline = time.monotonic() + 30
while close_file and not os.path.exists(close_file):
    if time.monotonic() > deadline:
        sys.exit("client: no close signal")
    time.sleep(0.05)
c.shutdown(socket.SHUT_WR)
while c.recv(64):
    pass
c.close()
open(status, "a").write("closed\n")
PY

# One-shot TCP connect with a timeout: exit 0 if connected.
tcp_connects()
{
	local ns=$1 host=$2 port=$3
	nl_in "$ns" python3 -c '
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()
except OSError:
    sys.exit(1)' "$host" "$port"
}

udp_send()
{
	local ns=$1 host=$2 port=$3
	nl_in "$ns" python3 -c '
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
socket.socket(fam, socket.SOCK_DGRAM).sendto(b"pfsync udp", (sys.argv[1], int(sys.argv[2])))' "$host" "$port"
}

# ---- attach with iproute2 ---------------------------------------------------------

for ifname in "$NL_FW_IN" "$NL_FW_OUT"; do
	nl_fw ip link set dev "$ifname" xdp obj "$OBJ" sec xdp ||
		nl_die "ip link set dev $ifname xdp obj $OBJ sec xdp failed"
	nl_fw tc qdisc add dev "$ifname" clsact || nl_die "tc qdisc add dev $ifname clsact failed"
	nl_fw tc filter add dev "$ifname" egress bpf da obj "$OBJ" sec tc ||
		nl_die "tc filter add dev $ifname egress bpf da obj $OBJ sec tc failed"
done
nl_pass "attached with iproute2 on $NL_FW_IN and $NL_FW_OUT"

for map in pfsync_states pfsync_rules pfsync_events pfsync_counters; do
	nl_fw test -e "$PIN/$map" || nl_fail "$PIN/$map not pinned by iproute2"
done
private_id=$(nl_fw bpftool -j map show pinned "$PIN/pfsync_states" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
# Prints the ids of the maps used by the XDP and tc egress programs
# attached to IF, "xdp:ID,ID tc:ID,ID" (what each attach really uses).
attached_maps()
{
	local hook prog ids out=""
	for hook in xdp tc; do
		prog=$(nl_fw bpftool -j net show dev "$1" | python3 -c '
import json, sys
for e in json.load(sys.stdin)[0].get(sys.argv[1], []):
    print(e["id"])' "$hook")
		ids=$(nl_fw bpftool -j prog show id "${prog:-0}" 2>/dev/null |
			python3 -c 'import json,sys; print(",".join(map(str, json.load(sys.stdin).get("map_ids", []))))')
		out="$out $hook:$ids"
	done
	echo "$out"
}
for ifname in "$NL_FW_IN" "$NL_FW_OUT"; do
	maps=$(attached_maps "$ifname")
	for hook in xdp tc; do
		[[ "$maps" =~ $hook:([0-9]+,)*$private_id(,|$|\ ) ]] ||
			nl_fail "$hook program on $ifname does not use the pinned pfsync_states ($maps)"
	done
done
if [ -e "$PIN/pfsync_states" ]; then
	host_id=$(bpftool -j map show pinned "$PIN/pfsync_states" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
	[ "$host_id" != "$private_id" ] || nl_fail "test pinned into the host's $PIN"
fi
nl_pass "maps pinned in the firewall's private $PIN (pfsync_states id $private_id)"

nl_wait_until 5 nl_in "$NL_CLIENT" ping -c1 -W1 -q "$NL_SERVER4" >/dev/null ||
	nl_die "ping client -> server through the firewall fails"

# ---- TCP connection ----------------------------------------------------------------

nl_bg SERVER_PID "$NL_SERVER" python3 "$NL_TMP/server.py" "$TCP_PORT" "$NL_TMP/server.status"
nl_wait_until 5 nl_file_has "$NL_TMP/server.status" listening || nl_die "server did not start"

passed_before=$(counter packets_passed)
inserted_before=$(counter states_inserted)
nl_bg CLIENT_PID "$NL_CLIENT" python3 "$NL_TMP/client.py" "$NL_SERVER4" "$TCP_PORT" \
	"$NL_TMP/client.status" "$NL_TMP/client.close"
nl_wait_until 10 nl_file_has "$NL_TMP/client.status" established ||
	nl_die "TCP connection client -> server through the firewall failed"

if nl_wait_until 5 state_peers_are 6 "$NL_CLIENT4" "$NL_SERVER4" "$TCP_PORT" 4:4; then
	nl_pass "TCP state ESTABLISHED:ESTABLISHED in bpftool map dump"
else
	nl_fail "TCP state not 4:4: $(state_get 6 "$NL_CLIENT4" "$NL_SERVER4" "$TCP_PORT")"
fi
# check_tcp_state JSON: counters, initiator, identity, timeout class
check_tcp_state()
{
	local s=$1 pk0 pk1 by0 by1
	read -r pk0 pk1 <<<"$(state_field "$s" packets)"
	read -r by0 by1 <<<"$(state_field "$s" bytes)"
	# initiator -> responder: SYN, ACK, data (>= 3); reverse: SYN-ACK, data (>= 2)
	[ "${pk0:-0}" -ge 3 ] && [ "${pk1:-0}" -ge 2 ] ||
		nl_fail "TCP packet counters $pk0/$pk1, expected >= 3/2"
	[ "${by0:-0}" -gt 12 ] && [ "${by1:-0}" -gt 12 ] ||
		nl_fail "TCP byte counters $by0/$by1 do not cover the 12-byte payload each way"
	[ "$(state_field "$s" initiator)" = "$NL_CLIENT4" ] ||
		nl_fail "initiator is $(state_field "$s" initiator), expected the client"
	[ "$(state_field "$s" id)" != 0 ] && [ "$(state_field "$s" creatorid)" != 0 ] ||
		nl_fail "state has no identity: $s"
	[ "$(state_field "$s" timeout)" = 2 ] ||
		nl_fail "timeout class $(state_field "$s" timeout), expected tcp.established (2)"
	nl_log "TCP state: $s"
}
if s=$(state_get 6 "$NL_CLIENT4" "$NL_SERVER4" "$TCP_PORT"); then
	check_tcp_state "$s"
else
	nl_fail "no TCP state for the connection in bpftool map dump"
fi

counter_above packets_passed "$passed_before" || nl_fail "packets_passed did not rise"
counter_above states_inserted "$inserted_before" || nl_fail "states_inserted did not rise"
[ "$(counter packets_seen)" -ge "$(counter packets_passed)" ] ||
	nl_fail "packets_seen < packets_passed"

if have_ctl; then
	if ctl states --json >"$NL_TMP/states.json"; then
		python3 - "$NL_TMP/states.json" "$NL_CLIENT4" "$NL_SERVER4" <<'PY' ||
import json, sys
text = open(sys.argv[1]).read()
data = json.loads(text)
rows = data if isinstance(data, list) else data.get("states", [])
for r in rows:
    flat = json.dumps(r)
    if sys.argv[2] in flat and sys.argv[3] in flat and "ESTABLISHED" in flat.upper():
        sys.exit(0)
sys.exit("no ESTABLISHED state between %s and %s in %s" % (sys.argv[2], sys.argv[3], text[:400]))
PY
			nl_fail "pfsyncctl states --json does not show the connection"
		nl_pass "pfsyncctl states --json shows the connection"
	else
		nl_fail "pfsyncctl states --json failed"
	fi
else
	nl_log "note: $CTL not built, pfsyncctl checks skipped"
fi

touch "$NL_TMP/client.close"
nl_wait_until 10 nl_file_has "$NL_TMP/client.status" closed || nl_fail "TCP close did not complete"
if nl_wait_until 5 state_peers_are 6 "$NL_CLIENT4" "$NL_SERVER4" "$TCP_PORT" 9:9; then
	s=$(state_get 6 "$NL_CLIENT4" "$NL_SERVER4" "$TCP_PORT") &&
		[ "$(state_field "$s" timeout)" = 5 ] ||
		nl_fail "closed state timeout class $(state_field "$s" timeout), expected tcp.closed (5)"
	nl_pass "TCP state FIN_WAIT_2:FIN_WAIT_2 after close"
else
	nl_fail "TCP state after close: $(state_get 6 "$NL_CLIENT4" "$NL_SERVER4" "$TCP_PORT")"
fi

# ---- UDP, ICMP, IPv6 -------------------------------------------------------------------

udp_send "$NL_CLIENT" "$NL_SERVER4" 5353
if nl_wait_until 5 state_peers_are 17 "$NL_CLIENT4" "$NL_SERVER4" 5353 1:0; then
	nl_pass "UDP datagram created a state (SINGLE:NO_TRAFFIC)"
else
	nl_fail "no UDP state SINGLE:NO_TRAFFIC: $(state_get 17 "$NL_CLIENT4" "$NL_SERVER4" 5353)"
fi

# A forwarded packet meets the state at XDP ingress (in0) and tc egress
# (out0); pf counts it once. Read the counters once the server has all of
# the datagrams, so that every count has happened.
COUNT_PORT=5355
nl_bg COUNT_PID "$NL_SERVER" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
open(sys.argv[2], "w").write("ready\n")
for n in range(1, 6):
    s.recv(100)
    open(sys.argv[2], "w").write("got %d\n" % n)' "$COUNT_PORT" "$NL_TMP/count.status"
nl_wait_until 5 nl_file_has "$NL_TMP/count.status" ready || nl_die "UDP counter did not start"
nl_in "$NL_CLIENT" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 40555))
for _ in range(5):
    s.sendto(b"0123456789", (sys.argv[1], int(sys.argv[2])))' "$NL_SERVER4" "$COUNT_PORT"
if nl_wait_until 5 nl_file_has "$NL_TMP/count.status" "got 5" &&
	s=$(state_get 17 "$NL_CLIENT4" "$NL_SERVER4" "$COUNT_PORT"); then
	# 5 datagrams of 20 + 8 + 10 bytes, client -> server only
	if [ "$(state_field "$s" packets)" = "5 0" ] && [ "$(state_field "$s" bytes)" = "190 0" ]; then
		nl_pass "5 forwarded datagrams counted once each (packets 5, bytes 190)"
	else
		nl_fail "forwarded datagrams counted $(state_field "$s" packets) / $(state_field "$s" bytes), expected 5 0 / 190 0"
	fi
else
	nl_fail "the 5 datagrams did not all reach the server, or no state: $(cat "$NL_TMP/count.status")"
fi

nl_in "$NL_CLIENT" ping -c1 -W2 -q "$NL_SERVER4" >/dev/null || nl_fail "ping failed"
nl_wait_until 5 state_get 1 "$NL_CLIENT4" "$NL_SERVER4" >/dev/null &&
	nl_pass "ICMP echo created a state" || nl_fail "no ICMP state"

nl_in "$NL_CLIENT" ping -6 -c1 -W2 -q "$NL_SERVER6" >/dev/null || nl_fail "ping -6 failed"
nl_wait_until 5 state_get 58 "$NL_CLIENT6" "$NL_SERVER6" >/dev/null &&
	nl_pass "ICMPv6 echo created a state" || nl_fail "no ICMPv6 state"

nl_in "$NL_CLIENT" python3 "$NL_TMP/client.py" "$NL_SERVER6" "$TCP_PORT" "$NL_TMP/client6.status" ||
	nl_fail "TCP over IPv6 through the firewall failed"
nl_wait_until 5 state_get 6 "$NL_CLIENT6" "$NL_SERVER6" "$TCP_PORT" >/dev/null &&
	nl_pass "TCP over IPv6 created a state" || nl_fail "no TCP/IPv6 state"

# ---- ruleset: block unsolicited connections from the outside -----------------------------

nl_bg BACK_PID "$NL_CLIENT" python3 "$NL_TMP/server.py" "$BACK_PORT" "$NL_TMP/back.status"
nl_wait_until 5 nl_file_has "$NL_TMP/back.status" listening || nl_die "client listener did not start"
# without rules the server side may connect in: the path works both ways
nl_wait_until 5 tcp_connects "$NL_SERVER" "$NL_CLIENT4" "$BACK_PORT" ||
	nl_fail "server -> client connection fails even without rules"

if have_ctl; then
	cat >"$NL_TMP/rules.conf" <<RULES
# outside: nothing comes in unless a state says so
block in on $NL_FW_OUT
pass out
pass in on $NL_FW_IN
RULES
	ctl rules load "$NL_TMP/rules.conf" || nl_fail "pfsyncctl rules load failed"
	ctl rules >"$NL_TMP/rules.out" 2>&1 || nl_fail "pfsyncctl rules failed"
	grep -q "block in on $NL_FW_OUT" "$NL_TMP/rules.out" ||
		nl_fail "pfsyncctl rules does not list the block rule: $(cat "$NL_TMP/rules.out")"

	blocked_before=$(counter blocked_rule)
	if tcp_connects "$NL_SERVER" "$NL_CLIENT4" "$BACK_PORT"; then
		nl_fail "unsolicited connection from the server side passed the ruleset"
	else
		nl_pass "unsolicited SYN from the server side dropped"
	fi
	nl_wait_until 5 counter_above blocked_rule "$blocked_before" &&
		nl_pass "blocked_rule rose" || nl_fail "blocked_rule did not rise"
	nl_wait_until 5 tcp_connects "$NL_CLIENT" "$NL_SERVER4" "$TCP_PORT" &&
		nl_pass "client-initiated connection still passes" ||
		nl_fail "client-initiated connection blocked by the ruleset"

	# ---- expiry ------------------------------------------------------------------------
	for t in udp.first udp.single udp.multiple; do
		ctl set timeout "$t" 1 || nl_fail "pfsyncctl set timeout $t 1 failed"
	done
	udp_send "$NL_CLIENT" "$NL_SERVER4" 5454
	nl_wait_until 5 state_get 17 "$NL_CLIENT4" "$NL_SERVER4" 5454 >/dev/null ||
		nl_fail "no UDP state to expire"
	removed_before=$(counter states_removed)
	expire_and_check()
	{
		ctl expire >/dev/null && state_absent 17 "$NL_CLIENT4" "$NL_SERVER4" 5454
	}
	if nl_wait_until 15 expire_and_check; then
		nl_pass "expired UDP state swept by pfsyncctl expire"
	else
		nl_fail "UDP state with a 1 s timeout still there after pfsyncctl expire"
	fi
	counter_above states_removed "$removed_before" || nl_fail "states_removed did not rise"
	# the established TCP state of the ruleset check has a long timeout
	state_get 6 "$NL_CLIENT4" "$NL_SERVER4" "$TCP_PORT" >/dev/null ||
		nl_fail "expire removed a TCP state that was not due"
else
	nl_fail "$CTL not built: ruleset and expiry checks need pfsyncctl"
fi

nl_finish
