#!/bin/sh
# ucarp --upscript: ucarp calls it with the interface and the virtual address
# when this firewall becomes master. The address is taken only once pfsync's
# bulk update is done, so that established connections are not dropped by
# an empty state table; a firewall whose peer never answers (bulk update
# "failed") takes over after PFSYNC_WAIT seconds anyway.
# ucarp -i eth0 -s 192.0.2.2 -v 1 -p secret -a 192.0.2.1 \
#       -u /usr/local/share/doc/pfsync-xdp/examples/ucarp-up.sh \
#       -d /usr/local/share/doc/pfsync-xdp/examples/ucarp-down.sh
set -u
IF=$1
ADDR=$2
PFSYNCCTL=${PFSYNCCTL:-/usr/local/sbin/pfsyncctl}
WAIT=${PFSYNC_WAIT:-60}

waited=0
until "$PFSYNCCTL" status 2>/dev/null | grep -q "bulk: done"; do
	if "$PFSYNCCTL" status 2>/dev/null | grep -q "bulk: failed" || [ "$waited" -ge "$WAIT" ]; then
		logger -t ucarp-up "pfsync bulk update not done; taking $ADDR on $IF anyway"
		break
	fi
	sleep 1
	waited=$((waited + 1))
done
ip addr add "$ADDR/32" dev "$IF"
