#!/usr/bin/env bash
# The NAT demo (issue 15): clients on a private LAN leave through the public
# address of a redundant pair of pfsync-xdp firewalls, `nat-to` the VRRP
# address, and keep their connections, with the same public ports, when the
# master dies.
#
#   cli 10.78.1.10 ─ br-lan ─┬─ lan0 [fwA] wan0 ─┬─ br-wan ─ srv 10.78.2.10
#   (gw VIP 10.78.1.1)       └─ lan0 [fwB] wan0 ─┘  (no route to 10.78.1.0/24)
#                  fwA sync0 10.78.3.1/30 <──> 10.78.3.2/30 sync0 fwB
#
# keepalived VRRP holds 10.78.1.1 (LAN gateway) and 10.78.2.1 (the public
# address) on the master; both firewalls translate the LAN to 10.78.2.1.
# The server sees only the public address and never has a route back to the
# LAN, so a stream that arrives at all arrives translated. Everything lives in
# network namespaces made here and is removed on any exit.
#
# Environment: DEMO_STREAMS (default 20), DEMO_KEEP=1 keeps the logs,
# PFSYNC_BUILD the build directory. Exit status 0 only when every stream
# survived and kept its public address:port as the server sees it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/demo-lib.sh
streams=${DEMO_STREAMS:-20}
port=7000
vip=10.78.2.1
demo_init pn pfsync-demo-nat

for t in keepalived ethtool nsenter python3 ss; do
	command -v "$t" >/dev/null || die "$t not found (scripts/deps.sh installs it)"
done
for f in "$build/pfsync-agent" "$build/pfsyncctl"; do
	[ -x "$f" ] || die "$f missing: run make"
done

say "Building the topology (namespaces *-$tag)"
demo_topology

ip -n $cli addr add 10.78.1.10/24 dev eth0
ip -n $cli route add default via 10.78.1.1
# The server has no route to the LAN: it can only answer translated packets.
ip -n $srv addr add 10.78.2.10/24 dev eth0
# XDP cannot tell a partial checksum (veth's tx offload) from a complete one,
# and NAT rewrites it incrementally: the hosts that send send full checksums,
# as a wire would carry them (README, NAT).
for ns in $cli $srv; do
	nsx $ns ethtool -K eth0 tx off >/dev/null || die "ethtool -K eth0 tx off in $ns"
done
n=2
for fw in $fwa $fwb; do
	ip -n $fw addr add 10.78.1.$n/24 dev lan0
	ip -n $fw addr add 10.78.2.$n/24 dev wan0
	ip -n $fw addr add 10.78.3.$((n - 1))/30 dev sync0
	nsx $fw sysctl -qw net.ipv4.ip_forward=1
	n=$((n + 1))
done

cat >"$work/rules.conf" <<EOF
# block by default; the LAN may open connections, which leave through the
# public (VRRP) address $vip. States are floating: the one state of a
# connection is made where it is translated, on wan0 outbound, so lan0 lets
# the LAN in without one.
block all
pass in on lan0 from 10.78.1.0/24 to any no state
pass out on wan0 from 10.78.1.0/24 nat-to $vip
EOF

say "Starting pfsync-agent on both firewalls (XDP + tc on lan0/wan0, sync on sync0)"
sed 's/^/    /' "$work/rules.conf"
start_fw a 0x0a0a0a0a --rules "$work/rules.conf"
start_fw b 0x0b0b0b0b --rules "$work/rules.conf"

say "Starting keepalived (VRRP) on both firewalls; fwA has the higher priority"
start_keepalived 10.78 81
has_vip() { ip -n "$1" -4 -o addr show dev wan0 | grep " $vip/" >/dev/null; }
no_vip() { ! has_vip "$1"; }
wait_until 20 has_vip $fwa || die "fwA never became VRRP master"
# both start as master until they hear each other: wait for fwB to step down
wait_until 15 no_vip $fwb || die "fwB did not step down to backup"
echo "fwA holds the gateway 10.78.1.1 and the public address $vip (VRRP master)"

say "Opening $streams TCP streams from the client 10.78.1.10 to the server 10.78.2.10:$port"
bg $srv python3 "$top/scripts/stream.py" server 10.78.2.10 $port >"$work/server.log" 2>&1
wait_until 10 nsx $srv sh -c "ss -ltn | grep -q ':$port '" || die "the stream server did not start"
bg $cli python3 "$top/scripts/stream.py" client 10.78.2.10 $port "$streams" 120 \
	"$work/client.status" >"$work/client.log" 2>&1
client=$last
wait_until 15 grep -q "^open $streams" "$work/client.status" ||
	die "the client could not open $streams connections"

# server_peers: "ADDR:PORT BYTES" per established stream, sorted: where the
# server's kernel sees it come from and how many bytes its socket received
server_peers() {
	nsx $srv ss -Htin state established "( sport = :$port )" | awk '
		/^[0-9]/ { peer = $NF; next }
		match($0, /bytes_received:[0-9]+/) { print peer, substr($0, RSTART + 15, RLENGTH - 15) }' | sort
}
# all_received_more BEFORE: every stream in BEFORE (server_peers output) is
# still there, with the same peer address:port, and has received more since
all_received_more() {
	server_peers >"$work/peers-now.txt"
	[ "$(wc -l <"$work/peers-now.txt")" -eq "$streams" ] &&
		join "$1" "$work/peers-now.txt" | awk -v n="$streams" '$3 > $2 { k++ } END { exit k != n }'
}
# translated_states a|b: how many of that firewall's TCP states nat-to the VIP
translated_states() {
	ctl "$1" states --json | python3 -c '
import json, sys
print(sum(1 for s in json.load(sys.stdin) if s["proto"] == 6 and s["nat"] == "nat"
          and s["wire_key"]["initiator"]["addr"] == sys.argv[1]))' "$vip"
}
b_synced() { [ "$(translated_states b)" -ge "$streams" ]; }
wait_until 15 b_synced || die "fwB did not learn the translated states from fwA"
echo "translated TCP states on fwA: $(translated_states a), on fwB (learned by pfsync): $(translated_states b)"
echo "A few of fwB's states (stack key (wire key) -> peer, as pfctl shows them):"
ctl b states | grep -F "($vip:" | head -4 | sed 's/^/    /'

server_peers >"$work/peers-before.txt"
echo "The server sees $(wc -l <"$work/peers-before.txt") streams, from:"
cut -d' ' -f1 "$work/peers-before.txt" | head -4 | sed 's/^/    /'
[ "$(wc -l <"$work/peers-before.txt")" -eq "$streams" ] || die "the server does not see $streams streams"
grep -v "^$vip:" "$work/peers-before.txt" >/dev/null && die "a stream reaches the server untranslated"

say "Killing the master: every link of fwA goes down"
marker=$(wc -l <"$work/client.status")
ip -n $fwa link set lan0 down
ip -n $fwa link set wan0 down
ip -n $fwa link set sync0 down
wait_until 10 has_vip $fwb || die "fwB did not take over the gateway and public addresses"
echo "fwB took over 10.78.1.1 and $vip"

streams_moved() {
	python3 "$top/scripts/stream.py" progressed "$work/client.status" "$marker" "$streams"
}
wait_until 20 streams_moved || die "not every stream moved again: $(tail -1 "$work/client.status")"
# The server side: the same sockets, so the same peer address:port, and each
# has received data since the failover; a packet arriving from another public
# port would not reach that socket at all.
wait_until 10 all_received_more "$work/peers-before.txt" ||
	die "not every server socket received data after the failover"
kill "$client" 2>/dev/null || true
wait "$client" 2>/dev/null || true

say "The server's view, before -> after the failover"
printf '    %-22s %-22s %s\n' "stream from (before)" "stream from (after)" "bytes received by the server before -> after"
join -a 1 "$work/peers-before.txt" "$work/peers-now.txt" |
	awk '{ printf "    %-22s %-22s %s -> %s\n", $1, ($3 == "" ? "(gone)" : $1), $2, $3 }'
echo "All $streams streams survived and kept their public address:port ($vip:...) across the failover."
python3 "$top/scripts/stream.py" summary "$work/client.status" "$marker"

say "What happened"
cat <<EOF
fwA translated each connection from the LAN to $vip with a port of its own (tc egress on wan0)
and sent the state to fwB with both keys, the LAN side (stack key) and the public side (wire
key), as OpenBSD's pfsync does. When fwA died, keepalived moved the addresses to fwB, which
found each connection under either key and rewrote it to the same public port, so the server's
sockets never noticed. Tearing everything down.
EOF
