#!/usr/bin/env bash
# nat-to (IF) follows the interface's address (issue 15). The agent starts
# with `nat-to (out0)` while out0 has no address yet (as PPP or DHCP would
# leave it): the rules load, and new connections are dropped and counted
# (nat_exhausted) until an address comes. Then they are translated to it,
# and, once it is replaced (as DHCP or a moved address would), to the new
# one; once it is removed, they are dropped again while the states made
# before keep their translation. Nothing is reloaded by hand. The same
# over IPv6, where out0 keeps its link-local address: that one is never
# taken (it means nothing past the link). Read from the state table's two
# keys (pfsyncctl states: `inside (public) -> server`) and the datapath's
# counters.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. scripts/netns-lib.sh
nl_build
nl_need "$OBJ" "$AGENT" "$CTL"
nl_need_tools python3 ip nsenter ethtool
nl_init natif
nl_topology
nl_in "$NL_CLIENT" ethtool -K eth0 tx off >/dev/null 2>&1 || nl_die "ethtool -K eth0 tx off failed"

# Without an address out0 still leads to the server: a device route and the
# server's MAC, so that forwarded packets reach out0's tc egress.
SERVER_MAC=$(ip -n "$NL_SERVER" -j link show eth0 |
	python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])') ||
	nl_die "cannot read the server's MAC"

# out0_without_address ADDR: out0's IPv4 address ADDR goes, the way out stays
out0_without_address()
{
	ip -n "$NL_FW" addr del "$1/24" dev "$NL_FW_OUT" || nl_die "cannot remove $1"
	ip -n "$NL_FW" route replace 10.201.2.0/24 dev "$NL_FW_OUT" ||
		nl_die "cannot add a device route"
	ip -n "$NL_FW" neigh replace "$NL_SERVER4" lladdr "$SERVER_MAC" dev "$NL_FW_OUT" \
		nud permanent || nl_die "cannot add the server's neighbour entry"
}
out0_without_address "$NL_FW_OUT4"

# out0_without_address6: the same for out0's global IPv6 address
out0_without_address6()
{
	ip -n "$NL_FW" addr del "$NL_FW_OUT6/64" dev "$NL_FW_OUT" || nl_die "cannot remove $NL_FW_OUT6"
	ip -n "$NL_FW" -6 route replace fd00:201:2::/64 dev "$NL_FW_OUT" ||
		nl_die "cannot add an IPv6 device route"
	ip -n "$NL_FW" neigh replace "$NL_SERVER6" lladdr "$SERVER_MAC" dev "$NL_FW_OUT" \
		nud permanent || nl_die "cannot add the server's IPv6 neighbour entry"
}

# a second (IF), on an interface that is deleted later (a PPP link going away)
ip -n "$NL_FW" link add gone0 type veth peer name gone0p || nl_die "cannot add gone0"
ip -n "$NL_FW" link set gone0 up || nl_die "cannot bring gone0 up"
nl_addr "$NL_FW" gone0 10.201.9.1/24

cat >"$NL_TMP/rules.conf" <<EOF
pass out on $NL_FW_OUT inet from 10.201.1.0/24 nat-to ($NL_FW_OUT)
pass out on $NL_FW_OUT inet6 from fd00:201:1::/64 nat-to ($NL_FW_OUT)
pass out on gone0 inet from 10.201.1.0/24 nat-to (gone0)
EOF
PIN=$(nl_bpffs_tmp)
nl_agent_run fw "$NL_FW" "$NL_TMP/fw.sock" --syncdev lo --attach "$NL_FW_IN" \
	--attach "$NL_FW_OUT" --pin-dir "$PIN" --obj "$OBJ" --rules "$NL_TMP/rules.conf" -v

# udp_from PORT [6]: one datagram from the client's source port PORT to the
# server, over IPv6 with 6
udp_from()
{
	local server=$NL_SERVER4 family=AF_INET any=0.0.0.0
	[ "${2:-}" = 6 ] && { server=$NL_SERVER6 family=AF_INET6 any=::; }
	nl_in "$NL_CLIENT" python3 -c 'import socket,sys
s = socket.socket(getattr(socket, sys.argv[4]), socket.SOCK_DGRAM)
s.bind((sys.argv[3], int(sys.argv[1])))
s.sendto(b"x", (sys.argv[2], 9))' "$1" "$server" "$any" "$family"
}

fw_ctl()
{
	nl_fw "$CTL" --pin-dir "$PIN" --ctl "$NL_TMP/none.sock" "$@" 2>/dev/null
}

# endpoint ADDR PORT: as pfsyncctl states prints it (pf: 10.0.0.1:80,
# fd00::1[80]); without PORT, what comes before the port
endpoint()
{
	case $1 in
	*:*) echo "$1[${2:+$2]}" ;;
	*) echo "$1:$2" ;;
	esac
}

# translated_to PORT ADDR [CLIENT]: the client's flow from PORT is
# translated to ADDR (CLIENT: the client's address, IPv4 by default)
translated_to()
{
	fw_ctl states | nl_has -F -e "$(endpoint "${3:-$NL_CLIENT4}" "$1") ($(endpoint "$2")"
}

# has_state PORT [CLIENT]: the client's flow from PORT has a state
has_state()
{
	fw_ctl states | nl_has -F -e "$(endpoint "${2:-$NL_CLIENT4}" "$1") "
}

nat_exhausted()
{
	fw_ctl stats --json | python3 scripts/ctlq.py - datapath.nat_exhausted
}

counted_above()
{
	[ "$(nat_exhausted)" -gt "$1" ]
}

# dropped_without_address LABEL [6]: a new flow through the rule is
# dropped, counted, and leaves no state
try=40000
dropped_without_address()
{
	local before client=$NL_CLIENT4
	[ "${2:-}" = 6 ] && client=$NL_CLIENT6
	before=$(nat_exhausted) || nl_die "cannot read the datapath's counters"
	try=$((try + 1))
	udp_from "$try" "${2:-}" || nl_die "the client could not send"
	if nl_wait_until 10 counted_above "$before"; then
		nl_ok "$1: a new flow is dropped and counted (nat_exhausted)"
	else
		nl_fail "$1: a new flow was not counted as nat_exhausted (was $before)"
	fi
	if has_state "$try" "$client"; then
		nl_fail "$1: the dropped flow left a state"
	else
		nl_ok "$1: the dropped flow left no state"
	fi
}

# new_flow_translated ADDR [6]: a new flow (a new source port each try) goes
# out as ADDR; over IPv6 with 6
new_flow_translated()
{
	local client=$NL_CLIENT4
	[ "${2:-}" = 6 ] && client=$NL_CLIENT6
	try=$((try + 1))
	udp_from "$try" "${2:-}" && translated_to "$try" "$1" "$client"
}

if nl_wait_until 10 nl_file_has "$NL_TMP/agentfw.log" "rules loaded"; then
	nl_ok "nat-to ($NL_FW_OUT) loads while $NL_FW_OUT has no address"
else
	nl_die "the agent did not load nat-to ($NL_FW_OUT) without an address"
fi
rule_addr=$(fw_ctl rules --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["nat"]["addr"])')
if [ "$rule_addr" = None ]; then
	nl_ok "pfsyncctl rules --json: the rule's address is null until one comes"
else
	nl_fail "pfsyncctl rules --json: the rule's address is \"$rule_addr\", want null"
fi
dropped_without_address "no address yet"

nl_addr "$NL_FW" "$NL_FW_OUT" "$NL_FW_OUT4/24"
if nl_wait_until 10 new_flow_translated "$NL_FW_OUT4"; then
	nl_ok "nat-to ($NL_FW_OUT): translated to $NL_FW_OUT4 once it came"
else
	nl_fail "nat-to ($NL_FW_OUT): no state translated to $NL_FW_OUT4"
fi
KEPT=$try

# the address changes: old one gone, a new one in its place
NEW4=10.201.2.7
# (removed first: removing a primary address takes its secondaries with it)
ip -n "$NL_FW" addr del "$NL_FW_OUT4/24" dev "$NL_FW_OUT" || nl_die "cannot remove $NL_FW_OUT4"
ip -n "$NL_FW" addr add "$NEW4/24" dev "$NL_FW_OUT" || nl_die "cannot add $NEW4"
if nl_wait_until 10 new_flow_translated "$NEW4"; then
	nl_ok "nat-to ($NL_FW_OUT): new connections take the new address $NEW4"
else
	nl_fail "nat-to ($NL_FW_OUT): new connections not translated to $NEW4"
fi
if nl_wait_until 5 nl_file_has "$NL_TMP/agentfw.log" "address is now $NEW4"; then
	nl_ok "the agent logged the new (IF) address"
else
	nl_fail "the agent did not log the new (IF) address"
fi

# the address goes: new connections are dropped again, older states stay
out0_without_address "$NEW4"
if nl_wait_until 10 nl_file_has "$NL_TMP/agentfw.log" "has no IPv4 address now"; then
	nl_ok "the agent logged that ($NL_FW_OUT) lost its address"
else
	nl_fail "the agent did not log the lost (IF) address"
fi
dropped_without_address "address removed"
if translated_to "$KEPT" "$NL_FW_OUT4"; then
	nl_ok "a state made before keeps its translation"
else
	nl_fail "the state of port $KEPT lost its translation"
fi

# IPv6: the global address, and once it is gone nothing (not the link-local one)
if nl_wait_until 10 new_flow_translated "$NL_FW_OUT6" 6; then
	nl_ok "nat-to ($NL_FW_OUT) inet6: translated to $NL_FW_OUT6"
else
	nl_fail "nat-to ($NL_FW_OUT) inet6: no state translated to $NL_FW_OUT6"
fi
out0_without_address6
if nl_wait_until 10 nl_file_has "$NL_TMP/agentfw.log" "has no IPv6 address now"; then
	nl_ok "without its global IPv6 address, ($NL_FW_OUT) has none for nat-to (link-local left out)"
else
	nl_fail "the agent did not see ($NL_FW_OUT) lose its IPv6 address (took the link-local one?)"
fi
dropped_without_address "IPv6 address removed" 6

# the interface of an (IF) is deleted: no address, said by the name it had
ip -n "$NL_FW" link del gone0 || nl_die "cannot delete gone0"
if nl_wait_until 10 nl_file_has "$NL_TMP/agentfw.log" "(gone0): the interface has no IPv4 address now"; then
	nl_ok "a deleted (IF) interface leaves its rule without an address"
else
	nl_fail "the agent did not see (gone0) deleted"
fi
nl_finish
