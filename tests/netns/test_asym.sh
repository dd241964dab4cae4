#!/usr/bin/env bash
# Asymmetric routing through two firewalls, and what --defer buys:
#
#   client eth0 -- br-lan (switch ns) -- lan0 fwA wan0 -- br-wan -- eth0 server
#   10.79.1.10              10.79.1.2/.3 fwB .2.2/.3              10.79.2.10
#                          fwA sync0 10.79.3.1 <-> 10.79.3.2 sync0 fwB
#
# The client routes via fwA, the server via fwB: a SYN crosses fwA, its
# SYN-ACK crosses fwB. Both run pfsync-agent with `block all` and a pass
# rule for the LAN, which creates a TCP state on a SYN only: fwB passes the
# SYN-ACK only if fwA's INS reached it first. Checked:
#   - with --defer on both agents, N connections all complete on their first
#     SYN: no SYN or SYN-ACK retransmission (TCP_INFO total_retrans of both
#     ends and TcpExtTCPSynRetrans of both namespaces), data both ways, and
#     fwA releases none of its held packets by timeout (its own multicast,
#     e.g. IPv6 neighbour discovery sent before fwB's agent was up, is never
#     held, as in pf); a connection fwA opens itself (its SYN held at tc
#     egress, sent again from a packet socket) completes on its first SYN
#     too; every packet fwA's datapath held is accounted for once: released
#     on ack + by timeout + failed = held
#   - without --defer, the same N connections: those that needed a
#     retransmission (or failed) are counted and printed; more than none
#   - defer timeout: fwB's agent stopped (no peer to acknowledge), fwA with
#     --defer --defer-timeout 20: new connections still complete on their
#     first SYN (the held SYN is released after the timeout, not lost); the
#     released-by-timeout count rises by one per connection, nothing fails
#     to be released, the defer queue never overflows
#   - agent stopped while it holds a packet (no peer, --defer-timeout 10000):
#     the held UDP datagram reaches the server once, sent when the agent
#     stops, not lost with it, and fwA's state counted it once (the released
#     frame is not tracked a second time)
# Runs 1, 3 and 4 go once per defer release path the kernel allows, forced
# with --defer-release (a refused path is reported as SKIP with its reason);
# run 2 once.
# Every wait polls with a deadline.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. scripts/netns-lib.sh

nl_build
N=${ASYM_CONNS:-100}   # connections per run
BATCH=${ASYM_BATCH:-25} # opened at the same time
PORT=7100
HOSTID_A=0xa5a5a5a5
HOSTID_B=0xb5b5b5b5
# generous, so that the first run tests defer and not the machine's load:
# released on ack, never by timeout (checked)
ACK_DEFER_TIMEOUT_MS=2000

nl_need "$OBJ" "$AGENT" "$CTL"
nl_need_tools python3 ip nsenter

nl_init as
CLI="ascl-$NL_ID" SRV="assv-$NL_ID" SW="assw-$NL_ID" FWA="asfa-$NL_ID" FWB="asfb-$NL_ID"
nl_fw_pair "$CLI" "$SRV" "$SW" "$FWA" "$FWB" 10.79
ip -n "$CLI" route add default via 10.79.1.2 # fwA
ip -n "$SRV" route add default via 10.79.2.3 # fwB
for fw in "$FWA" "$FWB"; do
	# no redirects: the asymmetry is the point
	nl_in "$fw" sysctl -qw net.ipv4.conf.all.send_redirects=0
	nl_in "$fw" sysctl -qw net.ipv4.conf.lan0.send_redirects=0
done
PIN_A=$(nl_bpffs_tmp)
PIN_B=$(nl_bpffs_tmp)

cat >"$NL_TMP/rules.conf" <<'EOF'
# block by default; TCP states are created by a SYN from the LAN only
block all
pass in on lan0 from 10.79.1.0/24 to any
pass out on wan0
EOF

# ---- helpers ---------------------------------------------------------------------

# server: per connection, reads one line and answers "R<its total_retrans>"
# (SYN-ACK retransmissions of the request are counted there too).
# client: N connections, BATCH at a time, non-blocking; per connection one
# line "ok MS CLIENT_RETRANS SERVER_RETRANS" or "fail REASON"; exit 0.
cat >"$NL_TMP/conn.py" <<'PY'
import selectors, socket, struct, sys, threading, time

def total_retrans(s):
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return struct.unpack_from("I", info, 100)[0]  # tcpi_total_retrans

def serve(addr, port, ready):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, int(port)))
    ls.listen(1024)
    open(ready, "w").write("listening\n")
    def one(c):
        with c:
            c.settimeout(10)
            try:
                if c.recv(64):
                    c.sendall(b"R%d\n" % total_retrans(c))
                    c.recv(64)  # until the client closes
            except OSError:
                pass
    while True:
        c, _ = ls.accept()
        threading.Thread(target=one, args=(c,), daemon=True).start()

def batch(addr, port, count, out):
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((addr, int(port)))
        socks.append((s, time.monotonic()))
    sel = selectors.DefaultSelector()
    for i, (s, _) in enumerate(socks):
        sel.register(s, selectors.EVENT_WRITE, i)
    done = {}
    deadline = time.monotonic() + 8
    while len(done) < count and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.05):
            sel.unregister(key.fileobj)
            done[key.data] = time.monotonic()
    for i, (s, t0) in enumerate(socks):
        if i not in done:
            out.append("fail connect timed out")
            s.close()
            continue
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            out.append("fail connect errno %d" % err)
            s.close()
            continue
        ms = 1000 * (done[i] - t0)
        try:
            s.setblocking(True)
            s.settimeout(5)
            s.sendall(b"hello\n")
            reply = s.recv(64)
            if not reply.startswith(b"R"):
                raise OSError("bad reply %r" % reply)
            out.append("ok %.1f %d %d" % (ms, total_retrans(s), int(reply[1:])))
        except OSError as e:
            out.append("fail data %s" % e)
        s.close()

if sys.argv[1] == "server":
    serve(*sys.argv[2:5])
else:
    addr, port, n, per = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    out = []
    while n > 0:
        batch(addr, port, min(per, n), out)
        n -= per
    print("\n".join(out))
PY

start_agent() # A|B ARGS...
{
	local name=$1 ns pin hostid
	shift
	if [ "$name" = A ]; then
		ns=$FWA pin=$PIN_A hostid=$HOSTID_A
	else
		ns=$FWB pin=$PIN_B hostid=$HOSTID_B
	fi
	nl_agent_run "$name" "$ns" "$NL_TMP/$name.sock" --syncdev sync0 --attach lan0 --attach wan0 \
		--pin-dir "$pin" --obj "$OBJ" --hostid "$hostid" --rules "$NL_TMP/rules.conf" -v "$@"
}

stop_agent() { nl_agent_stop "$1"; } # A|B

status() # A|B FIELD: of the agent's status
{
	python3 "$NL_LIB_DIR/ctlq.py" "$NL_TMP/$1.sock" "status --json" "$2"
}

dp_counter() # A|B NAME
{
	local pin=$PIN_A
	[ "$1" = B ] && pin=$PIN_B
	"$CTL" --pin-dir "$pin" --ctl "$NL_TMP/none.sock" stats --json | python3 "$NL_LIB_DIR/ctlq.py" - "datapath.$2"
}

bulk_done() # A|B
{
	[ "$(status "$1" bulk 2>/dev/null)" = done ]
}

syn_retrans() # NS: TcpExt TCPSynRetrans (SYN and SYN-ACK retransmissions) of NS
{
	nl_in "$1" cat /proc/net/netstat | awk '
		$1 == "TcpExt:" && !seen { for (i = 2; i <= NF; i++) col[$i] = i; seen = 1; next }
		$1 == "TcpExt:" { print $col["TCPSynRetrans"] }'
}

syn_retrans_both()
{
	echo $(($(syn_retrans "$CLI") + $(syn_retrans "$SRV")))
}

# run_conns LABEL: N connections from the client; sets OK, RETRIED, FAILED
# (RETRIED: completed, but a SYN or SYN-ACK had to be sent again)
run_conns()
{
	local label=$1 out=$NL_TMP/conns-$1.txt
	nl_in "$CLI" python3 "$NL_TMP/conn.py" client 10.79.2.10 "$PORT" "$N" "$BATCH" >"$out" ||
		nl_fail "$label: connection client crashed"
	OK=$(awk '$1 == "ok" && $3 == 0 && $4 == 0' "$out" | wc -l)
	RETRIED=$(awk '$1 == "ok" && ($3 > 0 || $4 > 0)' "$out" | wc -l)
	FAILED=$(grep -c '^fail' "$out")
	echo "$label: $N connections: $OK on the first SYN, $RETRIED needed a retransmission, $FAILED failed;" \
		"connect time p50 $(awk '$1 == "ok" {print $2}' "$out" | sort -n |
			awk '{v[NR] = $1} END {print NR ? v[int((NR + 1) / 2)] : "-"}') ms"
}

# ---- run 1: --defer on both --------------------------------------------------------

nl_release_paths "$FWA" "$PIN_A" "test_asym defer" || nl_die "defer: no release path allowed"
nl_bg SERVER_PID "$SRV" python3 "$NL_TMP/conn.py" server 10.79.2.10 "$PORT" "$NL_TMP/server.ready"
nl_wait_until 10 nl_file_has "$NL_TMP/server.ready" listening || nl_die "server did not start"

run_defer_acked() # PATH
{
	local path=$1 dp_held_before label="with defer ($1)"
	dp_held_before=$(dp_counter A defer_held)
	start_agent A --defer --defer-release "$path" --defer-timeout "$ACK_DEFER_TIMEOUT_MS"
	start_agent B --defer --defer-release "$path" --defer-timeout "$ACK_DEFER_TIMEOUT_MS"
	python3 "$NL_LIB_DIR/ctlq.py" "$NL_TMP/A.sock" bulk >/dev/null # A asked alone: ask again
	nl_wait_until 15 bulk_done A && nl_wait_until 15 bulk_done B || nl_die "bulk updates not done"
	[ "$(status A defer_release)" = "$path" ] || nl_fail "$label: fwA releases by $(status A defer_release)"
	# the path works at all: ICMP echo creates a state on fwA, its reply crosses fwB
	nl_wait_until 10 nl_in "$CLI" ping -c1 -W1 -q 10.79.2.10 >/dev/null ||
		nl_die "ping client -> fwA -> server -> fwB -> client fails ($path)"

	acks_before=$(status A defer_released_ack)
	retrans_before=$(syn_retrans_both)
	run_conns "$label"
	retrans_sum=$(($(syn_retrans_both) - retrans_before))
	acks=$(($(status A defer_released_ack) - acks_before))
	if [ "$OK" = "$N" ] && [ "$retrans_sum" = 0 ]; then
		nl_pass "$label: all $N asymmetric connections completed on the first SYN"
	else
		nl_fail "$label: $RETRIED retransmitted, $FAILED failed, TCPSynRetrans +$retrans_sum: $(grep -v '^ok .* 0 0$' "$NL_TMP/conns-$label.txt" | head -3 | tr '\n' ' ')"
	fi
	[ "$acks" -ge "$N" ] || nl_fail "fwA released only $acks held packets on B's ack, expected >= $N"
	[ "$(status A defer_released_timeout)" = 0 ] ||
		nl_fail "fwA released $(status A defer_released_timeout) packets by timeout with B acknowledging"
	[ "$(status A defer_release_failed)" = 0 ] || nl_fail "fwA failed to release $(status A defer_release_failed) packets"
	[ "$(dp_counter A defer_full)" = 0 ] || nl_fail "fwA's defer queue overflowed $(dp_counter A defer_full) times"
	echo "fwA: $acks packets held and released on fwB's ack"
	if [ "$path" = redirect ]; then
		[ "$(status A defer_redirected)" -ge "$N" ] && [ "$(status A defer_redirect_refused)" = 0 ] ||
			nl_fail "$label: fwA redirected $(status A defer_redirected), refused $(status A defer_redirect_refused)"
	fi
	# fwA's own connection: the state is made by `pass out on wan0`, at tc egress
	egress_before=$(status A defer_released_ack)
	nl_in "$FWA" python3 "$NL_TMP/conn.py" client 10.79.2.10 "$PORT" 1 1 >"$NL_TMP/conns-egress.txt" ||
		nl_fail "egress: connection client crashed"
	if grep -q '^ok [0-9.]* 0 0$' "$NL_TMP/conns-egress.txt" &&
		[ "$(status A defer_released_ack)" -gt "$egress_before" ]; then
		nl_pass "fwA's own connection: SYN held at egress, released on fwB's ack, no retransmission"
	else
		nl_fail "fwA's own connection: $(cat "$NL_TMP/conns-egress.txt"), released on ack $egress_before -> $(status A defer_released_ack)"
	fi
	# fwA's datapath holds only while this agent runs: every packet held since
	# it started is released exactly once (held here 0 once everything went)
	nl_wait_until 10 held_none || nl_fail "fwA still holds $(status A defer_held) packets"
	held=$(($(dp_counter A defer_held) - dp_held_before))
	released=$(($(status A defer_released_ack) + $(status A defer_released_timeout) + $(status A defer_release_failed)))
	if [ "$held" = "$released" ]; then
		nl_pass "$label: fwA: $held packets held, as many released"
	else
		nl_fail "$label: fwA: $held packets held by the datapath, $released released by the agent"
	fi
	stop_agent A
	stop_agent B
}

held_none() { [ "$(status A defer_held)" = 0 ]; }
for path in "${NL_RELEASE_PATHS[@]}"; do
	run_defer_acked "$path"
done

# ---- run 2: no defer --------------------------------------------------------------

start_agent B
start_agent A
nl_wait_until 15 bulk_done A || nl_die "bulk update of the restarted A not done"
[ "$(status A defer)" = false ] || nl_fail "defer still on after the restart without --defer"
[ "$(status A defer_release)" = none ] || nl_fail "a release path ($(status A defer_release)) without --defer"
drops_before=$(dp_counter B blocked_rule)
retrans_before=$(syn_retrans_both)
run_conns "without defer"
retrans_sum=$(($(syn_retrans_both) - retrans_before))
drops=$(($(dp_counter B blocked_rule) - drops_before))
echo "without defer: $((RETRIED + FAILED)) of $N connections needed a retransmission or failed (TCPSynRetrans +$retrans_sum, fwB blocked $drops packets)"
if [ $((RETRIED + FAILED)) -gt 0 ]; then
	nl_pass "without --defer $((RETRIED + FAILED)) of $N connections lost their SYN-ACK at fwB"
else
	nl_fail "without --defer every connection completed on the first SYN: the defer check proves nothing"
fi

# ---- run 3: defer timeout, no peer -------------------------------------------------

stop_agent B
stop_agent A
# fwB without an agent: no datapath there, nobody to acknowledge an insert
run_defer_timeout() # PATH
{
	local path=$1
	start_agent A --defer --defer-release "$path" --defer-timeout 20
	to_before=$(status A defer_released_timeout)
	held_before=$(dp_counter A defer_held)
	retrans_before=$(syn_retrans_both)
	N=10 BATCH=5 run_conns "defer timeout ($path)"
	retrans_sum=$(($(syn_retrans_both) - retrans_before))
	released=$(($(status A defer_released_timeout) - to_before))
	held=$(($(dp_counter A defer_held) - held_before))
	if [ "$OK" = 10 ] && [ "$retrans_sum" = 0 ]; then
		nl_pass "no peer ($path): 10 connections through fwA with --defer-timeout 20 completed on the first SYN"
	else
		nl_fail "no peer ($path): $RETRIED of 10 retransmitted, $FAILED failed, TCPSynRetrans +$retrans_sum"
	fi
	if [ "$released" -ge 10 ] && [ "$released" = "$held" ]; then
		nl_pass "no peer ($path): $released held packets released by timeout, as many as were held"
	else
		nl_fail "no peer ($path): $held packets held, $released released by timeout"
	fi
	[ "$(status A defer_release_failed)" = 0 ] || nl_fail "fwA failed to release $(status A defer_release_failed) packets"
	[ "$(status A defer_held)" = 0 ] || nl_fail "fwA still holds $(status A defer_held) packets"
	[ "$(dp_counter A defer_full)" = 0 ] || nl_fail "fwA's defer queue overflowed"

	stop_agent A
}
for path in "${NL_RELEASE_PATHS[@]}"; do
	run_defer_timeout "$path"
done

# ---- run 4: the agent stops while it holds a packet ----------------------------------

send_udp() # PAYLOAD [SPORT]: one datagram client -> server
{
	nl_in "$CLI" python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("", int(sys.argv[2])))
s.sendto(sys.argv[1].encode(), ("10.79.2.10", 7200))' "$1" "${2:-0}"
}
# udp_packets SPORT: packets fwA's state for client:SPORT -> server:7200
# counted from the client (the pinned table outlives the agent)
udp_packets()
{
	"$CTL" --pin-dir "$PIN_A" --ctl "$NL_TMP/none.sock" states --json | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    if s["proto"] == 17 and s["initiator"]["port"] == int(sys.argv[1]) and s["responder"]["port"] == 7200:
        print(s["packets"][0])' "$1"
}
held_one() { [ "$(status A defer_held)" -ge 1 ]; }
nl_bg UDP_PID "$SRV" python3 "$NL_LIB_DIR/udp_sink.py" 10.79.2.10 7200 "$NL_TMP/udp.txt"
nl_wait_until 10 nl_file_has "$NL_TMP/udp.txt" listening || nl_die "UDP server did not start"
run_stop_holding() # PATH SPORT
{
	local path=$1 sport=$2 counted
	start_agent A --defer --defer-release "$path" --defer-timeout 10000
	send_udp "held-at-stop-$path" "$sport"
	if nl_wait_until 10 held_one; then
		stop_agent A
		# after the agent: fwA forwards unfiltered; once this one is in, so is
		# anything the agent sent before it went
		send_udp "after-stop-$path"
		nl_wait_until 10 nl_file_has "$NL_TMP/udp.txt" "after-stop-$path" ||
			nl_fail "fwA does not forward after the agent ($path) stopped"
		copies=$(grep -c "^held-at-stop-$path\$" "$NL_TMP/udp.txt")
		if [ "$copies" = 1 ]; then
			nl_pass "agent ($path) stopped holding a packet: it reached the server, once"
		else
			nl_fail "agent ($path) stopped holding a packet: the server got it $copies times"
		fi
		# counted once, when it was held: the released frame is not tracked again
		counted=$(udp_packets "$sport")
		if [ "$counted" = 1 ]; then
			nl_pass "agent ($path): the released datagram was tracked once"
		else
			nl_fail "agent ($path): fwA's state counted ${counted:-no state} packets for one datagram"
		fi
	else
		nl_fail "fwA ($path) did not hold the datagram ($(status A defer_held) held)"
		stop_agent A
	fi
}
sport=7300
for path in "${NL_RELEASE_PATHS[@]}"; do
	run_stop_holding "$path" $((sport++))
done

if [ "$NL_FAILED" -ne 0 ]; then
	for name in A B; do
		nl_log "---- last lines of agent $name's log"
		grep -v '^[0-9]*: \|^;' "$NL_TMP/agent$name.log" | tail -15 >&2
	done
fi
nl_finish
