#!/usr/bin/env bash
# The two-firewall sync test sized for a slow VM (make vmcheck's default
# netns suite; tests/netns/test_sync.sh is the full one):
#
#   client (eth0) ---- (in0) fwA (out0) ---- (eth0) server
#                           (sync0)
#                              |  10.211.9.0/24
#                           (sync0)
#                             fwB  (in0 <-> out0: a veth pair of its own)
#
# Two pfsync-agents, each with its own bpffs, load and attach the datapath
# themselves. Checked: both start; ICMP, UDP and TCP traffic through fwA
# creates states there; every state fwA created reaches fwB with the same
# id, creatorid and key. Only two object loads (the verifier is the slow
# part under TCG) and every wait is a poll with a deadline.
# shellcheck disable=SC2015,SC2317 # a && pass || fail; functions run by nl_wait_until
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. scripts/netns-lib.sh

BUILD=${PFSYNC_BUILD:-$PWD/build}
OBJ=${PFSYNC_BPF_OBJ:-$BUILD/pfsync_xdp.o}
AGENT=$BUILD/pfsync-agent
HOSTID_A=0xa1a1a1a1
HOSTID_B=0xb2b2b2b2
TCP_PORT=8080
# generous bounds: a passing run never waits for them
START_DEADLINE=180
SYNC_DEADLINE=60

[ -f "$OBJ" ] || nl_die "$OBJ not built (make)"
[ -x "$AGENT" ] || nl_die "$AGENT not built (make)"
nl_need_tools bpftool python3 ip nsenter ping

nl_init vs
nl_topology
FWA=$NL_FW
FWB="pffb-$NL_ID"
nl_netns_add "$FWB"
nl_veth "$FWA" sync0 "$FWB" sync0
nl_addr "$FWA" sync0 10.211.9.1/24
nl_addr "$FWB" sync0 10.211.9.2/24
ip link add name in0 netns "$FWB" type veth peer name out0 netns "$FWB" ||
	nl_die "cannot create fwB's veth pair"
ip -n "$FWB" link set dev in0 up
ip -n "$FWB" link set dev out0 up
PIN_A=$(nl_bpffs_tmp)
PIN_B=$(nl_bpffs_tmp)

# idents PIN [CREATOR]: "id/creatorid proto=N key-json" of every state in PIN's
# states map (only CREATOR's, if given), sorted.
cat >"$NL_TMP/idents.py" <<'PY'
import json, sys
creator = int(sys.argv[1], 0) if len(sys.argv) > 1 else None
lines = []
for entry in json.load(sys.stdin):
    f = entry.get("formatted", entry)
    key, val = f["key"], f["value"]
    if creator is None or val["creatorid"] == creator:
        lines.append("%d/%d proto=%d %s" % (val["id"], val["creatorid"], key["proto"],
                                            json.dumps(key, sort_keys=True)))
print("\n".join(sorted(lines)))
PY
idents()
{
	bpftool -j map dump pinned "$1/pfsync_states" 2>/dev/null |
		python3 "$NL_TMP/idents.py" ${2:+"$2"}
}

AGENT_PIDS=()
# Starts an agent in the background; both load the object at the same
# time, so the slow verifier runs are waited for once, not twice.
start_agent() # A|B NS PIN HOSTID
{
	local name=$1 ns=$2 pin=$3 hostid=$4 pid
	nsenter --net="/run/netns/$ns" -- "$AGENT" --syncdev sync0 --hostid "$hostid" \
		--pin-dir "$pin" --obj "$OBJ" --ctl "$NL_TMP/$name.sock" --interval 1 -v \
		--attach in0 --attach out0 >>"$NL_TMP/agent$name.log" 2>&1 &
	pid=$!
	nl_on_cleanup "kill $pid; wait $pid"
	AGENT_PIDS+=("$pid")
}

# Succeeds once both control sockets exist; fails for good (ends the
# wait early) if an agent died.
agents_up()
{
	local pid
	for pid in "${AGENT_PIDS[@]}"; do
		kill -0 "$pid" 2>/dev/null || return 2
	done
	[ -S "$NL_TMP/A.sock" ] && [ -S "$NL_TMP/B.sock" ]
}

agents_up_or_dead()
{
	agents_up
	[ $? -ne 1 ]
}

# ---- checks ------------------------------------------------------------------

start_agent A "$FWA" "$PIN_A" "$HOSTID_A"
start_agent B "$FWB" "$PIN_B" "$HOSTID_B"
nl_wait_until "$START_DEADLINE" agents_up_or_dead
if agents_up; then
	nl_pass "agents running on fwA and fwB"
else
	cat "$NL_TMP/agentA.log" "$NL_TMP/agentB.log" >&2
	nl_die "the agents did not start"
fi

# traffic through fwA: ICMP, UDP, and a TCP connection that is held open
nl_wait_until 30 nl_in "$NL_CLIENT" ping -c1 -W2 -q "$NL_SERVER4" >/dev/null &&
	nl_pass "client reaches server through fwA" ||
	nl_fail "ping client -> server through fwA failed"
nl_in "$NL_CLIENT" python3 -c 'import socket,sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", (sys.argv[1], 5353))' \
	"$NL_SERVER4" || nl_fail "UDP send failed"
nl_bg SERVER_PID "$NL_SERVER" python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(1)
c, _ = s.accept()
c.recv(1)' "$TCP_PORT"
tcp_connect()
{
	nl_in "$NL_CLIENT" python3 -c '
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
c.sendall(b"x")' "$NL_SERVER4" "$TCP_PORT" 2>/dev/null
}
nl_wait_until 30 tcp_connect && nl_pass "TCP connection through fwA" ||
	nl_fail "TCP connection through fwA failed"

# how many of ICMP, TCP and UDP have a state on fwA
protos_on_a()
{
	idents "$PIN_A" "$HOSTID_A" | awk '{ print $2 }' | sort -u | grep -cx 'proto=\(1\|6\|17\)'
}
three_on_a() { [ "$(protos_on_a)" -ge 3 ]; }
nl_wait_until "$SYNC_DEADLINE" three_on_a && nl_pass "fwA holds ICMP, UDP and TCP states" ||
	nl_fail "fwA holds $(protos_on_a) of the 3 expected states"

# every state A created is on B, same id, creatorid and key
a_subset_of_b()
{
	local a b
	a=$(idents "$PIN_A" "$HOSTID_A")
	b=$(idents "$PIN_B" "$HOSTID_A")
	[ -n "$a" ] && [ -z "$(comm -23 <(echo "$a") <(echo "$b"))" ]
}
if nl_wait_until "$SYNC_DEADLINE" a_subset_of_b; then
	nl_pass "every state of fwA is on fwB with the same id, creatorid and key"
else
	nl_fail "states of fwA missing on fwB: $(comm -23 <(idents "$PIN_A" "$HOSTID_A") <(idents "$PIN_B" "$HOSTID_A") | tr '\n' ';')"
fi
nl_finish
