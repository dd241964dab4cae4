#!/usr/bin/env python3
"""Load for tests/netns/test_torture.sh (issue 12): many short TCP
connections from random source ports, UDP flows, through a firewall.

  torture.py server PORT                 TCP echo (IPv4+IPv6) and UDP echo on PORT+1
  torture.py client --v4 A --v6 A --port P --conns N --ports LO HI --udp N --seed S

The server answers each TCP connection with the bytes it got, then closes
first (so the server side keeps TIME_WAIT and the client may reuse its
port at once). The client connects from random ports in [LO, HI]
(alternating IPv4 and IPv6), sends a payload, expects it back, and reads
TCP_INFO: tcpi_total_retrans right after connect counts SYN
retransmissions. It prints one JSON object with its counts.
"""
import argparse
import errno
import json
import random
import selectors
import socket
import struct
import sys

PAYLOAD_LEN = 64
CONNECT_TIMEOUT = 5.0  # well past the 1 s SYN RTO: a lost SYN shows as a retransmission
TCPI_TOTAL_RETRANS = 100  # offset of tcpi_total_retrans in struct tcp_info
UDP_DATAGRAMS = 3


def total_retrans(sock):
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return struct.unpack_from("I", info, TCPI_TOTAL_RETRANS)[0]


# ---- server -----------------------------------------------------------------
def serve(port):
    sel = selectors.DefaultSelector()
    lsock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    lsock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    lsock.bind(("::", port))
    lsock.listen(1024)
    lsock.setblocking(False)
    usock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    usock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    usock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    usock.bind(("::", port + 1))
    sel.register(lsock, selectors.EVENT_READ, "accept")
    sel.register(usock, selectors.EVENT_READ, "udp")
    got = {}
    print("listening", flush=True)
    while True:
        for key, _ in sel.select():
            sock = key.fileobj
            if key.data == "accept":
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                got[conn] = b""
                sel.register(conn, selectors.EVENT_READ, "conn")
            elif key.data == "udp":
                data, peer = sock.recvfrom(2048)
                sock.sendto(data, peer)
            else:
                try:
                    data = sock.recv(4096)
                except BlockingIOError:
                    continue
                except ConnectionError:
                    data = b""
                got[sock] += data
                if len(got[sock]) >= PAYLOAD_LEN or not data:
                    sel.unregister(sock)
                    try:
                        sock.setblocking(True)
                        sock.sendall(got[sock])
                    except OSError:
                        pass
                    del got[sock]
                    sock.close()


# ---- client -----------------------------------------------------------------
def bind_random(family, src, lo, hi, rng):
    """A socket bound to a random free port of [lo, hi] (ports the client
    itself still holds are skipped, not counted)."""
    while True:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        port = rng.randint(lo, hi)
        try:
            sock.bind((src, port))
            return sock, port
        except OSError:
            sock.close()


def one_connection(i, args, rng, used, res):
    v6 = i % 2 == 1
    family = socket.AF_INET6 if v6 else socket.AF_INET
    src, dst = (args.src6, args.v6) if v6 else (args.src4, args.v4)
    payload = (b"%d:" % i).ljust(PAYLOAD_LEN, b"x")
    for _ in range(20):
        sock, port = bind_random(family, src, args.ports[0], args.ports[1], rng)
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect((dst, args.port))
            break
        except OSError as e:
            sock.close()
            if e.errno != errno.EADDRNOTAVAIL:  # the tuple is still ours locally
                res["failed"] += 1
                res["errors"][str(e)] = res["errors"].get(str(e), 0) + 1
                return
    else:
        res["failed"] += 1
        return
    try:
        syn_retrans = total_retrans(sock)
        res["syn_retrans"] += syn_retrans
        if (family, port) in used:
            res["tuple_reused"] += 1
        used.add((family, port))
        sock.sendall(payload)
        reply = b""
        while True:
            data = sock.recv(4096)
            if not data:
                break
            reply += data
        if reply != payload:
            res["failed"] += 1
            res["errors"]["bad echo"] = res["errors"].get("bad echo", 0) + 1
            return
        res["ok"] += 1
        res["bytes_out"] += len(payload)
        res["bytes_in"] += len(reply)
        res["v6" if v6 else "v4"] += 1
    except OSError as e:
        res["failed"] += 1
        res["errors"][str(e)] = res["errors"].get(str(e), 0) + 1
    finally:
        sock.close()


def udp_flow(i, args, rng, res):
    v6 = i % 2 == 1
    family = socket.AF_INET6 if v6 else socket.AF_INET
    src, dst = (args.src6, args.v6) if v6 else (args.src4, args.v4)
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.settimeout(2.0)
    try:
        sock.bind((src, rng.randint(args.ports[0], args.ports[1])))
    except OSError:
        sock.bind((src, 0))
    try:
        for n in range(UDP_DATAGRAMS):
            msg = b"u%d.%d" % (i, n)
            sock.sendto(msg, (dst, args.port + 1))
            data, _ = sock.recvfrom(2048)
            if data != msg:
                raise OSError("bad UDP echo")
        res["udp_ok"] += 1
    except OSError as e:
        res["udp_failed"] += 1
        res["errors"]["udp: " + str(e)] = res["errors"].get("udp: " + str(e), 0) + 1
    finally:
        sock.close()


def client(args):
    rng = random.Random(args.seed)
    res = {"ok": 0, "failed": 0, "syn_retrans": 0, "tuple_reused": 0, "v4": 0, "v6": 0,
           "bytes_out": 0, "bytes_in": 0, "udp_ok": 0, "udp_failed": 0, "errors": {}}
    used = set()
    for i in range(args.conns):
        one_connection(i, args, rng, used, res)
    for i in range(args.udp):
        udp_flow(i, args, rng, res)
    print(json.dumps(res), flush=True)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "server":
        serve(int(sys.argv[2]))
        return 0
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["client"])
    p.add_argument("--v4", required=True)
    p.add_argument("--v6", required=True)
    p.add_argument("--src4", required=True)
    p.add_argument("--src6", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--conns", type=int, required=True)
    p.add_argument("--ports", type=int, nargs=2, required=True)
    p.add_argument("--udp", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    client(p.parse_args())
    return 0


if __name__ == "__main__":
    sys.exit(main())
