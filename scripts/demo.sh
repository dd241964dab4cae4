#!/usr/bin/env bash
# The two-firewall demo: a client and a server behind a redundant pair of
# pfsync-xdp firewalls (fwA master, fwB backup, keepalived VRRP holding the
# gateway addresses), TCP streams through the master, the master killed, the
# streams going on through the backup. Everything lives in network namespaces
# made here and is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
build=${PFSYNC_BUILD:-$top/build}
streams=${DEMO_STREAMS:-20}

tag="pd$$"
work=$(mktemp -d "/tmp/pfsync-demo.XXXXXX")
pids=()
namespaces=()

# die MESSAGE: print it with the last lines of every log, then clean up.
die() {
	echo "demo failed: $*" >&2
	for f in "$work"/*.log; do
		echo "---- $f" >&2
		tail -n 8 "$f" >&2
	done
	for name in a b; do
		[ -S "$work/$name.sock" ] || continue
		echo "---- fw$name: pfsyncctl stats / states" >&2
		nsx "fw$name-$tag" "$build/pfsyncctl" --pin-dir "$work/bpf-$name" --ctl "$work/$name.sock" stats >&2
		nsx "fw$name-$tag" "$build/pfsyncctl" --pin-dir "$work/bpf-$name" states >&2
	done
	exit 1
}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
	set +e
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
	for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null; done
	for d in "$work"/bpf-*; do [ -d "$d" ] && umount "$d" 2>/dev/null; done
	if [ "${DEMO_KEEP:-0}" = 1 ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT INT TERM

# wait_until SECONDS CMD...: poll CMD every 50 ms until it succeeds.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.05
	done
}

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

mkns() {
	ip netns add "$1"
	namespaces+=("$1")
	nsx "$1" ip link set lo up
}

# link NS1 IF1 NS2 IF2: a veth pair between two namespaces. The pair is born
# in the host namespace under unique temporary names and renamed inside.
nlinks=0
link() {
	local a="pdA$nlinks-$$" b="pdB$nlinks-$$"
	nlinks=$((nlinks + 1))
	ip link add "$a" type veth peer name "$b"
	ip link set "$a" netns "$1"
	ip link set "$b" netns "$3"
	nsx "$1" ip link set "$a" name "$2"
	nsx "$3" ip link set "$b" name "$4"
	nsx "$1" ip link set "$2" up
	nsx "$3" ip link set "$4" up
}

cli=cli-$tag srv=srv-$tag sw=sw-$tag fwa=fwa-$tag fwb=fwb-$tag
say "Building the topology (namespaces *-$tag)"
for ns in $cli $srv $sw $fwa $fwb; do mkns "$ns"; done
nsx $sw ip link add br-lan type bridge
nsx $sw ip link add br-wan type bridge
nsx $sw ip link set br-lan up
nsx $sw ip link set br-wan up
link $cli eth0 $sw lcli
link $fwa lan0 $sw lfwa
link $fwb lan0 $sw lfwb
link $fwa wan0 $sw wfwa
link $fwb wan0 $sw wfwb
link $srv eth0 $sw wsrv
for p in lcli lfwa lfwb; do nsx $sw ip link set $p master br-lan; done
for p in wfwa wfwb wsrv; do nsx $sw ip link set $p master br-wan; done
link $fwa sync0 $fwb sync0

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
start_fw() {
	local fw=$1 name=$2 hostid=$3
	mkdir -p "$work/bpf-$name"
	mount -t bpf bpf "$work/bpf-$name"
	ip netns exec "$fw" "$build/pfsync-agent" --syncdev sync0 --attach lan0 --attach wan0 \
		--pin-dir "$work/bpf-$name" --ctl "$work/$name.sock" --hostid "$hostid" \
		-q 2>"$work/agent-$name.log" &
	pids+=($!)
	wait_until 10 test -S "$work/$name.sock" || die "pfsync-agent on fw$name did not start"
	ip netns exec "$fw" "$build/pfsyncctl" --pin-dir "$work/bpf-$name" rules load "$work/rules.conf"
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
	"$top/scripts/keepalived-pair.sh" "fw$name" "$state" "$prio" 10.77 "$me" "$peer" 71 \
		"$work/check-$name.sh" >"$work/keepalived-$name.conf"
}
write_keepalived a 150 2 3 MASTER
write_keepalived b 100 3 2 BACKUP
# VRRP adverts are protocol 112: the datapath lets them through without a state.
ip netns exec $fwa keepalived -n -l -D -f "$work/keepalived-a.conf" -p "$work/ka-a.pid" \
	-r "$work/vrrp-a.pid" >"$work/keepalived-a.log" 2>&1 &
pids+=($!)
ip netns exec $fwb keepalived -n -l -D -f "$work/keepalived-b.conf" -p "$work/ka-b.pid" \
	-r "$work/vrrp-b.pid" >"$work/keepalived-b.log" 2>&1 &
pids+=($!)
has_gateway() { nsx "$1" ip -4 -o addr show dev lan0 | grep " 10.77.1.1/" >/dev/null; }
wait_until 15 has_gateway $fwa || die "fwA never became VRRP master"
# both start as master until they hear each other: wait for fwB to step down
no_gateway() { ! has_gateway "$1"; }
wait_until 15 no_gateway $fwb || die "fwB did not step down to backup"
echo "fwA holds the gateway addresses 10.77.1.1 and 10.77.2.1 (VRRP master)"

say "Opening $streams TCP streams from the client to the server through fwA"
ip netns exec $srv python3 "$top/scripts/stream.py" server 10.77.2.10 7000 >"$work/server.log" 2>&1 &
pids+=($!)
wait_until 10 nsx $srv sh -c "ss -ltn | grep -q ':7000 '"
ip netns exec $cli python3 "$top/scripts/stream.py" client 10.77.2.10 7000 "$streams" 30 \
	"$work/client.status" >"$work/client.log" 2>&1 &
client=$!
pids+=($client)
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
