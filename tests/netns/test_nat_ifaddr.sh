#!/usr/bin/env bash
# nat-to (IF) follows the interface's address (issue 15). The agent starts
# with `nat-to (out0)` while out0 has no address yet (as PPP or DHCP would
# leave it): the rules load, and new connections are dropped and counted
# (nat_exhausted) until an address comes. Then they are translated to it,
# and, once it is replaced (as DHCP or a moved address would), to the new
# one; once it is removed, they are dropped again while the states made
# before keep their translation. Nothing is reloaded by hand. Read from the
# state table's two keys (pfsyncctl states: `inside (public) -> server`)
# and the datapath's counters.
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

cat >"$NL_TMP/rules.conf" <<EOF
pass out on $NL_FW_OUT inet from 10.201.1.0/24 nat-to ($NL_FW_OUT)
EOF
PIN=$(nl_bpffs_tmp)
nl_agent_run fw "$NL_FW" "$NL_TMP/fw.sock" --syncdev lo --attach "$NL_FW_IN" \
	--attach "$NL_FW_OUT" --pin-dir "$PIN" --obj "$OBJ" --rules "$NL_TMP/rules.conf" -v

# udp_from PORT: one datagram from the client's source port PORT to the server
udp_from()
{
	nl_in "$NL_CLIENT" python3 -c 'import socket,sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.sendto(b"x", (sys.argv[2], 9))' "$1" "$NL_SERVER4"
}

fw_ctl()
{
	nl_fw "$CTL" --pin-dir "$PIN" --ctl "$NL_TMP/none.sock" "$@" 2>/dev/null
}

# translated_to PORT ADDR: the client's flow from PORT is translated to ADDR
translated_to()
{
	fw_ctl states | nl_has -F -e "$NL_CLIENT4:$1 ($2:"
}

# has_state PORT: the client's flow from PORT has a state
has_state()
{
	fw_ctl states | nl_has -F -e "$NL_CLIENT4:$1 "
}

nat_exhausted()
{
	fw_ctl stats --json | python3 scripts/ctlq.py - datapath.nat_exhausted
}

counted_above()
{
	[ "$(nat_exhausted)" -gt "$1" ]
}

# dropped_without_address LABEL: a new flow through the rule is dropped,
# counted, and leaves no state
try=40000
dropped_without_address()
{
	local before
	before=$(nat_exhausted) || nl_die "cannot read the datapath's counters"
	try=$((try + 1))
	udp_from "$try" || nl_die "the client could not send"
	if nl_wait_until 10 counted_above "$before"; then
		nl_ok "$1: a new flow is dropped and counted (nat_exhausted)"
	else
		nl_fail "$1: a new flow was not counted as nat_exhausted (was $before)"
	fi
	if has_state "$try"; then
		nl_fail "$1: the dropped flow left a state"
	else
		nl_ok "$1: the dropped flow left no state"
	fi
}

# new_flow_translated ADDR: a new flow (a new source port each try) goes out as ADDR
new_flow_translated()
{
	try=$((try + 1))
	udp_from "$try" && translated_to "$try" "$1"
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
if nl_file_has "$NL_TMP/agentfw.log" "address is now $NEW4"; then
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
nl_finish
