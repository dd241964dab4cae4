#!/usr/bin/env python3
"""Crafts pfsync v6 packets and sends them raw from sync0 (tests only).

usage: pfsync_forge.py [--ttl N] [--src ADDR] DST KIND ARGS...

KIND:
  ins ID CREATOR             one INS of a UDP state 10.77.0.1:5000 -> 10.77.0.2:53
  delc ID CREATOR            one DEL_C
  clr CREATOR                one CLR
  forged ID CREATOR KEYID    an INS with a well-formed authentication
                             trailer (key id KEYID, hex) and a random MAC
  replay HEXFILE             a captured IP packet (hex) again, now to DST

The IP header is built here (IP_HDRINCL): TTL --ttl (255), TOS 0x10, DF;
source --src, or the kernel's choice when left out.
"""
import argparse
import os
import socket
import struct
import time

ACT_CLR, ACT_DEL_C, ACT_INS = 0, 7, 13


def state(sid, creator):
    """A 264-byte pfsync_state: UDP, SINGLE:MULTIPLE, timeouts far away."""

    def key():
        a = socket.inet_aton("10.77.0.1") + bytes(12)
        b = socket.inet_aton("10.77.0.2") + bytes(12)
        return a + b + struct.pack(">HHHBB", 5000, 53, 0, 2, 0)

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
        return pfsync(ACT_INS, state(num[0], num[1]))
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ttl", type=int, default=255)
    ap.add_argument("--src", default="0.0.0.0")
    ap.add_argument("dst")
    ap.add_argument("kind")
    ap.add_argument("args", nargs="*")
    o = ap.parse_args()
    if o.kind == "replay":
        with open(o.args[0]) as f:
            pkt = bytearray(bytes.fromhex(f.read().strip()))
        pkt[16:20] = socket.inet_aton(o.dst)
        pkt[10:12] = b"\0\0"  # the kernel fills the checksum in
    else:
        body = payload_of(o.kind, o.args)
        pkt = struct.pack(
            ">BBHHHBBH4s4s", 0x45, 0x10, 20 + len(body), 0, 0x4000, o.ttl, 240, 0,
            socket.inet_aton(o.src), socket.inet_aton(o.dst),
        ) + body
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"sync0")
    s.sendto(bytes(pkt), (o.dst, 0))


if __name__ == "__main__":
    main()
