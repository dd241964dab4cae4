#!/bin/sh
# ucarp --downscript: gives the virtual address back when this firewall
# stops being master. pfsync needs nothing here: the agent keeps syncing,
# so the states this firewall created reach the new master.
set -u
IF=$1
ADDR=$2
ip addr del "$ADDR/32" dev "$IF" 2>/dev/null || true
