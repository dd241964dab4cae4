#!/usr/bin/env bash
# `make demo-nat` as a test (issue 15): scripts/demo-nat.sh builds its own
# namespaces (unique by its pid), runs NATed streams through a keepalived
# pair, kills the master and exits 0 only when every stream survived and the
# server's sockets kept their peer address:port and received data after the
# failover. Checked here: its exit status and the lines that say so.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. scripts/netns-lib.sh
nl_build
nl_need "$AGENT" "$CTL" "$OBJ"
nl_need_tools keepalived ethtool nsenter python3 ss join
nl_init demonat

STREAMS=8
if PFSYNC_BUILD=$BUILD DEMO_STREAMS=$STREAMS ./scripts/demo-nat.sh >"$NL_TMP/demo.out" 2>&1; then
	nl_ok "demo-nat.sh exits 0"
else
	nl_fail "demo-nat.sh failed: $(tail -n 15 "$NL_TMP/demo.out")"
fi
if nl_file_has "$NL_TMP/demo.out" "All $STREAMS streams survived and kept their public address:port"; then
	nl_ok "the demo reports all $STREAMS streams surviving with their public ports"
else
	nl_fail "the demo does not report all $STREAMS streams surviving"
fi
same=$(grep -cE '^ +10\.78\.2\.1:[0-9]+ +10\.78\.2\.1:[0-9]+ +[0-9]+ -> [0-9]+$' "$NL_TMP/demo.out")
[ "$same" -eq "$STREAMS" ] && nl_ok "the server lists $STREAMS translated peers before and after" ||
	nl_fail "the server lists $same translated peers before and after, expected $STREAMS"
nl_finish
