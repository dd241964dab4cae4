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
top=$PWD
build=${PFSYNC_BUILD:-$top/build}
streams=${DEMO_STREAMS:-20}
port=7000
vip=10.78.2.1

tag="pn$$"
work=$(mktemp -d "/tmp/pfsync-demo-nat.XXXXXX")
pids=()
namespaces=()

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

nsx() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@"
}

# bg NS CMD...: CMD in the background in NS, its pid in pids (nsenter execs
# CMD, so that pid is CMD's own and the clean-up can end it)
bg() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@" &
	last=$!
	pids+=("$last")
}

ctl() { # a|b ARGS...: pfsyncctl on that firewall
	local name=$1
	shift
	nsx "fw$name-$tag" "$build/pfsyncctl" --pin-dir "$work/bpf-$name" --ctl "$work/$name.sock" "$@"
}

# die MESSAGE: print it with the last lines of every log, then clean up.
die() {
	echo "demo-nat failed: $*" >&2
	for f in "$work"/*.log; do
		echo "---- $f" >&2
		tail -n 8 "$f" >&2
	done
	for name in a b; do
		[ -S "$work/$name.sock" ] || continue
		echo "---- fw$name: pfsyncctl stats / states" >&2
		ctl "$name" stats >&2 || true
		ctl "$name" states 2>&1 | head -8 >&2 || true
	done
	exit 1
}

cleanup() {
	set +e
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
	for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null; done
	for d in "$work"/bpf-*; do [ -d "$d" ] && umount "$d" 2>/dev/null; done
	if [ "${DEMO_KEEP:-0}" = 1 ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_until SECONDS CMD...: poll CMD every 50 ms until it succeeds.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.05
	done
}

mkns() {
	ip netns add "$1"
	namespaces+=("$1")
	ip -n "$1" link set lo up
}

# link NS1 IF1 NS2 IF2: a veth pair between two namespaces, created inside them.
link() {
	ip link add "$2" netns "$1" type veth peer name "$4" netns "$3"
	ip -n "$1" link set "$2" up
	ip -n "$3" link set "$4" up
}

for t in keepalived ethtool nsenter python3 ss; do
	command -v "$t" >/dev/null || die "$t not found (scripts/deps.sh installs it)"
done
for f in "$build/pfsync-agent" "$build/pfsyncctl"; do
	[ -x "$f" ] || die "$f missing: run make"
done

cli=cli-$tag srv=srv-$tag sw=sw-$tag fwa=fwa-$tag fwb=fwb-$tag
say "Building the topology (namespaces *-$tag)"
for ns in $cli $srv $sw $fwa $fwb; do mkns "$ns"; done
ip -n $sw link add br-lan type bridge
ip -n $sw link add br-wan type bridge
ip -n $sw link set br-lan up
ip -n $sw link set br-wan up
link $cli eth0 $sw lcli
link $fwa lan0 $sw lfwa
link $fwb lan0 $sw lfwb
link $fwa wan0 $sw wfwa
link $fwb wan0 $sw wfwb
link $srv eth0 $sw wsrv
for p in lcli lfwa lfwb; do ip -n $sw link set $p master br-lan; done
for p in wfwa wfwb wsrv; do ip -n $sw link set $p master br-wan; done
link $fwa sync0 $fwb sync0

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
start_fw() {
	local fw=$1 name=$2 hostid=$3
	mkdir -p "$work/bpf-$name"
	mount -t bpf bpf "$work/bpf-$name"
	bg "$fw" "$build/pfsync-agent" --syncdev sync0 --attach lan0 --attach wan0 \
		--pin-dir "$work/bpf-$name" --ctl "$work/$name.sock" --hostid "$hostid" \
		--rules "$work/rules.conf" -q 2>"$work/agent-$name.log"
	wait_until 10 test -S "$work/$name.sock" || die "pfsync-agent on fw$name did not start"
}
start_fw $fwa a 0x0a0a0a0a
start_fw $fwb b 0x0b0b0b0b

say "Starting keepalived (VRRP) on both firewalls; fwA has the higher priority"
write_keepalived() {
	local name=$1 prio=$2 me=$3 peer=$4 state=$5
	cat >"$work/check-$name.sh" <<EOF
#!/bin/sh
# Stay backup until this node's pfsync bulk update has completed.
"$build/pfsyncctl" --ctl "$work/$name.sock" status | grep "bulk: done" >/dev/null
EOF
	chmod +x "$work/check-$name.sh"
	"$top/scripts/keepalived-pair.sh" "fw$name-$tag" "$state" "$prio" 10.78 "$me" "$peer" 81 \
		"$work/check-$name.sh" >"$work/keepalived-$name.conf"
}
write_keepalived a 150 2 3 MASTER
write_keepalived b 100 3 2 BACKUP
for name in a b; do
	bg "fw$name-$tag" keepalived -n -l -D -f "$work/keepalived-$name.conf" -p "$work/ka-$name.pid" \
		-r "$work/vrrp-$name.pid" >"$work/keepalived-$name.log" 2>&1
done
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
