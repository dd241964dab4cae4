#!/usr/bin/env bash
# Failover of NATed TCP streams (issue 15):
#
#   client eth0 -- br-lan -- lan0 fwA wan0 -- br-wan -- eth0 server
#   10.79.1.10               lan0 fwB wan0               10.79.2.10
#                 fwA sync0 10.79.3.1 <-> 10.79.3.2 sync0 fwB
#
# The gateway addresses 10.79.1.1 / 10.79.2.1 sit on fwA, then move to fwB
# (by hand: this test is about the states, not VRRP). Both run pfsync-agent
# with `nat-to 10.79.2.1`; the server has no route to the client's network,
# so only translated connections are answered. Checked: the streams opened
# through fwA reach fwB as states with both keys, go on through fwB after
# the move without a break, and the server sees the same public ports
# before and after (a stream surviving means the server's socket still
# gets its tuple; the ports are compared in both tables too).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. scripts/netns-lib.sh
nl_build
STREAM=$PWD/scripts/stream.py
STREAMS=${NAT_FO_STREAMS:-20}
PORT=7000

nl_need "$OBJ" "$AGENT" "$CTL" "$STREAM"
nl_need_tools python3 ip nsenter ethtool
nl_init natfo

CLI="nfc-$NL_ID" SRV="nfs-$NL_ID" SW="nfw-$NL_ID" FWA="nfa-$NL_ID" FWB="nfb-$NL_ID"
nl_fw_pair "$CLI" "$SRV" "$SW" "$FWA" "$FWB" 10.79
ip -n "$CLI" route add default via 10.79.1.1
for ns in "$CLI" "$SRV"; do
	nl_in "$ns" ethtool -K eth0 tx off >/dev/null 2>&1 || nl_die "ethtool -K eth0 tx off failed in $ns"
done
nl_addr "$FWA" lan0 10.79.1.1/24
nl_addr "$FWA" wan0 10.79.2.1/24

cat >"$NL_TMP/rules.conf" <<'EOF'
pass out on wan0 inet proto tcp from 10.79.1.0/24 nat-to 10.79.2.1
EOF
PIN_A=$(nl_bpffs_tmp)
PIN_B=$(nl_bpffs_tmp)
nl_agent_run A "$FWA" "$NL_TMP/A.sock" --syncdev sync0 --attach lan0 --attach wan0 \
	--pin-dir "$PIN_A" --obj "$OBJ" --hostid 0xa0a0a015 --rules "$NL_TMP/rules.conf" -v
nl_agent_run B "$FWB" "$NL_TMP/B.sock" --syncdev sync0 --attach lan0 --attach wan0 \
	--pin-dir "$PIN_B" --obj "$OBJ" --hostid 0xb0b0b015 --rules "$NL_TMP/rules.conf" -v
nl_ctlq A bulk >/dev/null
nl_wait_until 15 nl_bulk_done A && nl_wait_until 15 nl_bulk_done B || nl_die "bulk updates not done"

nl_bg SERVER_PID "$SRV" python3 "$STREAM" server 10.79.2.10 "$PORT" 2>>"$NL_TMP/server.log"
nl_wait_until 10 nl_in "$SRV" sh -c "ss -ltn | grep -q ':$PORT '" || nl_die "echo server did not start"
nl_bg CLIENT_PID "$CLI" python3 "$STREAM" client 10.79.2.10 "$PORT" "$STREAMS" 120 \
	"$NL_TMP/client.status" 2>>"$NL_TMP/client.log"
if nl_wait_until 20 nl_file_has "$NL_TMP/client.status" "open $STREAMS"; then
	nl_ok "$STREAMS NATed streams open through fwA"
else
	nl_die "the client could not open $STREAMS connections: $(tail -2 "$NL_TMP/client.log")"
fi

# public_ports PIN: sorted translated source ports of the TCP states to the server
public_ports()
{
	"$CTL" --pin-dir "$1" --ctl "$NL_TMP/none.sock" states --json | python3 -c '
import json, sys
ports = sorted(s["wire_key"]["initiator"]["port"] for s in json.load(sys.stdin)
               if s["proto"] == 6 and s["nat"] == "nat"
               and s["wire_key"]["initiator"]["addr"] == "10.79.2.1"
               and s["stack_key"]["initiator"]["addr"] == "10.79.1.10")
print(" ".join(map(str, ports)))'
}

count_ports() # PIN: how many translated states
{
	local p
	p=$(public_ports "$1") || return 1
	set -- $p
	echo $#
}

b_has_all() { [ "$(count_ports "$PIN_B")" = "$STREAMS" ]; }

ports_a=$(public_ports "$PIN_A")
set -- $ports_a
[ $# -eq "$STREAMS" ] && nl_ok "fwA: $STREAMS states with both keys" ||
	nl_fail "fwA: $# translated states, expected $STREAMS"
if nl_wait_until 15 b_has_all; then
	nl_ok "fwB: the $STREAMS states arrived with both keys"
else
	nl_fail "fwB: $(count_ports "$PIN_B") translated states, expected $STREAMS"
fi

streams_moved() # MARKER
{
	python3 "$STREAM" progressed "$NL_TMP/client.status" "$1" "$STREAMS"
}

# the move: fwA's links go down, fwB takes the addresses, neighbours forget fwA
marker=$(wc -l <"$NL_TMP/client.status")
ip -n "$FWA" link set dev lan0 down
ip -n "$FWA" link set dev wan0 down
nl_addr "$FWB" lan0 10.79.1.1/24
nl_addr "$FWB" wan0 10.79.2.1/24
ip -n "$CLI" neigh flush all
ip -n "$SRV" neigh flush all
if nl_wait_until 30 streams_moved "$marker"; then
	nl_ok "all $STREAMS NATed streams go on through fwB"
else
	nl_fail "NATed streams did not all go on through fwB: $(grep -c '^error' "$NL_TMP/client.status") errors"
fi
grep '^error' "$NL_TMP/client.status" >/dev/null && nl_fail "a stream broke: $(grep -m1 '^error' "$NL_TMP/client.status")"
ports_b=$(public_ports "$PIN_B")
if [ -n "$ports_a" ] && [ "$ports_a" = "$ports_b" ]; then
	nl_ok "same public ports on fwB as on fwA"
else
	nl_fail "public ports differ: fwA '$ports_a', fwB '$ports_b'"
fi
python3 "$STREAM" summary "$NL_TMP/client.status" "$marker" | sed 's/^/[test_nat_failover.sh] stall: /' >&2
nl_finish
