# shellcheck shell=bash
# The loads of the forwarding benches, bench/datapath/forward.sh and
# bench/nat.sh, one copy for both. Source it after scripts/netns-lib.sh and
# nl_topology, with BENCH (build/bench/datapath), BUILD, SECONDS_PER_RUN,
# UDP_PORT and TCP_PORT set, then call loads_init.
#   udp  64-byte frames from UDP_SRC_PORT sent by `datapath xdpgen` (XDP_TX
#        in BPF_PROG_RUN live-frame mode on the client's veth: far cheaper
#        than sockets, so the firewall is the bottleneck), or where the
#        kernel refuses live frames by `datapath pktsend` (a packet socket
#        past the qdisc layer, sendmmsg batches); UDP_GEN names the one in
#        use. The server drops them at its netdev ingress hook (the caller's
#        nftables rules), so that socket delivery is not measured either.
#        Before each run udp_prime sends one batch (the flow's state is
#        made) and the caller answers the flow once with udp_answer (one
#        datagram back to the generator's port, or to the address and port
#        it was translated to), so that every stateful mode sees a flow with
#        both directions, as real UDP traffic has: conntrack calls it
#        established, pf's state goes to MULTIPLE, which the fast path and
#        the flowtable need
#   tcp  TCP_STREAMS bulk TCP streams in parallel (`datapath gen tcp` ->
#        `datapath sink tcp`, one sink and port each, TCP_PORT onwards), all
#        connected before any sends (tcp_connect, then tcp_streams), the
#        senders pinned round-robin on the CPUs: on veth a sender's CPU also
#        does the forwarding and the receiving of its segments, so one
#        stream measures one CPU's sender as much as the firewall (default
#        two per CPU)
# shellcheck disable=SC2034 # for the scripts that source this file
UDP_SRC_PORT=40000 # the generators' source port (bench/datapath/load.c)
NCPUS=$(nproc)
TCP_STREAMS=${TCP_STREAMS:-$((2 * NCPUS))}

# loads_init: the TCP sinks in the server, the UDP generator chosen
# (UDP_GEN): xdpgen if a live-frame run works here (one batch, into the
# sink), else pktsend
loads_init()
{
	local i
	FW_IN_MAC=$(ip -n "$NL_FW" -j link show dev "$NL_FW_IN" | jq -r '.[0].address')
	CLIENT_MAC=$(ip -n "$NL_CLIENT" -j link show dev eth0 | jq -r '.[0].address')
	for ((i = 0; i < TCP_STREAMS; i++)); do
		nl_bg TCP_SINK "$NL_SERVER" "$BENCH" sink tcp $((TCP_PORT + i)) >"$NL_TMP/tcp-sink$i.out"
		nl_wait_until 5 nl_file_has "$NL_TMP/tcp-sink$i.out" ready || nl_die "tcp sink $i did not start"
	done
	UDP_GEN=xdpgen
	nl_in "$NL_FW" ethtool -K "$NL_FW_IN" gro on >/dev/null
	if ! PFSYNC_BUILD=$BUILD nl_in "$NL_CLIENT" "$BENCH" xdpgen eth0 "$FW_IN_MAC" "$CLIENT_MAC" \
		"$NL_CLIENT4" "$NL_SERVER4" "$UDP_PORT" 0 >/dev/null 2>"$NL_TMP/xdpgen.err"; then
		UDP_GEN=pktsend
		nl_log "xdpgen refused ($(tail -1 "$NL_TMP/xdpgen.err")): UDP load from pktsend"
	fi
	# pktsend's frames would otherwise be forwarded inside its own sendmmsg
	# (veth's NAPI runs at the sender's bottom-half exit): the firewall's
	# receive NAPI gets a thread of its own, so that the sender only queues
	# and, once the firewall falls behind, the excess is dropped at its veth
	if [ "$UDP_GEN" = pktsend ]; then
		ip netns exec "$NL_FW" sh -c "echo 1 >/sys/class/net/$NL_FW_IN/threaded" ||
			nl_log "no threaded NAPI on $NL_FW_IN: pktsend forwards in its own context"
	fi
}

# udp_gen SECONDS: the UDP generator for SECONDS (0: one batch), its output
# in $NL_TMP/gen.out; frames sent with ndo_xdp_xmit need NAPI on the
# receiving veth, hence GRO on the firewall's inside veth
udp_gen()
{
	nl_in "$NL_FW" ethtool -K "$NL_FW_IN" gro on >/dev/null
	PFSYNC_BUILD=$BUILD nl_in "$NL_CLIENT" "$BENCH" "$UDP_GEN" eth0 "$FW_IN_MAC" "$CLIENT_MAC" \
		"$NL_CLIENT4" "$NL_SERVER4" "$UDP_PORT" "$1" >"$NL_TMP/gen.out"
}

# udp_prime: one batch of the UDP load, which makes the flow's state
udp_prime() { udp_gen 0; }

# udp_answer ADDR PORT: one datagram from the server's UDP_PORT to ADDR:PORT,
# the flow's answer (the client answers port unreachable, which every mode
# passes as related)
udp_answer()
{
	nl_in "$NL_SERVER" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))
s.sendto(b"answer", (sys.argv[2], int(sys.argv[3])))
' "$UDP_PORT" "$1" "$2" || nl_log "cannot answer the UDP flow"
}

# tcp_connect: TCP_STREAMS senders for SECONDS_PER_RUN, pinned round-robin
# on the CPUs, connected and waiting for tcp_streams (GRO off on the inside
# veth: one segment, one packet). All connect before any sends: a sender
# flooding the path while another still connects would have that one's SYNs
# dropped with the excess of the flood (veth's XDP ring holds 256 frames),
# and its connect() time out
tcp_connect()
{
	local i
	TCP_PIDS=()
	nl_in "$NL_FW" ethtool -K "$NL_FW_IN" gro off >/dev/null
	for ((i = 0; i < TCP_STREAMS; i++)); do
		# nl_bg: the PID is the sender's own (tcp_streams signals it)
		nl_bg TCP_SENDER "$NL_CLIENT" taskset -c $((i % NCPUS)) "$BENCH" gen tcp "$NL_SERVER4" \
			$((TCP_PORT + i)) "$SECONDS_PER_RUN" wait >"$NL_TMP/gen$i.out"
		TCP_PIDS+=("$TCP_SENDER")
	done
	for ((i = 0; i < TCP_STREAMS; i++)); do
		nl_wait_until 10 tcp_sender_ready "$i" || nl_log "TCP sender $i neither connected nor failed"
	done
}

# tcp_sender_ready I: sender I has connected, or has already failed
tcp_sender_ready()
{
	nl_file_has "$NL_TMP/gen$1.out" connected || ! kill -0 "${TCP_PIDS[$1]}" 2>/dev/null
}

# tcp_streams: the senders of tcp_connect started at once; waits for all
tcp_streams()
{
	local pid rc=0
	kill -USR1 "${TCP_PIDS[@]}" 2>/dev/null
	for pid in "${TCP_PIDS[@]}"; do
		wait "$pid" || rc=1
	done
	return "$rc"
}

# fw_tx_packets: packets the firewall sent out of both interfaces
# (forwarded both ways)
fw_tx_packets()
{
	local total=0 ifname n
	for ifname in "$NL_FW_IN" "$NL_FW_OUT"; do
		n=$(ip -n "$NL_FW" -j -s link show dev "$ifname" | jq '.[0].stats64.tx.packets')
		total=$((total + n))
	done
	echo "$total"
}
