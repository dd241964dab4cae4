#!/usr/bin/env bash
# The two-firewall demo: a client and a server behind a redundant pair of
# pfsync-xdp firewalls (fwA master, fwB backup, keepalived VRRP holding the
# gateway addresses), TCP streams through the master, the master killed, the
# streams going on through the backup. Everything lives in network namespaces
# made here and is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/demo-lib.sh
streams=${DEMO_STREAMS:-20}
demo_init pd pfsync-demo

say "Building the topology (namespaces *-$tag)"
demo_topology

ip netns exec $cli ip addr add 10.77.1.10/24 dev eth0
ip netns exec $cli ip route add default via 10.77.1.1
ip netns exec $srv ip addr add 10.77.2.10/24 dev eth0
ip netns exec $srv ip route add default via 10.77.2.1
n=2
for fw in $fwa $fwb; do
	nsx $fw ip addr add 10.77.1.$n/24 dev lan0
	nsx $fw ip addr add 10.77.2.$n/24 dev wan0
	nsx $fw ip addr add 10.77.3.$((n - 1))/30 dev sync0
	nsx $fw sysctl -qw net.ipv4.ip_forward=1
	n=$((n + 1))
done

cat >"$work/rules.conf" <<'EOF'
# block by default; connections may only be opened from the LAN
block all
pass in on lan0 from 10.77.1.0/24 to any
pass out on wan0
EOF

say "Starting pfsync-agent on both firewalls (XDP + tc on lan0/wan0, sync on sync0)"
start_fw a 0x0a0a0a0a --rules "$work/rules.conf"
start_fw b 0x0b0b0b0b --rules "$work/rules.conf"

say "Starting keepalived (VRRP) on both firewalls; fwA has the higher priority"
start_keepalived 10.77 71
has_gateway() { nsx "$1" ip -4 -o addr show dev lan0 | grep " 10.77.1.1/" >/dev/null; }
wait_until 15 has_gateway $fwa || die "fwA never became VRRP master"
# both start as master until they hear each other: wait for fwB to step down
no_gateway() { ! has_gateway "$1"; }
wait_until 15 no_gateway $fwb || die "fwB did not step down to backup"
echo "fwA holds the gateway addresses 10.77.1.1 and 10.77.2.1 (VRRP master)"

say "Opening $streams TCP streams from the client to the server through fwA"
bg $srv python3 "$top/scripts/stream.py" server 10.77.2.10 7000 >"$work/server.log" 2>&1
wait_until 10 nsx $srv sh -c "ss -ltn | grep -q ':7000 '"
bg $cli python3 "$top/scripts/stream.py" client 10.77.2.10 7000 "$streams" 30 \
	"$work/client.status" >"$work/client.log" 2>&1
client=$last
wait_until 15 grep -q "open $streams" "$work/client.status" || die "the client could not open $streams connections"

count_states() { nsx "$1" "$build/pfsyncctl" --pin-dir "$2" states --json | python3 -c \
	'import json,sys; print(sum(1 for s in json.load(sys.stdin) if s["proto"] == 6))'; }
tables_synced() { [ "$(count_states $fwb "$work/bpf-b")" -ge "$streams" ]; }
wait_until 10 tables_synced || die "fwB did not learn the states from fwA"
echo "TCP states on fwA: $(count_states $fwa "$work/bpf-a"), on fwB (learned by pfsync): $(count_states $fwb "$work/bpf-b")"
echo "A few of fwB's states:"
ip netns exec $fwb "$build/pfsyncctl" --pin-dir "$work/bpf-b" states >"$work/states-b.txt"
head -6 "$work/states-b.txt"

say "Killing the master: every link of fwA goes down"
before=$(tail -1 "$work/client.status")
ip netns exec $fwa ip link set lan0 down
ip netns exec $fwa ip link set wan0 down
ip netns exec $fwa ip link set sync0 down
wait_until 10 has_gateway $fwb || die "fwB did not take over the gateway addresses"
echo "fwB took over the gateway addresses"
echo "client before failover: $before"

marker=$(wc -l <"$work/client.status")
streams_moved() {
	python3 "$top/scripts/stream.py" progressed "$work/client.status" "$marker" "$streams"
}
if wait_until 20 streams_moved; then
	echo "All $streams streams are moving again, now through fwB."
else
	echo "Some streams did not recover:" >&2
	tail -3 "$work/client.status" >&2
	exit 1
fi
kill "$client" 2>/dev/null || true
wait "$client" 2>/dev/null || true
python3 "$top/scripts/stream.py" summary "$work/client.status" "$marker"

say "What happened"
cat <<EOF
fwA created a state for each connection in its XDP program, pfsync-agent sent them to fwB as
OpenBSD pfsync v6 packets on sync0, and fwB's agent wrote them into fwB's state table. When fwA
died, keepalived moved the gateway addresses to fwB, whose ruleset blocks everything that has no
state; the streams went on because fwB already had their states. Tearing everything down.
EOF
