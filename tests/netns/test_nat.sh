#!/usr/bin/env bash
# NAT through the firewall namespace (issue 15), real traffic:
# - nat-to: client 10.201.1.2 reaches the server as the firewall's outside
#   address 10.201.2.1 (TCP, UDP, ICMP echo). The server has no route back
#   to the client's network, so an answer only arrives when the firewall
#   translated the connection (and translated the answer back).
# - rdr-to: the client connects to the firewall's inside address, port
#   8080, and lands on the server's port 80 (TCP) and 53 (UDP).
# - NAT66: the same over IPv6 with the same rule forms (inet6), on the
#   server's IPv6 ports (7100/7101 for nat-to, 81/54 for rdr-to).
# pfsyncctl states must show both keys. Client and server send with tx
# checksum offload off: an XDP program cannot tell a partial checksum from
# a full one (bpf/nat.h).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. scripts/netns-lib.sh

nl_build
PIN=/sys/fs/bpf/tc/globals

nl_need "$OBJ" "$CTL"
nl_need_tools python3 tc ip nsenter unshare ping ethtool

nl_init nat
nl_topology
nl_fw_bpffs
for ns in "$NL_CLIENT" "$NL_SERVER"; do
	nl_in "$ns" ethtool -K eth0 tx off >/dev/null 2>&1 || nl_die "ethtool -K eth0 tx off failed in $ns"
done

for ifname in "$NL_FW_IN" "$NL_FW_OUT"; do
	nl_fw ip link set dev "$ifname" xdp obj "$OBJ" sec xdp || nl_die "xdp attach on $ifname failed"
	nl_fw tc qdisc add dev "$ifname" clsact || nl_die "clsact on $ifname failed"
	nl_fw tc filter add dev "$ifname" egress bpf da obj "$OBJ" sec tc ||
		nl_die "tc attach on $ifname failed"
done

cat >"$NL_TMP/rules.conf" <<EOF
pass out on $NL_FW_OUT inet from 10.201.1.0/24 nat-to $NL_FW_OUT4
pass in on $NL_FW_IN inet proto tcp to $NL_FW_IN4 port 8080 rdr-to $NL_SERVER4 port 80
pass in on $NL_FW_IN inet proto udp to $NL_FW_IN4 port 5353 rdr-to $NL_SERVER4 port 53
pass in on $NL_FW_IN inet proto udp to $NL_FW_IN4 port 5354 rdr-to $NL_SERVER4 port 55
pass out on $NL_FW_OUT inet6 from fd00:201:1::/64 nat-to $NL_FW_OUT6
pass in on $NL_FW_IN inet6 proto tcp to $NL_FW_IN6 port 8080 rdr-to $NL_SERVER6 port 81
pass in on $NL_FW_IN inet6 proto udp to $NL_FW_IN6 port 5353 rdr-to $NL_SERVER6 port 54
pass in on $NL_FW_IN inet6 proto udp to $NL_FW_IN6 port 5354 rdr-to $NL_SERVER6 port 55
EOF
nl_fw "$CTL" --pin-dir "$PIN" rules load "$NL_TMP/rules.conf" || nl_die "pfsyncctl rules load failed"

# servers: each answers and appends the peer it saw to a file
cat >"$NL_TMP/servers.py" <<'PY'
import socket, sys, threading

def family(port):
    return socket.AF_INET6 if port in (7100, 7101, 81, 54) else socket.AF_INET

def tcp(port, log):
    fam = family(port)
    s = socket.socket(fam)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", port))
    s.listen(16)
    while True:
        c, peer = s.accept()
        data = c.recv(100)
        c.sendall(b"tcp:" + data)
        c.close()
        with open(log, "a") as f:
            f.write("tcp %d %s\n" % (port, peer[0]))

def udp(port, log):
    fam = family(port)
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", port))
    while True:
        data, peer = s.recvfrom(100)
        s.sendto(b"udp:" + data, peer)
        with open(log, "a") as f:
            f.write("udp %d %s\n" % (port, peer[0]))

log = sys.argv[1]
for fn, port in ((tcp, 7000), (tcp, 80), (udp, 7001), (udp, 53), (tcp, 7100), (tcp, 81),
                 (udp, 7101), (udp, 54)):
    threading.Thread(target=fn, args=(port, log), daemon=True).start()
open(log + ".ready", "w").close()
threading.Event().wait()
PY
cat >"$NL_TMP/client.py" <<'PY'
import socket, sys
proto, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if proto == "udperr":
    # a closed port: the ICMP port unreachable reaches this connected
    # socket only when it quotes this socket's own tuple
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.connect((host, port))
    s.send(b"hello")
    try:
        s.recv(100)
        print("answered")
    except ConnectionRefusedError:
        print("udperr:hello")
elif proto == "tcp":
    s = socket.create_connection((host, port), timeout=3)
    s.sendall(b"hello")
    print(s.recv(100).decode())
else:
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(b"hello", (host, port))
    print(s.recvfrom(100)[0].decode())
PY
nl_bg SRV_PID "$NL_SERVER" python3 "$NL_TMP/servers.py" "$NL_TMP/peers"
nl_wait_until 10 test -e "$NL_TMP/peers.ready" || nl_die "servers did not start"

# client_gets PROTO HOST PORT: the client's exchange answered
client_gets()
{
	local out
	out=$(nl_in "$NL_CLIENT" python3 "$NL_TMP/client.py" "$1" "$2" "$3" 2>/dev/null) &&
		[ "$out" = "$1:hello" ]
}

# ---- nat-to: no route back to the client from the server ----
ip -n "$NL_SERVER" route del default
if nl_wait_until 5 client_gets tcp "$NL_SERVER4" 7000; then
	nl_ok "nat-to: TCP connection answered"
else
	nl_fail "nat-to: TCP connection not answered"
fi
nl_file_has "$NL_TMP/peers" "tcp 7000 $NL_FW_OUT4" && nl_ok "nat-to: the server saw TCP from $NL_FW_OUT4" ||
	nl_fail "nat-to: the server did not see TCP from $NL_FW_OUT4 ($(cat "$NL_TMP/peers" 2>/dev/null))"
if client_gets udp "$NL_SERVER4" 7001; then
	nl_ok "nat-to: UDP answered"
else
	nl_fail "nat-to: UDP not answered"
fi
nl_file_has "$NL_TMP/peers" "udp 7001 $NL_FW_OUT4" && nl_ok "nat-to: the server saw UDP from $NL_FW_OUT4" ||
	nl_fail "nat-to: the server did not see UDP from $NL_FW_OUT4"
if nl_in "$NL_CLIENT" ping -c 2 -W 2 "$NL_SERVER4" >/dev/null; then
	nl_ok "nat-to: ICMP echo answered"
else
	nl_fail "nat-to: ICMP echo not answered"
fi
# the server's port unreachable quotes the public tuple: translated back at XDP
if client_gets udperr "$NL_SERVER4" 7009; then
	nl_ok "nat-to: ICMP port unreachable translated back to the client's socket"
else
	nl_fail "nat-to: the client's socket got no ICMP port unreachable"
fi
states=$(nl_fw "$CTL" --pin-dir "$PIN" --ctl "$NL_TMP/none.sock" states 2>&1)
if printf '%s\n' "$states" | nl_has -e "$NL_CLIENT4:[0-9]* ($NL_FW_OUT4:[0-9]*) -> $NL_SERVER4:7000"; then
	nl_ok "pfsyncctl states shows the TCP state's two keys"
else
	nl_fail "pfsyncctl states lacks 'client (public) -> server': $states"
fi
json=$(nl_fw "$CTL" --pin-dir "$PIN" --ctl "$NL_TMP/none.sock" states --json 2>&1)
if printf '%s\n' "$json" | nl_has -F -e "\"stack_key\":{\"initiator\":{\"addr\":\"$NL_CLIENT4\""; then
	nl_ok "pfsyncctl states --json gives the stack key"
else
	nl_fail "pfsyncctl states --json has no stack key with the client"
fi

# ---- rdr-to: the server routes back through the firewall again ----
ip -n "$NL_SERVER" route add default via "$NL_FW_OUT4"
if nl_wait_until 5 client_gets tcp "$NL_FW_IN4" 8080; then
	nl_ok "rdr-to: TCP to $NL_FW_IN4:8080 answered"
else
	nl_fail "rdr-to: TCP to $NL_FW_IN4:8080 not answered"
fi
nl_file_has "$NL_TMP/peers" "tcp 80 $NL_CLIENT4" && nl_ok "rdr-to: the server's port 80 got the client" ||
	nl_fail "rdr-to: nothing reached the server's port 80 from the client"
if client_gets udp "$NL_FW_IN4" 5353; then
	nl_ok "rdr-to: UDP to $NL_FW_IN4:5353 answered"
else
	nl_fail "rdr-to: UDP to $NL_FW_IN4:5353 not answered"
fi
# the server's port unreachable quotes the inside tuple: translated at tc egress
if client_gets udperr "$NL_FW_IN4" 5354; then
	nl_ok "rdr-to: ICMP port unreachable from the server translated to the public tuple"
else
	nl_fail "rdr-to: the client's socket got no ICMP port unreachable"
fi

# ---- the fast path: translated in XDP, since tc egress does not see it ----
for ns in "$NL_CLIENT" "$NL_SERVER"; do # veth takes redirected frames with NAPI (GRO) on
	nl_in "$ns" ethtool -K eth0 gro on >/dev/null 2>&1 || nl_die "ethtool -K eth0 gro on failed in $ns"
done
nl_fw "$CTL" --pin-dir "$PIN" --ctl "$NL_TMP/none.sock" set fastpath on "$NL_FW_IN" "$NL_FW_OUT" ||
	nl_die "pfsyncctl set fastpath on failed"
before=$(nl_fp_forwarded "$PIN" nl_fw) || nl_die "no fast-path counters"
ip -n "$NL_SERVER" route del default
if client_gets tcp "$NL_SERVER4" 7000 && [ "$(grep -c "tcp 7000 $NL_FW_OUT4" "$NL_TMP/peers")" -ge 2 ]; then
	nl_ok "fast path: a nat-to TCP exchange answered, seen from $NL_FW_OUT4"
else
	nl_fail "fast path: the nat-to TCP exchange failed"
fi
ip -n "$NL_SERVER" route add default via "$NL_FW_OUT4"
if client_gets tcp "$NL_FW_IN4" 8080 && [ "$(grep -c "tcp 80 $NL_CLIENT4" "$NL_TMP/peers")" -ge 2 ]; then
	nl_ok "fast path: an rdr-to TCP exchange answered"
else
	nl_fail "fast path: the rdr-to TCP exchange failed"
fi
after=$(nl_fp_forwarded "$PIN" nl_fw) || after=$before
if [ "$after" -gt "$before" ]; then
	nl_ok "fast path: $((after - before)) translated packets forwarded in XDP"
else
	nl_fail "fast path: no translated packet took the fast path ($before -> $after)"
fi
nl_fw "$CTL" --pin-dir "$PIN" --ctl "$NL_TMP/none.sock" set fastpath off ||
	nl_die "pfsyncctl set fastpath off failed"

# ---- NAT66: the same rule forms over IPv6 ----
ip -n "$NL_SERVER" -6 route del default
if nl_wait_until 5 client_gets tcp "$NL_SERVER6" 7100; then
	nl_ok "NAT66 nat-to: TCP connection answered"
else
	nl_fail "NAT66 nat-to: TCP connection not answered"
fi
nl_file_has "$NL_TMP/peers" "tcp 7100 $NL_FW_OUT6" && nl_ok "NAT66 nat-to: the server saw TCP from $NL_FW_OUT6" ||
	nl_fail "NAT66 nat-to: the server did not see TCP from $NL_FW_OUT6"
if client_gets udp "$NL_SERVER6" 7101 && nl_file_has "$NL_TMP/peers" "udp 7101 $NL_FW_OUT6"; then
	nl_ok "NAT66 nat-to: UDP answered, seen from $NL_FW_OUT6"
else
	nl_fail "NAT66 nat-to: UDP not answered from $NL_FW_OUT6"
fi
if nl_in "$NL_CLIENT" ping -6 -c 2 -W 2 "$NL_SERVER6" >/dev/null; then
	nl_ok "NAT66 nat-to: ICMPv6 echo answered"
else
	nl_fail "NAT66 nat-to: ICMPv6 echo not answered"
fi
if client_gets udperr "$NL_SERVER6" 7109; then
	nl_ok "NAT66 nat-to: ICMPv6 port unreachable translated back"
else
	nl_fail "NAT66 nat-to: the client's socket got no ICMPv6 port unreachable"
fi
ip -n "$NL_SERVER" -6 route add default via "$NL_FW_OUT6"
if nl_wait_until 5 client_gets tcp "$NL_FW_IN6" 8080 && nl_file_has "$NL_TMP/peers" "tcp 81 $NL_CLIENT6"; then
	nl_ok "NAT66 rdr-to: TCP to [$NL_FW_IN6]:8080 reached the server's port 81"
else
	nl_fail "NAT66 rdr-to: TCP to [$NL_FW_IN6]:8080 did not reach port 81"
fi
if client_gets udp "$NL_FW_IN6" 5353 && nl_file_has "$NL_TMP/peers" "udp 54 $NL_CLIENT6"; then
	nl_ok "NAT66 rdr-to: UDP to [$NL_FW_IN6]:5353 reached the server's port 54"
else
	nl_fail "NAT66 rdr-to: UDP to [$NL_FW_IN6]:5353 did not reach port 54"
fi
if client_gets udperr "$NL_FW_IN6" 5354; then
	nl_ok "NAT66 rdr-to: ICMPv6 port unreachable translated to the public tuple"
else
	nl_fail "NAT66 rdr-to: the client's socket got no ICMPv6 port unreachable"
fi
nl_finish
