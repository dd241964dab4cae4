#!/usr/bin/env python3
"""bench/failover's failure, timed by VRRP (run inside the master's namespace).

vrrp_cut.py IFNAME...   waits until this namespace has sent a VRRP
                        advertisement (IP protocol 112) on both gateway links
                        (lan0 and wan0), the older at most 55 ms before the
                        newer, then, 55 ms after the older, takes every
                        IFNAME down in one
                        `ip -batch`; prints cut_ms=<ms since the epoch> and
                        advert_age_ms=<how long before the cut the older of
                        the two advertisements left>. Exits 1 after 2 s
                        without such a pair.
"""
import ctypes
import socket
import struct
import subprocess
import sys
import time

ETH_P_ALL = 3
PACKET_OUTGOING = 4
IPPROTO_VRRP = 112
GATEWAY_LINKS = ("lan0", "wan0")
SO_ATTACH_FILTER = 26
# the two instances advertise on timers of their own (0.1 s, any phase):
# of two advertisements in a row, one on each link, some pair is at most
# half an interval apart; the cut waits for such a pair
MAX_AGE_S = 0.055
# classic BPF: IPv4 (ethertype at 12) carrying protocol 112 (byte 23), else
# nothing: the streams' packets never reach this socket
VRRP_FILTER = ((0x28, 0, 0, 12), (0x15, 0, 3, 0x0800), (0x30, 0, 0, 23), (0x15, 0, 1, IPPROTO_VRRP),
               (0x06, 0, 0, 0xFFFF), (0x06, 0, 0, 0))


def is_vrrp(frame):
    """An IPv4 frame carrying VRRP."""
    return len(frame) >= 34 and frame[12:14] == b"\x08\x00" and frame[23] == IPPROTO_VRRP


def vrrp_socket():
    """A packet socket that sees only VRRP frames."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    code = b"".join(struct.pack("HBBI", *insn) for insn in VRRP_FILTER)
    buf = ctypes.create_string_buffer(code)
    prog = struct.pack("HL", len(VRRP_FILTER), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, prog)
    return sock


def close_pair(sent):
    """Both links advertised, the older no more than MAX_AGE_S ago."""
    return set(sent) == set(GATEWAY_LINKS) and time.monotonic() - min(sent.values()) <= MAX_AGE_S


def wait_adverts(sock):
    """Until each gateway link has advertised within MAX_AGE_S: when each did."""
    sent = {}
    deadline = time.monotonic() + 2.0
    while not close_pair(sent):
        if time.monotonic() > deadline:
            raise socket.timeout("no close pair of advertisements")
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        frame, addr = sock.recvfrom(128)
        if addr[0] in GATEWAY_LINKS and addr[2] == PACKET_OUTGOING and is_vrrp(frame):
            sent[addr[0]] = time.monotonic()
    return sent


def main(links):
    sock = vrrp_socket()
    # started now, so that the cut does not wait for a process to start
    # (tens of ms on a loaded machine): it runs each line as it reads it
    cutter = subprocess.Popen(["ip", "-batch", "-"], stdin=subprocess.PIPE)
    try:
        sent = wait_adverts(sock)
    except socket.timeout:
        cutter.stdin.close()
        cutter.wait()
        return 1
    # the cut a fixed time after the older advertisement: fwB's takeover then
    # comes the same time after the cut in every trial
    time.sleep(max(0.0, min(sent.values()) + MAX_AGE_S - time.monotonic()))
    cutter.stdin.write("".join("link set %s down\n" % name for name in links).encode())
    cutter.stdin.close()
    cutter.wait()
    cut = time.monotonic()
    if cutter.returncode:
        return 1
    print("cut_ms=%d" % int(time.time() * 1000))
    print("advert_age_ms=%.1f" % (1000 * (cut - min(sent.values()))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
