#!/usr/bin/env python3
"""Questions about a `bpftool -j map dump` of pfsync_states, read on stdin
(tests; scripts/netns-lib.sh's nl_states runs it on a pin directory).

usage: pfsync_states.py COMMAND [ARGS]
  count                    states in the table
  count-creator CREATOR    states of that creator id
  first-id CREATOR         the id of the first state of that creator ("" if none)
  has-id CREATOR ID        exit 0 if that state is there, 1 if not
  find PROTO ADDR          summary of the first state of that protocol
                           touching ADDR; exit 1 if none
  ident ID CREATOR         summary of that state; exit 1 if absent
  idents                   ID/CREATOR of every state a peer should hold
                           (no-sync states, flag 0x1, stay local)
A summary is one JSON line of what must be equal on two synced firewalls.
"""
import ipaddress
import json
import struct
import sys


def rows(dump):
    out = []
    for e in dump:
        f = e.get("formatted", e)
        out.append((f["key"], f["value"]))
    return out


def addr(words, af):
    raw = b"".join(struct.pack("<I", w & 0xffffffff) for w in words)
    return str(ipaddress.ip_address(raw[:4] if af == 2 else raw))


def summary(k, v):
    return {"id": v["id"], "creatorid": v["creatorid"],
            "addr0": addr(k["addr"][0], k["af"]), "addr1": addr(k["addr"][1], k["af"]),
            "port": k["port"], "proto": k["proto"], "af": k["af"],
            "peer0": v["peer"][0]["state"], "peer1": v["peer"][1]["state"],
            "timeout": v["timeout"], "init_side": v["init_side"]}


def of_creator(data, creator):
    return [v for k, v in data if v["creatorid"] == int(creator, 0)]


def first_match(data, pred):
    for k, v in data:
        if pred(k, v):
            print(json.dumps(summary(k, v), sort_keys=True))
            return 0
    return 1


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    data = rows(json.load(sys.stdin))
    if cmd == "count":
        print(len(data))
    elif cmd == "count-creator":
        print(len(of_creator(data, args[0])))
    elif cmd == "first-id":
        mine = of_creator(data, args[0])
        print(mine[0]["id"] if mine else "")
    elif cmd == "has-id":
        want = int(args[1], 0)
        return 0 if any(v["id"] == want for v in of_creator(data, args[0])) else 1
    elif cmd == "find":
        proto, a = int(args[0]), args[1]
        return first_match(data, lambda k, v: k["proto"] == proto and
                           a in (addr(k["addr"][0], k["af"]), addr(k["addr"][1], k["af"])))
    elif cmd == "ident":
        ident, creator = int(args[0], 0), int(args[1], 0)
        return first_match(data, lambda k, v: v["id"] == ident and v["creatorid"] == creator)
    elif cmd == "idents":
        for k, v in data:
            if not v["flags"] & 1:
                print("%d/%d" % (v["id"], v["creatorid"]))
    else:
        sys.exit("pfsync_states.py: unknown command %s" % cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
