#!/usr/bin/env bash
# nat-to (IF) follows the interface's address (issue 15): the agent runs with
# `nat-to (out0)`; new connections are translated to out0's address, and,
# once that address is replaced (as DHCP or a moved address would), to the
# new one, without reloading anything by hand. Read from the state table's
# two keys (pfsyncctl states: `inside (public) -> server`).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. scripts/netns-lib.sh
nl_build
nl_need "$OBJ" "$AGENT" "$CTL"
nl_need_tools python3 ip nsenter ethtool
nl_init natif
nl_topology
nl_in "$NL_CLIENT" ethtool -K eth0 tx off >/dev/null 2>&1 || nl_die "ethtool -K eth0 tx off failed"

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

# translated_to PORT ADDR: the client's flow from PORT is translated to ADDR
translated_to()
{
	nl_fw "$CTL" --pin-dir "$PIN" --ctl "$NL_TMP/none.sock" states 2>/dev/null |
		nl_has -F -e "$NL_CLIENT4:$1 ($2:"
}

udp_from 40001 || nl_die "the client could not send"
if nl_wait_until 10 translated_to 40001 "$NL_FW_OUT4"; then
	nl_ok "nat-to ($NL_FW_OUT): translated to $NL_FW_OUT4"
else
	nl_fail "nat-to ($NL_FW_OUT): no state translated to $NL_FW_OUT4"
fi

# the address changes: old one gone, a new one in its place
NEW4=10.201.2.7
# (removed first: removing a primary address takes its secondaries with it)
ip -n "$NL_FW" addr del "$NL_FW_OUT4/24" dev "$NL_FW_OUT" || nl_die "cannot remove $NL_FW_OUT4"
ip -n "$NL_FW" addr add "$NEW4/24" dev "$NL_FW_OUT" || nl_die "cannot add $NEW4"
# new_flow_translated: a new flow (a new source port each try) goes out as NEW4
try=40100
new_flow_translated()
{
	try=$((try + 1))
	udp_from "$try" && translated_to "$try" "$NEW4"
}
if nl_wait_until 10 new_flow_translated; then
	nl_ok "nat-to ($NL_FW_OUT): new connections take the new address $NEW4"
else
	nl_fail "nat-to ($NL_FW_OUT): new connections not translated to $NEW4"
fi
if nl_file_has "$NL_TMP/agentfw.log" "address is now $NEW4"; then
	nl_ok "the agent logged the new (IF) address"
else
	nl_fail "the agent did not log the new (IF) address"
fi
nl_finish
