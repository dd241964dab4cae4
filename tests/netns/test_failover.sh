#!/usr/bin/env bash
# Failover of a redundant pair, with real TCP connections:
#
#   client eth0 -- br-lan (switch ns) -- lan0 fwA wan0 -- br-wan -- eth0 server
#   10.78.1.10              10.78.1.2/.3 fwB .2.2/.3              10.78.2.10
#                          fwA sync0 10.78.3.1 <-> 10.78.3.2 sync0 fwB
#
# Both firewalls run pfsync-agent (--attach lan0/wan0, own bpffs, rules
# `block all`, pass in from the LAN) and keepalived VRRP holding the gateway
# addresses 10.78.1.1/10.78.2.1; fwA has the higher priority; a track_script
# keeps a node from mastering until `pfsyncctl status` says "bulk: done".
# Checked:
#   - bulk before takeover: fwB restarted with an empty table while fwA
#     serves a slow bulk (--bulk-rate) of thousands of states; fwA's uplinks
#     die during the bulk: fwB never holds the addresses while its bulk is not
#     done (keepalived puts it in FAULT), and takes over once it is
#   - failover: N long-lived TCP streams (data both ways, content checked)
#     through fwA; fwA's links go down; every stream goes on through fwB
#     without a reset or corrupted data; the stall per stream is printed
#   - control: the same topology with the sync link cut before the streams
#     open: fwB takes over but holds no state, and most streams die there
# Every wait polls with a deadline; the control's observation window is the
# only fixed wait (it looks for something that must not happen).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. scripts/netns-lib.sh

nl_build
STREAM=$PWD/scripts/stream.py
STREAMS=${FO_STREAMS:-100} # TCP connections through the pair
FILL=${FO_FILL:-3000}      # UDP states on fwA before fwB's restart
BULK_RATE=500              # states/s fwA's bulk goes at: FILL takes ~6 s
PORT=7000
CONTROL_WINDOW=8 # seconds the control's streams get to come back

nl_need "$OBJ" "$AGENT" "$CTL" "$STREAM"
nl_need_tools python3 ip nsenter keepalived
[ "$STREAMS" -ge 2 ] || nl_die "FO_STREAMS must be at least 2"

nl_init fo

# ---- one redundant pair ------------------------------------------------------

# pair_build RUN: namespaces and links of one pair; sets CLI SRV FWA FWB
pair_build()
{
	local run=$1 sw
	CLI="fo${run}c-$NL_ID" SRV="fo${run}s-$NL_ID" sw="fo${run}w-$NL_ID"
	FWA="fo${run}a-$NL_ID" FWB="fo${run}b-$NL_ID"
	nl_fw_pair "$CLI" "$SRV" "$sw" "$FWA" "$FWB" 10.78
	ip -n "$CLI" route add default via 10.78.1.1
	ip -n "$SRV" route add default via 10.78.2.1
}

# agent_start RUN A|B PIN: pfsync-agent RUN+NAME on fwA/fwB (nl_agent_run:
# nl_agent_stop and nl_finish check its exit status)
agent_start()
{
	local run=$1 name=$2 pin=$3 ns hostid
	# distinct per firewall and per run: 0xa0a0a0<run>, 0xb0b0b0<run>
	[ "$name" = A ] && ns=$FWA hostid=0xa0a0a0 || ns=$FWB hostid=0xb0b0b0
	[ "$run" = s ] && hostid+=01 || hostid+=02
	nl_agent_run "$run$name" "$ns" "$NL_TMP/$run$name.sock" --syncdev sync0 --attach lan0 \
		--attach wan0 --pin-dir "$pin" --obj "$OBJ" --hostid "$hostid" --bulk-rate "$BULK_RATE" \
		--rules "$NL_TMP/rules.conf" -v
}

# keepalived_start RUN A|B: VRRP for lan0 and wan0 as one sync group
keepalived_start()
{
	local run=$1 name=$2 ns prio me peer pid
	local conf=$NL_TMP/keepalived-$run$name.conf check=$NL_TMP/check-$run$name.sh
	if [ "$name" = A ]; then
		ns=$FWA prio=150 me=2 peer=3
	else
		ns=$FWB prio=100 me=3 peer=2
	fi
	cat >"$check" <<EOF
#!/bin/sh
# stay out of MASTER until this node's pfsync bulk update has completed
"$CTL" --ctl "$NL_TMP/$run$name.sock" status | grep -q "bulk: done"
EOF
	chmod +x "$check"
	"$PWD/scripts/keepalived-pair.sh" "fw$run$name" BACKUP "$prio" 10.78 "$me" "$peer" 71 \
		"$check" >"$conf" || nl_die "cannot write $conf"
	# VRRP (protocol 112) passes the datapath without a state
	ip netns exec "$ns" keepalived -n -l -D -P -f "$conf" -p "$NL_TMP/ka-$run$name.pid" \
		-r "$NL_TMP/vrrp-$run$name.pid" >"$NL_TMP/keepalived-$run$name.log" 2>&1 &
	pid=$!
	nl_on_cleanup "kill $pid; wait $pid"
}

has_vip() # NS
{
	ip -n "$1" -4 -o addr show dev lan0 2>/dev/null | nl_has " 10.78.1.1/"
}

no_vip() # NS
{
	! has_vip "$1"
}

# pair_start RUN: rules, agents (both bulks done), keepalived (fwA master)
pair_start()
{
	local run=$1
	pair_build "$run"
	PIN_A=$(nl_bpffs_tmp)
	PIN_B=$(nl_bpffs_tmp)
	agent_start "$run" A "$PIN_A"
	agent_start "$run" B "$PIN_B"
	# A asked while alone: ask again now that B listens (else A retries in 2 s)
	nl_ctlq "${run}A" bulk >/dev/null
	nl_wait_until 15 nl_bulk_done "${run}A" && nl_wait_until 15 nl_bulk_done "${run}B" ||
		nl_die "run $run: bulk updates not done: A $(nl_ctlq "${run}A" status | grep '^bulk:'), B $(nl_ctlq "${run}B" status | grep '^bulk:')"
	keepalived_start "$run" A
	keepalived_start "$run" B
	nl_wait_until 15 has_vip "$FWA" || nl_die "run $run: fwA never became VRRP master"
	nl_wait_until 15 no_vip "$FWB" || nl_die "run $run: fwB did not stay backup"
	nl_wait_until 10 nl_in "$CLI" ping -c1 -W1 -q 10.78.2.10 >/dev/null ||
		nl_die "run $run: client cannot reach the server through fwA"
}

tcp_states() # PIN
{
	"$CTL" --pin-dir "$1" states --json |
		python3 -c 'import json,sys; print(sum(1 for s in json.load(sys.stdin) if s["proto"] == 6))'
}

all_states() # PIN
{
	"$CTL" --pin-dir "$1" states --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}

at_least() # N CMD...: CMD prints a number >= N
{
	local n=$1
	shift
	[ "$("$@" 2>/dev/null || echo -1)" -ge "$n" ]
}

links_down() # NS IF...
{
	local ns=$1 ifname
	shift
	for ifname in "$@"; do
		ip -n "$ns" link set dev "$ifname" down
	done
}

cat >"$NL_TMP/rules.conf" <<'EOF'
# block by default; connections may only be opened from the LAN
block all
pass in on lan0 from 10.78.1.0/24 to any
pass out on wan0
EOF

# streams_open RUN: echo server and STREAMS client connections through fwA
streams_open()
{
	local run=$1
	nl_bg SERVER_PID "$SRV" python3 "$STREAM" server 10.78.2.10 "$PORT" 2>>"$NL_TMP/server-$run.log"
	nl_wait_until 10 nl_in "$SRV" sh -c "ss -ltn | grep -q ':$PORT '" || nl_die "echo server did not start"
	nl_bg CLIENT_PID "$CLI" python3 "$STREAM" client 10.78.2.10 "$PORT" "$STREAMS" 120 \
		"$NL_TMP/client-$run.status" 2>>"$NL_TMP/client-$run.log"
	nl_wait_until 20 nl_file_has "$NL_TMP/client-$run.status" "open $STREAMS" ||
		nl_die "run $run: the client could not open $STREAMS connections: $(tail -2 "$NL_TMP/client-$run.log")"
}

streams_moved() # RUN MARKER
{
	python3 "$STREAM" progressed "$NL_TMP/client-$1.status" "$2" "$STREAMS"
}

kv() # KEY: from the last summary
{
	sed -n "s/^$1=//p" "$NL_TMP/summary"
}

# ---- run s: bulk before takeover, then failover with state sync ----------------

pair_start s
nl_pass "pair up: fwA master, fwB backup, both bulk updates done"

# thousands of UDP states on fwA (one datagram per port), synced to fwB
nl_in "$CLI" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for port in range(20000, 20000 + int(sys.argv[1])):
    s.sendto(b"x", ("10.78.2.10", port))' "$FILL"
nl_wait_until 15 at_least "$FILL" all_states "$PIN_A" ||
	nl_die "fwA has $(all_states "$PIN_A") states, expected >= $FILL"

# fwB restarts with an empty table: its bulk from fwA takes seconds
nl_agent_stop sB
PIN_B=$(nl_bpffs_tmp)
agent_start s B "$PIN_B"
b_faulted() { grep -q "Entering FAULT STATE" "$NL_TMP/keepalived-sB.log"; }
nl_wait_until 10 b_faulted ||
	nl_fail "keepalived on fwB did not enter FAULT while its bulk runs ($(nl_ctlq sB status | grep '^bulk:'))"
# the master's uplinks die (the sync link stays up: the bulk goes on)
links_down "$FWA" lan0 wan0
early=0 waiting=0
b_watch()
{
	# VIP first, then the status: done is final, so "VIP and not done"
	# means fwB held the addresses before its bulk had completed
	local vip=0
	has_vip "$FWB" && vip=1
	if nl_bulk_done sB; then
		return 0
	fi
	waiting=$((waiting + 1))
	[ $vip = 1 ] && early=$((early + 1))
	return 1
}
nl_wait_until 40 b_watch || nl_fail "fwB's bulk update not done: $(nl_ctlq sB status | grep '^bulk')"
b_states=$(all_states "$PIN_B")
if [ "$early" = 0 ] && [ "$waiting" -ge 2 ]; then
	nl_pass "fwB held no gateway address during its bulk ($waiting polls with the master gone, bulk not done)"
else
	nl_fail "fwB held the gateway address in $early of $waiting polls before its bulk was done"
fi
[ "$b_states" -ge "$FILL" ] || nl_fail "fwB has $b_states states after its bulk, expected >= $FILL"
if nl_wait_until 15 has_vip "$FWB"; then
	nl_pass "fwB took over once its bulk was done ($b_states states)"
else
	nl_fail "fwB did not take over after its bulk: $(grep -c 'Entering' "$NL_TMP/keepalived-sB.log") transitions, last: $(grep 'Entering' "$NL_TMP/keepalived-sB.log" | tail -1)"
fi
grep -q "Entering MASTER STATE" <(sed -n '/Entering FAULT STATE/,$p' "$NL_TMP/keepalived-sB.log") ||
	nl_fail "keepalived on fwB: no FAULT -> MASTER in its log"
echo "keepalived on fwB (LAN): $(grep -o '(LAN) Entering [A-Z]* STATE' "$NL_TMP/keepalived-sB.log" |
	awk '{print $3}' | paste -sd' ')"

# fwA comes back and preempts (higher priority); its table stayed in sync
ip -n "$FWA" link set dev lan0 up
ip -n "$FWA" link set dev wan0 up
nl_wait_until 15 has_vip "$FWA" && nl_wait_until 15 no_vip "$FWB" ||
	nl_die "fwA did not become master again"

streams_open s
nl_wait_until 15 at_least "$STREAMS" tcp_states "$PIN_B" ||
	nl_fail "fwB learned $(tcp_states "$PIN_B") of $STREAMS TCP states from fwA"
marker=$(wc -l <"$NL_TMP/client-s.status")
links_down "$FWA" lan0 wan0 sync0
nl_wait_until 15 has_vip "$FWB" || nl_fail "fwB did not take over the gateway addresses"
if nl_wait_until 30 streams_moved s "$marker"; then
	nl_pass "all $STREAMS streams move again after fwA died, now through fwB"
else
	nl_fail "not every stream recovered: $(grep -m3 '^error' "$NL_TMP/client-s.status" | tr '\n' ' ')"
fi
# a while more on fwB alone: nothing breaks later
moved_at=$(wc -l <"$NL_TMP/client-s.status")
nl_wait_until 10 streams_moved s "$((moved_at + 10))" || nl_fail "streams stopped again on fwB"
python3 "$STREAM" summary "$NL_TMP/client-s.status" "$marker" kv >"$NL_TMP/summary"
if [ "$(kv broken)" = 0 ] && [ "$(kv survived)" = "$STREAMS" ]; then
	nl_pass "no stream reset or corrupted; interruption per stream: p50 $(kv stall_p50_ms) ms, max $(kv stall_max_ms) ms"
else
	nl_fail "with sync: $(kv broken) streams broken, $(kv survived) of $STREAMS alive: $(grep -m3 '^error' "$NL_TMP/client-s.status" | tr '\n' ' ')"
fi
echo "failover with pfsync: $STREAMS streams, stall p50 $(kv stall_p50_ms) ms, p99 $(kv stall_p99_ms) ms, max $(kv stall_max_ms) ms"
c_pass=$("$CTL" --pin-dir "$PIN_B" --ctl "$NL_TMP/none.sock" stats --json | python3 "$NL_LIB_DIR/ctlq.py" - datapath.packets_passed)
echo "fwB passed $c_pass packets"
kill "$CLIENT_PID" "$SERVER_PID" 2>/dev/null

# ---- run c: the same without state sync ------------------------------------------

pair_start c
# the sync link cut: fwB keeps "bulk: done" and its place in VRRP, but learns nothing
links_down "$FWA" sync0
links_down "$FWB" sync0
streams_open c
c_marker=$(wc -l <"$NL_TMP/client-c.status")
nl_wait_until 10 streams_moved c "$c_marker" || nl_fail "control: streams not moving through fwA"
[ "$(tcp_states "$PIN_B")" = 0 ] || nl_fail "control: fwB holds TCP states without sync"
c_marker=$(wc -l <"$NL_TMP/client-c.status")
links_down "$FWA" lan0 wan0
nl_wait_until 15 has_vip "$FWB" || nl_fail "control: fwB did not take over the gateway addresses"
# observation window: the streams get as long as they would need with sync
nl_wait_until "$CONTROL_WINDOW" streams_moved c "$c_marker" &&
	nl_fail "control: every stream recovered without state sync (the test proves nothing)"
python3 "$STREAM" summary "$NL_TMP/client-c.status" "$c_marker" kv >"$NL_TMP/summary"
dead=$((STREAMS - $(kv survived)))
echo "failover without pfsync: $dead of $STREAMS streams dead on fwB ($(kv broken) with a socket error)"
if [ "$dead" -gt $((STREAMS / 2)) ]; then
	nl_pass "control: without sync $dead of $STREAMS streams die on fwB"
else
	nl_fail "control: only $dead of $STREAMS streams died without sync"
fi

if [ "$NL_FAILED" -ne 0 ]; then
	for f in "$NL_TMP"/agent*.log "$NL_TMP"/keepalived-*.log; do
		nl_log "---- $f"
		grep -v '^[0-9]*: \|^;' "$f" | tail -15 >&2
	done
fi
nl_finish
