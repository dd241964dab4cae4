#!/bin/sh
# ucarp --upscript: ucarp calls it with the interface and the virtual address
# when this firewall becomes master. The address is taken only once pfsync's
# bulk update is done, so that established connections are not dropped by
# an empty state table; a firewall whose peer never answers (bulk update
# "failed") takes over at once, and one still waiting after PFSYNC_WAIT
# seconds takes over anyway. It says which (stderr and syslog), and exits
# with the status of adding the address.
# ucarp -i eth0 -s 192.0.2.2 -v 1 -p secret -a 192.0.2.1 \
#       -u /usr/local/share/doc/pfsync-xdp/examples/ucarp-up.sh \
#       -d /usr/local/share/doc/pfsync-xdp/examples/ucarp-down.sh
set -u
IF=$1
ADDR=$2
PFSYNCCTL=${PFSYNCCTL:-/usr/local/sbin/pfsyncctl}
WAIT=${PFSYNC_WAIT:-60}

say() {
	echo "ucarp-up: $*" >&2
	logger -t ucarp-up "$*" 2>/dev/null || true
}

waited=0
while :; do
	bulk=$("$PFSYNCCTL" status 2>/dev/null | sed -n 's/^bulk: \([a-z ]*\).*/\1/p')
	case $bulk in
	done)
		say "pfsync bulk update done after ${waited} s; taking $ADDR on $IF"
		break
		;;
	failed)
		say "pfsync bulk update failed (no peer answered) after ${waited} s; taking $ADDR on $IF"
		break
		;;
	esac
	if [ "$waited" -ge "$WAIT" ]; then
		say "pfsync bulk update not done after ${WAIT} s (${bulk:-no status}); taking $ADDR on $IF anyway"
		break
	fi
	sleep 1
	waited=$((waited + 1))
done
ip addr add "$ADDR/32" dev "$IF"
