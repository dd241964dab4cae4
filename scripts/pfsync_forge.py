#!/usr/bin/env python3
"""Crafts pfsync v6 packets and sends them raw from sync0 (tests only).

usage: pfsync_forge.py [--ttl N] [--src ADDR|random] [--count N] DST KIND ARGS...

KIND:
  ins ID CREATOR [SPORT]     one INS of a UDP state 10.77.0.1:SPORT (5000) -> 10.77.0.2:53
  delc ID CREATOR            one DEL_C
  clr CREATOR                one CLR
  forged ID CREATOR KEYID    an INS with a well-formed authentication
                             trailer (key id KEYID, hex) and a random MAC
  replay HEXFILE             a captured IP packet (hex) again, now to DST
  invalid ID CREATOR         an INS that fails one receive check, in turn:
                             TTL 254, version 5, a length beyond the packet,
                             a bad value (timeout 255)
  capture HEXFILE COUNT      (DST unused) COUNT packets with sections
                             arriving on sync0, one hex IP packet a line
  hostile CLASS COUNT SEED [HEXFILE]
                             COUNT hostile packets, reproducible from SEED:
                             garbage    random bytes behind a header of the
                                        wrong version (each one badver)
                             truncated  captures cut short of the length their
                                        header claims (each one badlen)
                             mutated    captures with random bytes changed;
                                        those that would still carry a CLR,
                                        DEL or DEL_C (which pfsync obeys from
                                        anyone without --auth-key) are skipped

The IP header is built here (IP_HDRINCL): TTL --ttl (255), TOS 0x10, DF;
source --src, or the kernel's choice when left out; `--src random` takes a
fresh random 10.0.0.0/8 source for each packet. --count sends N packets
(ids ID, ID+1, ...).
"""
import argparse
import os
import random
import socket
import struct
import time

ACT_CLR, ACT_DEL, ACT_DEL_C, ACT_INS = 0, 6, 7, 13


def state(sid, creator, sport=5000):
    """A 264-byte pfsync_state: UDP, SINGLE:MULTIPLE, timeouts far away."""

    def key():
        a = socket.inet_aton("10.77.0.1") + bytes(12)
        b = socket.inet_aton("10.77.0.2") + bytes(12)
        return a + b + struct.pack(">HHHBB", sport, 53, 0, 2, 0)

    peer = bytes(8) + struct.pack(">IIIHHBB", 0, 0, 0, 0, 0, 1, 0) + bytes(6)
    s = struct.pack(">Q", sid) + b"all".ljust(16, b"\0") + key() + key() + peer + peer
    s += bytes(16) + struct.pack(">IIIII", 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 5, 20)
    s += bytes(32) + struct.pack(">I", creator) + struct.pack(">II", 0xFFFFFFFF, 0xFFFFFFFF)
    s += struct.pack(">HBBBBBBBBBBH", 0, 2, 17, 1, 0, 0, 7, 0, 0, 0, 0, 0) + bytes(2)
    assert len(s) == 264, len(s)
    return s


def pfsync(action, msg):
    """A pfsync v6 payload with one section of one message."""
    body = struct.pack(">BBH", action, len(msg) // 4, 1) + msg
    return struct.pack(">BBH", 6, 0, 20 + len(body)) + bytes(16) + body


def payload_of(kind, args):
    num = [int(a, 0) for a in args[:2]]
    if kind == "ins":
        sport = int(args[2], 0) if len(args) > 2 else 5000
        return pfsync(ACT_INS, state(num[0], num[1], sport))
    if kind == "delc":
        return pfsync(ACT_DEL_C, struct.pack(">QI", num[0], num[1]))
    if kind == "clr":
        return pfsync(ACT_CLR, bytes(16) + struct.pack(">I", num[0]))
    if kind == "forged":
        trailer = b"PFA1" + struct.pack(
            ">IIIQ", int(args[2], 16), num[1], int(time.time()), time.time_ns()
        )
        return pfsync(ACT_INS, state(num[0], num[1])) + trailer + os.urandom(32)
    raise SystemExit("unknown kind " + kind)


INVALID_KINDS = 4


def invalid(sid, creator, n):
    """(payload, ttl) of an INS failing check n % INVALID_KINDS."""
    body = bytearray(pfsync(ACT_INS, state(sid, creator)))
    kind = n % INVALID_KINDS
    if kind == 0:
        return bytes(body), 254
    if kind == 1:
        body[0] = 5  # version
    elif kind == 2:
        body[2:4] = struct.pack(">H", len(body) + 64)  # announced beyond the packet
    else:
        body[24 + 255] = 255  # the state's timeout (pfsync_state offset 255)
    return bytes(body), 255


def ip_packet(src, dst, ttl, body):
    return struct.pack(
        ">BBHHHBBH4s4s", 0x45, 0x10, 20 + len(body), 0, 0x4000, ttl, 240, 0,
        socket.inet_aton(src), socket.inet_aton(dst),
    ) + body


def source(spec):
    if spec != "random":
        return spec
    return socket.inet_ntoa(struct.pack(">I", (10 << 24) | random.getrandbits(24)))


def actions(payload):
    """The section actions a receiver would read (OpenBSD's walk, §1.4)."""
    found, off = [], 20
    end = min(len(payload), struct.unpack(">H", payload[2:4])[0])
    while off + 4 <= end:
        act, words, count = struct.unpack(">BBH", payload[off:off + 4])
        found.append(act)
        if words == 0 or count == 0:
            break
        off += 4 + words * 4 * count
    return found


def capture(path, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 240)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"sync0")
    with open(path, "w") as f:
        while count:
            pkt = s.recv(65535)
            ihl = (pkt[0] & 0x0F) * 4
            if struct.unpack(">H", pkt[ihl + 2:ihl + 4])[0] > 20:  # has sections
                f.write(pkt.hex() + "\n")
                count -= 1


def hostile(o, rng):
    cls, count = o.args[0], int(o.args[1])
    caps = []
    if cls != "garbage":
        with open(o.args[3]) as f:
            caps = [bytes.fromhex(line.strip())[20:] for line in f if line.strip()]
    sent = 0
    while sent < count:
        if cls == "garbage":
            body = bytearray(rng.randbytes(rng.randint(20, 1400)))
            body[0] = rng.choice([v for v in range(256) if v != 6])
        elif cls == "truncated":
            cap = rng.choice(caps)
            claimed = struct.unpack(">H", cap[2:4])[0]
            body = cap[:rng.randint(20, claimed - 1)]
        elif cls == "mutated":
            body = bytearray(rng.choice(caps))
            for _ in range(rng.randint(1, 8)):
                body[rng.randrange(len(body))] = rng.randrange(256)
            if body[0] == 6 and {ACT_CLR, ACT_DEL, ACT_DEL_C} & set(actions(body)):
                continue
        else:
            raise SystemExit("unknown class " + cls)
        yield ip_packet(source(o.src), o.dst, o.ttl, bytes(body))
        sent += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ttl", type=int, default=255)
    ap.add_argument("--src", default="0.0.0.0")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("dst")
    ap.add_argument("kind")
    ap.add_argument("args", nargs="*")
    o = ap.parse_args()
    if o.kind == "capture":
        capture(o.args[0], int(o.args[1]))
        return
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"sync0")
    if o.kind == "invalid":
        sid, creator = int(o.args[0], 0), int(o.args[1], 0)
        for n in range(o.count):
            body, ttl = invalid(sid + n, creator, n)
            s.sendto(ip_packet(source(o.src), o.dst, ttl, body), (o.dst, 0))
        return
    if o.kind == "hostile":
        for pkt in hostile(o, random.Random(int(o.args[2]))):
            s.sendto(pkt, (o.dst, 0))
        return
    if o.kind == "replay":
        with open(o.args[0]) as f:
            pkt = bytearray(bytes.fromhex(f.read().strip()))
        pkt[16:20] = socket.inet_aton(o.dst)
        pkt[10:12] = b"\0\0"  # the kernel fills the checksum in
    else:
        pkt = None
    for _ in range(o.count):
        if o.kind != "replay":
            pkt = ip_packet(source(o.src), o.dst, o.ttl, payload_of(o.kind, o.args))
        s.sendto(bytes(pkt), (o.dst, 0))


if __name__ == "__main__":
    main()
