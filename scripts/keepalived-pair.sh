#!/usr/bin/env bash
# keepalived-pair.sh: the keepalived.conf of one firewall of a VRRP pair, as
# the demo, tests/netns/test_failover.sh and bench/failover.sh run it:
# instances LAN (lan0) and WAN (wan0) in one sync group, unicast adverts
# every 0.1 s, gateway address NET.1.1 and NET.2.1.
#
#   keepalived-pair.sh ID STATE PRIO NET ME PEER VRID [CHECK] [GROUP_LINES]
#
#   ID           router_id
#   STATE PRIO   MASTER|BACKUP and the priority
#   NET ME PEER  addresses NET.{1,2}.ME here and NET.{1,2}.PEER on the peer
#   VRID         LAN's virtual router id; WAN's is VRID + 1
#   CHECK        a script that fails while this node must not be master (its
#                pfsync bulk update not done); "" for none
#   GROUP_LINES  more lines for the sync group (notify scripts)
# The configuration goes to standard output.
set -euo pipefail
[ $# -ge 7 ] || {
	sed -n 's/^#   keepalived-pair.sh /usage: keepalived-pair.sh /p' "$0" >&2
	exit 2
}
id=$1 state=$2 prio=$3 net=$4 me=$5 peer=$6 vrid=$7 check=${8:-} group_lines=${9:-}

cat <<EOF
global_defs {
    router_id $id
    script_user root
    enable_script_security
    vrrp_version 3
    vrrp_garp_master_delay 1
    vrrp_garp_master_repeat 3
    vrrp_garp_interval 0.001
}
EOF
if [ -n "$check" ]; then
	cat <<EOF
vrrp_script pfsync_bulk {
    script "$check"
    interval 1
    fall 1
    rise 1
}
EOF
fi
cat <<EOF
vrrp_sync_group G {
    group {
        LAN
        WAN
    }
EOF
[ -z "$check" ] || printf '    track_script {\n        pfsync_bulk\n    }\n'
[ -z "$group_lines" ] || printf '%s\n' "$group_lines"
printf '}\n'
for inst in LAN:lan0:1 WAN:wan0:2; do
	IFS=: read -r name ifname n <<<"$inst"
	cat <<EOF
vrrp_instance $name {
    state $state
    interface $ifname
    virtual_router_id $((vrid + n - 1))
    priority $prio
    advert_int 0.1
    unicast_src_ip $net.$n.$me
    unicast_peer {
        $net.$n.$peer
    }
    virtual_ipaddress {
        $net.$n.1/24 dev $ifname
    }
}
EOF
done
