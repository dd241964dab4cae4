#!/usr/bin/env bash
# demo-lib.sh: what scripts/demo.sh and scripts/demo-nat.sh share: their
# work directory and clean-up, namespaces, background processes, the
# keepalived pair and the error report. Sourced, after `cd` to the top:
#
#   . scripts/demo-lib.sh
#   demo_init TAG_PREFIX WORK_NAME    # tag=PREFIX$$, work=/tmp/WORK_NAME.XXXXXX
#
# Firewalls are the namespaces fwa-$tag and fwb-$tag, agent a and b with
# pin dirs $work/bpf-a|b and control sockets $work/a|b.sock.

top=$PWD
build=${PFSYNC_BUILD:-$top/build}

# demo_init PREFIX NAME: sets tag and work, the clean-up on any exit
demo_init() {
	tag="$1$$"
	work=$(mktemp -d "/tmp/$2.XXXXXX")
	pids=()
	namespaces=()
	trap demo_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

demo_cleanup() {
	set +e
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
	for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null; done
	for d in "$work"/bpf-*; do [ -d "$d" ] && umount "$d" 2>/dev/null; done
	if [ "${DEMO_KEEP:-0}" = 1 ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

nsx() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@"
}

# bg NS CMD...: CMD in the background in NS, its pid in pids and last
# (nsenter execs CMD, so that pid is CMD's own and the clean-up can end it)
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
	echo "demo failed: $*" >&2
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

# link NS1 IF1 NS2 IF2: a veth pair between two namespaces, created inside them
link() {
	ip link add "$2" netns "$1" type veth peer name "$4" netns "$3"
	ip -n "$1" link set "$2" up
	ip -n "$3" link set "$4" up
}

# demo_topology: the namespaces cli srv sw fwa fwb (names in those
# variables, suffixed -$tag) and their links, no addresses:
#   cli eth0 -- br-lan (sw) -- lan0 fwa|fwb wan0 -- br-wan (sw) -- eth0 srv
#   fwa sync0 <-- veth --> sync0 fwb
demo_topology() {
	local ns p
	cli=cli-$tag srv=srv-$tag sw=sw-$tag fwa=fwa-$tag fwb=fwb-$tag
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
}

# start_fw a|b HOSTID [AGENT ARGS...]: pfsync-agent on fw{a,b}-$tag (XDP + tc
# on lan0/wan0, sync on sync0, a private bpffs)
start_fw() {
	local name=$1 hostid=$2
	shift 2
	mkdir -p "$work/bpf-$name"
	mount -t bpf bpf "$work/bpf-$name"
	bg "fw$name-$tag" "$build/pfsync-agent" --syncdev sync0 --attach lan0 --attach wan0 \
		--pin-dir "$work/bpf-$name" --ctl "$work/$name.sock" --hostid "$hostid" \
		-q "$@" 2>"$work/agent-$name.log"
	wait_until 10 test -S "$work/$name.sock" || die "pfsync-agent on fw$name did not start"
}

# start_keepalived NET VRID: the VRRP pair (scripts/keepalived-pair.sh) on
# fwa (MASTER, priority 150, NET.x.2) and fwb (BACKUP, 100, NET.x.3), each
# held back while its pfsync bulk update is not done
start_keepalived() {
	local net=$1 vrid=$2 name prio me peer state
	for name in a b; do
		prio=150 me=2 peer=3 state=MASTER
		[ $name = b ] && prio=100 me=3 peer=2 state=BACKUP
		cat >"$work/check-$name.sh" <<-EOF
			#!/bin/sh
			# Stay backup until this node's pfsync bulk update has completed.
			"$build/pfsyncctl" --ctl "$work/$name.sock" status | grep "bulk: done" >/dev/null
		EOF
		chmod +x "$work/check-$name.sh"
		"$top/scripts/keepalived-pair.sh" "fw$name-$tag" "$state" "$prio" "$net" "$me" "$peer" "$vrid" \
			"$work/check-$name.sh" >"$work/keepalived-$name.conf"
		# VRRP adverts are protocol 112: the datapath lets them through without a state.
		bg "fw$name-$tag" keepalived -n -l -D -f "$work/keepalived-$name.conf" -p "$work/ka-$name.pid" \
			-r "$work/vrrp-$name.pid" >"$work/keepalived-$name.log" 2>&1
	done
}
