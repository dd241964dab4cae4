#!/usr/bin/env python3
"""Asks a pfsync-agent control socket one question (tests and scripts).

usage: ctlq.py SOCKET COMMAND [FIELD]
       ctlq.py - FIELD         (JSON from standard input, e.g. `pfsyncctl stats --json`)

Without FIELD the reply is printed as it came. With FIELD the reply is
read as JSON (send a `... --json` command) and one value is printed:
  NAME or A.B.C      a key (dots included, "adaptive.start"), or a dotted
                     path into nested objects
  in:N / out:N       the in/out count of pfsync action N
  peer=ADDR=KEY      KEY of the peer whose address is ADDR
Lists, objects, booleans and null print as JSON. Exits 1 when the agent
answered with an error.
"""
import json
import socket
import sys


def ask(path, command):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    s.sendall((command + "\n").encode())
    s.shutdown(socket.SHUT_WR)
    chunks = []
    while True:
        b = s.recv(65536)
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks).decode()


def field(obj, name):
    if name.startswith(("in:", "out:")):
        direction, act = name.split(":")
        return next(a[direction] for a in obj["actions"] if a["action"] == int(act))
    if name.startswith("peer="):
        _, addr, key = name.split("=")
        return next(p[key] for p in obj["peers"] if p["peer"] == addr)
    if name in obj:
        return obj[name]
    for part in name.split("."):
        obj = obj[part]
    return obj


def main():
    if sys.argv[1] == "-":
        text, name = sys.stdin.read(), sys.argv[2]
    else:
        text, name = ask(sys.argv[1], sys.argv[2]), (sys.argv[3] if len(sys.argv) > 3 else None)
    if name is not None:
        v = field(json.loads(text), name)
        print(json.dumps(v) if isinstance(v, (list, dict, bool)) or v is None else v)
    else:
        sys.stdout.write(text)
    return 1 if text.startswith("error: ") else 0


if __name__ == "__main__":
    sys.exit(main())
