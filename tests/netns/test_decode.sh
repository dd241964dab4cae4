#!/usr/bin/env bash
# `pfsyncctl decode` and tools/wireshark/pfsync.lua on captures made here.
#
# A python3 script (stdlib struct only) writes pcap files of every link type
# decode reads (Ethernet with and without a VLAN tag, raw IP as LINKTYPE_RAW /
# DLT_IPV4 / DLT_IPV6, Linux SLL and SLL2, DLT_PFSYNC as 18, 121 and 246),
# IPv4 and IPv6 (with extension headers), carrying the pfsync-wire.md §5.3
# vectors and packets with every action built from §2.6-§2.9. The decode
# output is compared line by line with the text written below by hand from
# OpenBSD tcpdump's format (§5.2). Malformed payloads must print OpenBSD's
# error words, and broken pcap files must give a clear error and exit 1,
# never a crash. When tshark is installed the Lua dissector is checked on
# the capture with every action, on the §5.3 vectors over every link type
# Wireshark reads, and on broken files. No namespaces are needed: nothing is sent.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CTL=${PFSYNCCTL:-${PFSYNC_BUILD:-$ROOT/build}/pfsyncctl}
LUA=$ROOT/tools/wireshark/pfsync.lua
WORK=$(mktemp -d /tmp/pfsync-decode-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

fail=0
pass=0
ok() {
	pass=$((pass + 1))
	echo "ok - $*"
}
not_ok() {
	fail=$((fail + 1))
	echo "not ok - $*"
}

if [ ! -x "$CTL" ]; then
	echo "not ok - $CTL missing (make all first)"
	exit 1
fi
if ! "$CTL" decode --help >/dev/null 2>&1; then
	echo "not ok - $CTL has no decode command (cmd_decode not dispatched from main.c)"
	exit 1
fi

# ---- capture files -----------------------------------------------------------
python3 - "$WORK" <<'PY'
import struct, sys, os

out = sys.argv[1]
CREATOR = 0x1234abcd

def hexbytes(s):
    return bytes.fromhex(''.join(l.split(None, 1)[1] for l in s.strip().splitlines()))

# pfsync-wire.md §5.3, verbatim
V_BULK = hexbytes("""
0000  06 00 00 24 00 00 00 00 00 00 00 00 00 00 00 00
0010  00 00 00 00 05 03 00 01 00 00 00 00 00 00 00 00
0020  00 00 00 00""")
V_INS_ACK = hexbytes("""
0000  06 00 00 24 00 00 00 00 00 00 00 00 00 00 00 00
0010  00 00 00 00 02 03 00 01 65 78 a1 c0 00 00 00 01
0020  12 34 ab cd""")
V_DEL_C = hexbytes("""
0000  06 00 00 30 00 00 00 00 00 00 00 00 00 00 00 00
0010  00 00 00 00 07 03 00 02 65 78 a1 c0 00 00 00 01
0020  12 34 ab cd 65 78 a1 c0 00 00 00 02 12 34 ab cd""")
V_BUS_END = hexbytes("""
0000  06 00 00 24 00 00 00 00 00 00 00 00 00 00 00 00
0010  00 00 00 00 0a 03 00 01 12 34 ab cd 00 00 00 00
0020  02 00 00 00""")
V_CLR = hexbytes("""
0000  06 00 00 2c 00 00 00 00 00 00 00 00 00 00 00 00
0010  00 00 00 00 00 05 00 01 00 00 00 00 00 00 00 00
0020  00 00 00 00 00 00 00 00 12 34 ab cd""")

def ip4(a):
    return bytes(int(x) for x in a.split('.')) + bytes(12)

def ip6(words):
    return struct.pack('>8H', *words)

def key(a0, a1, p0, p1, af, rdomain=0):
    return struct.pack('>16s16sHHHBB', a0, a1, p0, p1, rdomain, af, 0)

def peer(seqlo=0, seqhi=0, seqdiff=0, max_win=0, mss=0, state=0, wscale=0):
    return struct.pack('>HBBIIIIHHBB6x', 0, 0, 0, 0, seqlo, seqhi, seqdiff, max_win, mss,
                       state, wscale)

def state(sid, ifname, k0, k1, src, dst, af, proto, direction, rule, creation, expire,
          packets, byts, timeout, state_flags=0, sync_flags=0, anchor=0xffffffff):
    s = struct.pack('>Q16s', sid, ifname) + k0 + k1 + src + dst + bytes(16)
    s += struct.pack('>IIIII', rule, anchor, 0xffffffff, creation, expire)
    s += struct.pack('>QQQQ', packets[0], packets[1], byts[0], byts[1])
    s += struct.pack('>Iii', CREATOR, -1, -1)
    s += struct.pack('>HBBBBBBBBBBH2B', 0, af, proto, direction, 0, 0, timeout, sync_flags,
                     0, 0, 0, state_flags, 0, 0)
    assert len(s) == 264, len(s)
    return s

ID = 0x6578a1c000000000
# inbound established TCP, wscale 7 both ways
S_TCP = state(ID + 1, b'em0',
              key(ip4('10.0.0.1'), ip4('10.0.0.2'), 40000, 22, 2),
              key(ip4('10.0.0.1'), ip4('10.0.0.2'), 40000, 22, 2),
              peer(1000, 66535, 0, 65535, 0, 4, 0x87), peer(5000, 70000, 0, 65000, 0, 4, 0x87),
              2, 6, 1, 0, 3725, 86399, (10, 8), (1000, 2000), 2)
# outbound NATed UDP, sloppy, source-tracked, no rule
S_UDP = state(ID + 2, b'all',
              key(ip4('198.51.100.7'), ip4('203.0.113.1'), 53, 61000, 2),
              key(ip4('198.51.100.7'), ip4('192.168.1.10'), 53, 5353, 2),
              peer(state=2), peer(state=1), 2, 17, 2, 0xffffffff, 59, 60, (3, 2), (300, 200),
              8, state_flags=0x0002, sync_flags=0x04)
# inbound ICMPv6 echo
S_ICMP6 = state(ID + 3, b'vio0',
                key(ip6((0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)), ip6((0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
                    4660, 0, 24),
                key(ip6((0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)), ip6((0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
                    4660, 0, 24),
                peer(), peer(), 24, 58, 1, 3, 5, 10, (1, 1), (104, 104), 9)

def upd_c(sid):
    return (struct.pack('>Q', sid) + peer(1000, 66535, 0, 65535, 0, 4, 0x87)
            + peer(5000, 70000, 0, 65000, 0, 4, 0x87) + struct.pack('>IIBB2x', CREATOR, 0, 2, 0))

def idmsg(sid, creator=CREATOR):
    return struct.pack('>QI', sid, creator)

def clr(ifname):
    return struct.pack('>16sI', ifname, CREATOR)

def bus(endtime, status):
    return struct.pack('>IIB3x', CREATOR, endtime, status)

def tdb():
    dst = struct.pack('>BBH4s', 16, 2, 0, bytes([192, 0, 2, 1])) + bytes(20)
    return struct.pack('>I28sQQBBH', 0xdeadbeef, dst, 16384, 123456, 50, 0, 0)

SIZES = {0: 20, 2: 12, 4: 84, 5: 12, 6: 264, 7: 12, 10: 12, 13: 264, 14: 264, 15: 52}

def packet(sections, version=6, hdr_len=None):
    body = b''
    for action, msgs in sections:
        body += struct.pack('>BBH', action, SIZES[action] // 4, len(msgs)) + b''.join(msgs)
    total = 20 + len(body) if hdr_len is None else hdr_len
    return struct.pack('>BBH16x', version, 0, total) + body

P_ALL = packet([(0, [clr(b'em0')]), (2, [idmsg(ID + 1)]), (4, [upd_c(ID + 1)]),
                (5, [idmsg(ID + 1)]), (6, [S_TCP]), (7, [idmsg(ID + 1)]),
                (10, [bus(3723, 1)]), (13, [S_TCP, S_ICMP6]), (14, [S_UDP]), (15, [tdb()])])

# ---- link and network layers ----
def csum(b):
    s = sum(struct.unpack('>%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

def ipv4(payload, ttl=255, src='192.168.100.1', dst='224.0.0.240', proto=240):
    h = struct.pack('>BBHHHBBH4s4s', 0x45, 0x10, 20 + len(payload), 1, 0x4000, ttl, proto, 0,
                    ip4(src)[:4], ip4(dst)[:4])
    return h[:10] + struct.pack('>H', csum(h)) + h[12:] + payload

V6SRC = ip6((0xfe80, 0, 0, 0, 0, 0, 0, 1))
V6DST = ip6((0xff12, 0, 0, 0, 0, 0, 0, 0xf0))

def ipv6(payload, ext=False):
    nh = 240
    if ext:  # hop-by-hop (PadN) then destination options (PadN), then pfsync
        payload = bytes([60, 0, 1, 4, 0, 0, 0, 0]) + bytes([240, 0, 1, 4, 0, 0, 0, 0]) + payload
        nh = 0
    return struct.pack('>IHBB16s16s', 6 << 28, len(payload), nh, 255, V6SRC, V6DST) + payload

def eth(l3, etype, vlan=None):
    h = bytes.fromhex('01005e0000f0020000000001')
    if vlan is not None:
        h += struct.pack('>HH', 0x8100, vlan)
    return h + struct.pack('>H', etype) + l3

def sll(l3, etype):
    return struct.pack('>HHH8sH', 0, 1, 6, bytes.fromhex('0200000000010000'), etype) + l3

def sll2(l3, etype):
    return struct.pack('>HHIHBB8s', etype, 0, 2, 1, 0, 6, bytes.fromhex('0200000000010000')) + l3

def pcap(name, linktype, frames):
    with open(os.path.join(out, name), 'wb') as f:
        f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, linktype))
        for i, fr in enumerate(frames):
            f.write(struct.pack('<IIII', 1700000000 + i, 0, len(fr), len(fr)) + fr)

VECTORS = [V_BULK, V_INS_ACK, V_DEL_C, V_BUS_END, V_CLR]
pcap('vectors-eth.pcap', 1, [eth(ipv4(p), 0x0800) for p in VECTORS])
pcap('vectors-vlan.pcap', 1, [eth(ipv4(p), 0x0800, vlan=42) for p in VECTORS])
pcap('vectors-raw.pcap', 101, [ipv4(p) for p in VECTORS])
pcap('vectors-ipv4.pcap', 228, [ipv4(p) for p in VECTORS])
pcap('vectors-sll.pcap', 113, [sll(ipv4(p), 0x0800) for p in VECTORS])
pcap('vectors-sll2.pcap', 276, [sll2(ipv4(p), 0x0800) for p in VECTORS])
for lt in (18, 121, 246):
    pcap('vectors-pfsync%d.pcap' % lt, lt, VECTORS)
pcap('vectors-ipv6.pcap', 229, [ipv6(p) for p in VECTORS])
pcap('vectors-eth6.pcap', 1, [eth(ipv6(p, ext=True), 0x86dd) for p in VECTORS])
pcap('all-eth.pcap', 1, [eth(ipv4(P_ALL), 0x0800)])
pcap('all-pfsync.pcap', 246, [P_ALL])
pcap('all-pfsync18.pcap', 18, [P_ALL])  # Wireshark 4.0 cannot read 246
# non-pfsync traffic around a pfsync packet: an ARP frame, UDP, a runt
pcap('mixed.pcap', 1, [eth(bytes(28), 0x0806), eth(ipv4(bytes(8), proto=17), 0x0800),
                       bytes(6), eth(ipv4(V_BULK), 0x0800)])

# malformed payloads (each to one line of error words)
bad = [
    V_BULK[:12],                                        # shorter than the header
    bytes([5]) + V_BULK[1:],                            # version 5
    V_DEL_C[:40],                                       # second DEL_C cut short
    V_BULK[:2] + struct.pack('>H', 0x25) + V_BULK[4:],  # header claims one byte more
    V_BULK[:2] + struct.pack('>H', 24) + V_BULK[4:],    # header claims less than the section
    V_BULK + bytes(4),                                  # four bytes after the claimed length
    packet([]) [:2] + struct.pack('>H', 24) + bytes(16) + bytes([19, 0, 0, 1]),  # action 19
    packet([])[:2] + struct.pack('>H', 28) + bytes(16) + bytes([1, 3, 0, 1]) + bytes(4),  # OINS
    bytes(range(256)) * 2,                              # garbage
]
pcap('bad-eth.pcap', 1, [eth(ipv4(p), 0x0800) for p in bad])
pcap('bad-pfsync.pcap', 246, bad)
# a frame captured shorter than its IP header says, and an IP header cut short
pcap('snap-eth.pcap', 1, [eth(ipv4(V_DEL_C), 0x0800)[:14 + 20 + 30], eth(ipv4(V_BULK), 0x0800)[:20]])

with open(os.path.join(out, 'all-eth.pcap'), 'rb') as f:
    whole = f.read()
with open(os.path.join(out, 'cut.pcap'), 'wb') as f:      # pcap record cut in the middle
    f.write(whole[:len(whole) - 100])
with open(os.path.join(out, 'garbage.pcap'), 'wb') as f:
    f.write(bytes(range(256)))
PY

# ---- expected text (pfsync-wire.md §5.2 format, written by hand) ---------------
VECTORS_TEXT='PFSYNCv6 len 36
    act UPD ST REQ count 1
	id: 0000000000000000 creatorid: 00000000
PFSYNCv6 len 36
    act INS ST ACK count 1
	id: 6578a1c000000001 creatorid: 1234abcd
PFSYNCv6 len 48
    act DEL ST COMP count 2
	id: 6578a1c000000001 creatorid: 1234abcd
	id: 6578a1c000000002 creatorid: 1234abcd
PFSYNCv6 len 36
    act BULK UPD STAT count 1
	creatorid: 1234abcd age: 00:00:00 status: end
PFSYNCv6 len 44
    act CLR ST count 1
	creatorid: 1234abcd'

# prefixes every packet's first line the way the IP printer does
with_prefix() {
	local prefix=$1
	printf '%s\n' "$VECTORS_TEXT" | sed "s/^PFSYNC/${prefix}PFSYNC/"
}

check_output() { # name expected-text command...
	local name=$1 expected=$2
	shift 2
	local rc=0
	"$@" >"$WORK/out.txt" 2>"$WORK/err.txt" || rc=$?
	printf '%s\n' "$expected" >"$WORK/expected.txt"
	if [ $rc -eq 0 ] && diff -u "$WORK/expected.txt" "$WORK/out.txt" >"$WORK/diff.txt"; then
		ok "$name"
	else
		not_ok "$name (rc $rc)"
		cat "$WORK/diff.txt" "$WORK/err.txt" | sed 's/^/#   /'
	fi
}

for f in eth vlan raw ipv4 sll sll2; do
	check_output "vectors over $f" "$(with_prefix '192.168.100.1: ')" \
		"$CTL" decode "$WORK/vectors-$f.pcap"
done
for f in ipv6 eth6; do
	check_output "vectors over $f" "$(with_prefix 'fe80::1: ')" "$CTL" decode "$WORK/vectors-$f.pcap"
done
check_output "vectors over eth -v" "$(with_prefix '192.168.100.1 > 224.0.0.240: ')" \
	"$CTL" decode -v "$WORK/vectors-eth.pcap"
check_output "vectors over ipv6 -v" "$(with_prefix 'fe80::1 > ff12::f0: ')" \
	"$CTL" decode -v "$WORK/vectors-ipv6.pcap"
for lt in 18 121 246; do
	check_output "vectors as DLT_PFSYNC $lt" "$VECTORS_TEXT" "$CTL" decode "$WORK/vectors-pfsync$lt.pcap"
done
check_output "non-pfsync frames skipped" "$(printf '%s\n' "$VECTORS_TEXT" | head -3 |
	sed 's/^PFSYNC/192.168.100.1: PFSYNC/')" "$CTL" decode "$WORK/mixed.pcap"

ALL_TEXT='PFSYNCv6 len 1320
    act CLR ST count 1
	creatorid: 1234abcd interface: em0
    act INS ST ACK count 1
	id: 6578a1c000000001 creatorid: 1234abcd
    act UPD ST COMP count 1
	id: 6578a1c000000001 creatorid: 1234abcd
    act UPD ST REQ count 1
	id: 6578a1c000000001 creatorid: 1234abcd
    act DEL ST count 1
	em0 tcp 10.0.0.2:22 <- 10.0.0.1:40000    ESTABLISHED:ESTABLISHED
    act DEL ST COMP count 1
	id: 6578a1c000000001 creatorid: 1234abcd
    act BULK UPD STAT count 1
	creatorid: 1234abcd age: 01:02:03 status: start
    act INS ST count 2
	em0 tcp 10.0.0.2:22 <- 10.0.0.1:40000    ESTABLISHED:ESTABLISHED
	vio0 ipv6-icmp 2001:db8::2 <- 2001:db8::1[4660]    0:0
    act UPD ST count 1
	all udp 203.0.113.1:61000 (192.168.1.10:5353) -> 198.51.100.7:53    MULTIPLE:SINGLE
    act UPD TDB count 1
	spi: 0xdeadbeef rpl: 16384 cur_bytes: 123456'
check_output "every action, DLT_PFSYNC" "$ALL_TEXT" "$CTL" decode "$WORK/all-pfsync.pcap"
check_output "every action, Ethernet" "192.168.100.1: $ALL_TEXT" "$CTL" decode "$WORK/all-eth.pcap"

TCP_V='	em0 tcp 10.0.0.2:22 <- 10.0.0.1:40000    ESTABLISHED:ESTABLISHED
	   [5000 + 65000] wscale 7  [1000 + 65535] wscale 7
	   age 01:02:05, expires in 23:59:59, 10:8 pkts, 1000:2000 bytes, rule 0
	   id: 6578a1c000000001 creatorid: 1234abcd
	   timeout tcp.established, state flags 0x0000'
ALL_V="PFSYNCv6 len 1320
    act CLR ST count 1
	creatorid: 1234abcd interface: em0
    act INS ST ACK count 1
	id: 6578a1c000000001 creatorid: 1234abcd
    act UPD ST COMP count 1
	id: 6578a1c000000001 creatorid: 1234abcd
    act UPD ST REQ count 1
	id: 6578a1c000000001 creatorid: 1234abcd
    act DEL ST count 1
$TCP_V
    act DEL ST COMP count 1
	id: 6578a1c000000001 creatorid: 1234abcd
    act BULK UPD STAT count 1
	creatorid: 1234abcd age: 01:02:03 status: start
    act INS ST count 2
$TCP_V
	vio0 ipv6-icmp 2001:db8::2 <- 2001:db8::1[4660]    0:0
	   age 00:00:05, expires in 00:00:10, 1:1 pkts, 104:104 bytes, rule 3
	   id: 6578a1c000000003 creatorid: 1234abcd
	   timeout icmp.first, state flags 0x0000
    act UPD ST count 1
	all udp 203.0.113.1:61000 (192.168.1.10:5353) -> 198.51.100.7:53    MULTIPLE:SINGLE
	   age 00:00:59, expires in 00:01:00, 3:2 pkts, 300:200 bytes, source-track
	   id: 6578a1c000000002 creatorid: 1234abcd
	   timeout udp.multiple, state flags 0x0002 <sloppy>
    act UPD TDB count 1
	spi: 0xdeadbeef rpl: 16384 cur_bytes: 123456"
check_output "every action -v (pfctl -ss -vv detail)" "$ALL_V" "$CTL" decode -v "$WORK/all-pfsync.pcap"

BAD_TEXT='[|pfsync]
PFSYNCv5 len 36
PFSYNCv6 len 48
    act DEL ST COMP count 2
	id: 6578a1c000000001 creatorid: 1234abcd
    ...
PFSYNCv6 len 37
    act UPD ST REQ count 1
	id: 0000000000000000 creatorid: 00000000
    ...
PFSYNCv6 len 24
    act UPD ST REQ count 1
	id: 0000000000000000 creatorid: 00000000
    invalid header length
PFSYNCv6 len 36
    act UPD ST REQ count 1
	id: 0000000000000000 creatorid: 00000000
    invalid packet length
PFSYNCv6 len 24
    act UNKNOWN id 19
PFSYNCv6 len 28
    act INS ST OLD count 1
    unimplemented action
PFSYNCv0 len 515'
check_output "malformed payloads, DLT_PFSYNC" "$BAD_TEXT" "$CTL" decode "$WORK/bad-pfsync.pcap"
check_output "malformed payloads, Ethernet" "$(printf '%s\n' "$BAD_TEXT" |
	sed 's/^\(PFSYNC\|\[\)/192.168.100.1: \1/')" "$CTL" decode "$WORK/bad-eth.pcap"
check_output "frames cut by the snap length" '192.168.100.1: PFSYNCv6 len 48
    act DEL ST COMP count 2
    ...' "$CTL" decode "$WORK/snap-eth.pcap"

# ---- JSON -----------------------------------------------------------------------
json_ok=1
"$CTL" decode --json "$WORK/all-eth.pcap" >"$WORK/all.json" || json_ok=0
if [ $json_ok -eq 1 ] && python3 - "$WORK/all.json" <<'PY'; then
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
p = json.loads(lines[0])
assert p['ip'] == {'version': 4, 'src': '192.168.100.1', 'dst': '224.0.0.240', 'ttl': 255}, p['ip']
s = p['pfsync']
assert s['version'] == 6 and s['len'] == 1320 and s['errors'] == [], s
assert [x['action'] for x in s['sections']] == [0, 2, 4, 5, 6, 7, 10, 13, 14, 15]
assert s['receiver']['accepted'] is True
ins = s['sections'][7]['messages']
assert ins[0]['id'] == '6578a1c000000001' and ins[0]['creatorid'] == '1234abcd'
assert ins[0]['ifname'] == 'em0' and ins[0]['proto'] == 6 and ins[0]['direction'] == 1
assert ins[0]['key'][0]['addr0'] == '10.0.0.1' and ins[0]['key'][0]['port1'] == 22
assert ins[0]['src']['seqlo'] == 1000 and ins[0]['dst']['wscale'] == 0x87
assert ins[0]['packets'] == [10, 8] and ins[0]['bytes'] == [1000, 2000]
assert ins[0]['creation'] == 3725 and ins[0]['expire'] == 86399 and ins[0]['timeout'] == 2
assert ins[1]['key'][1]['addr1'] == '2001:db8::2' and ins[1]['af'] == 24
upd = s['sections'][8]['messages'][0]
assert upd['key'][1]['addr1'] == '192.168.1.10' and upd['state_flags'] == 2
assert upd['rule'] == 0xffffffff and upd['sync_flags'] == 4
assert s['sections'][6]['messages'][0] == {'creatorid': '1234abcd', 'endtime': 3723,
                                           'status': 1, 'status_name': 'start'}
tdb = s['sections'][9]['messages'][0]
assert tdb['spi'] == 'deadbeef' and tdb['dst']['addr'] == '192.0.2.1' and tdb['sproto'] == 50
assert s['sections'][0]['messages'][0] == {'ifname': 'em0', 'creatorid': '1234abcd'}
PY
	ok "--json has every field of every action"
else
	not_ok "--json has every field of every action"
fi

"$CTL" decode --json "$WORK/bad-pfsync.pcap" >"$WORK/bad.json" || json_ok=0
if [ $json_ok -eq 1 ] && python3 - "$WORK/bad.json" <<'PY'; then
import json, sys
pk = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()]
assert len(pk) == 9, len(pk)
want = [['[|pfsync]'], [], ['...'], ['...'], ['invalid header length'],
        ['invalid packet length'], ['act UNKNOWN id 19'], ['unimplemented action'], []]
assert [p['pfsync']['errors'] for p in pk] == want, [p['pfsync']['errors'] for p in pk]
r = [p['pfsync']['receiver'] for p in pk]
assert r[0]['hdrops'] == 1 and r[1]['badver'] == 1 and r[2]['badlen'] == 1
assert r[3]['badlen'] == 1 and r[6]['badact'] == 1 and not r[0]['accepted']
PY
	ok "--json on malformed payloads"
else
	not_ok "--json on malformed payloads"
fi

# ---- broken files -------------------------------------------------------------------
expect_fail() { # name pattern command...
	local name=$1 pattern=$2
	shift 2
	local rc=0
	"$@" >"$WORK/out.txt" 2>"$WORK/err.txt" || rc=$?
	if [ $rc -eq 1 ] && grep -q -- "$pattern" "$WORK/err.txt"; then
		ok "$name"
	else
		not_ok "$name (rc $rc)"
		sed 's/^/#   /' "$WORK/err.txt"
	fi
}
expect_fail "missing file" "no-such.pcap" "$CTL" decode "$WORK/no-such.pcap"
expect_fail "not a pcap file" "garbage.pcap" "$CTL" decode "$WORK/garbage.pcap"
expect_fail "pcap cut inside a record" "cut.pcap" "$CTL" decode "$WORK/cut.pcap"
rc=0
"$CTL" decode >/dev/null 2>&1 || rc=$?
if [ $rc -eq 2 ]; then ok "usage error exits 2"; else not_ok "usage error exits 2 (rc $rc)"; fi

# ---- live capture (-i IF -c COUNT) on a veth pair in a namespace of our own ---------
NS=pfdec$$
LIVE_PID=
PIDS=()
BPFFS=
cleanup() {
	set +e # every step runs, whatever the previous one did
	[ -n "$LIVE_PID" ] && kill "$LIVE_PID" 2>/dev/null
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	[ -n "$BPFFS" ] && umount -l "$BPFFS"
	ip netns del "$NS" 2>/dev/null
	rm -rf "$WORK"
}
NS_READY=
if [ "$(id -u)" -eq 0 ] && ip netns add "$NS" 2>/dev/null; then
	NS_READY=1
	trap cleanup EXIT
	# background jobs call nsenter directly so that $! is the program itself
	nsx() { nsenter --net="/run/netns/$NS" -- "$@"; }
	nsx ip link add pfdec0 type veth peer name pfdec1
	nsx ip addr add 192.0.2.1/24 dev pfdec0
	nsx ip link set pfdec0 up
	nsx ip link set pfdec1 up
	# a neighbour that never answers but needs no ARP: packets leave through pfdec0
	nsx ip neigh add 192.0.2.3 lladdr 02:00:00:00:00:03 dev pfdec0 nud permanent
	nsenter --net="/run/netns/$NS" -- "$CTL" decode -v -i pfdec0 -c 2 \
		>"$WORK/live.txt" 2>"$WORK/live.err" &
	LIVE_PID=$!
	# decode may start capturing after the first packets: keep sending (UDP noise
	# that the filter drops, then a bulk request) until it has seen two, or time is up
	deadline=$((SECONDS + 20))
	while kill -0 "$LIVE_PID" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
		nsx python3 - <<'PY'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b'noise', ('192.0.2.3', 9))
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, 240)
r.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
r.sendto(bytes.fromhex('06000024' + '00' * 16 + '05030001' + '00' * 12), ('192.0.2.3', 0))
PY
		sleep 0.2 # sender pacing; completion is decided by decode exiting
	done
	rc=0
	if kill -0 "$LIVE_PID" 2>/dev/null; then
		kill "$LIVE_PID"
		rc=124
	fi
	wait "$LIVE_PID" || rc=$?
	LIVE_PID=
	one='192.0.2.1 > 192.0.2.3: PFSYNCv6 len 36
    act UPD ST REQ count 1
	id: 0000000000000000 creatorid: 00000000'
	printf '%s\n%s\n' "$one" "$one" >"$WORK/expected.txt"
	if [ $rc -eq 0 ] && diff -u "$WORK/expected.txt" "$WORK/live.txt" >"$WORK/diff.txt"; then
		ok "live capture -i IF -c 2"
	else
		not_ok "live capture -i IF -c 2 (rc $rc)"
		cat "$WORK/diff.txt" "$WORK/live.err" | sed 's/^/#   /'
	fi
	expect_fail "live capture on a missing interface" "no-such-if0" \
		nsx "$CTL" decode -i no-such-if0 -c 1
else
	# TAP skip; the reason says what was missing (scripts/netns-lib.sh, top)
	if [ "$(id -u)" -ne 0 ]; then why="not root"; else why="cannot create a network namespace"; fi
	echo "ok - live capture # SKIP $why"
fi

# ---- a capture the agent itself wrote through its pfsync0 TUN -----------------------
# (optional: needs the agent and the BPF object; same namespace as above)
AGENT=${PFSYNC_BUILD:-$ROOT/build}/pfsync-agent
AGENT_CTL=${PFSYNC_BUILD:-$ROOT/build}/pfsyncctl
OBJ=${PFSYNC_OBJ:-${PFSYNC_BUILD:-$ROOT/build}/pfsync_xdp.o}
wait_for() { # SECONDS command...: polls until the command succeeds
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.1
	done
}
if [ -n "${NS_READY:-}" ] && [ -x "$AGENT" ] && [ -f "$OBJ" ] && command -v tcpdump >/dev/null; then
	nsx ip link add sync0 type veth peer name sync1
	nsx ip addr add 10.77.0.1/24 dev sync0
	nsx ip link set sync0 up
	nsx ip link set sync1 up
	BPFFS=$WORK/bpffs
	mkdir -p "$BPFFS"
	mount -t bpf bpf "$BPFFS"
	nsenter --net="/run/netns/$NS" -- "$AGENT" --syncdev sync0 --hostid 0xa1a1a1a1 \
		--pin-dir "$BPFFS" --obj "$OBJ" --ctl "$WORK/agent.sock" --pfsync-if pfsync0 -v >"$WORK/agent.log" 2>&1 &
	PIDS+=($!)
	if wait_for 10 test -S "$WORK/agent.sock" &&
		wait_for 10 nsx ip link show pfsync0 >/dev/null 2>&1; then
		nsenter --net="/run/netns/$NS" -- tcpdump -n -U -i pfsync0 -c 2 -w "$WORK/agent.pcap" \
			2>"$WORK/tcpdump.err" &
		TCPDUMP_PID=$!
		PIDS+=($TCPDUMP_PID)
		wait_for 10 grep -q "listening on" "$WORK/tcpdump.err" || true
		# a flush makes the agent send CLR; its bulk request retries supply the second
		# packet. The agent looks for captures every 50 ms: flush until tcpdump has two.
		flushed_and_captured()
		{
			nsx "$AGENT_CTL" --ctl "$WORK/agent.sock" flush >/dev/null 2>&1 || true
			wait_for 1 bash -c "! kill -0 $TCPDUMP_PID 2>/dev/null"
		}
		if wait_for 20 flushed_and_captured; then
			"$CTL" decode "$WORK/agent.pcap" >"$WORK/agent.txt" 2>&1 || true
			if grep -q "^10.77.0.1: PFSYNCv6 len 44" "$WORK/agent.txt" &&
				grep -q "act CLR ST count 1" "$WORK/agent.txt" &&
				grep -q "	creatorid: a1a1a1a1$" "$WORK/agent.txt"; then
				ok "decode a capture the agent wrote through pfsync0"
			else
				not_ok "decode a capture the agent wrote"
				sed 's/^/#   /' "$WORK/agent.txt"
			fi
			if command -v tshark >/dev/null &&
				tshark -n -X "lua_script:$LUA" -r "$WORK/agent.pcap" -T fields \
					-e pfsync.clr.creatorid 2>/dev/null | grep "0xa1a1a1a1" >/dev/null; then
				ok "tshark on a capture the agent wrote"
			elif command -v tshark >/dev/null; then
				not_ok "tshark on a capture the agent wrote"
			fi
		else
			not_ok "tcpdump on pfsync0 saw no agent packets"
			sed 's/^/#   /' "$WORK/tcpdump.err" "$WORK/agent.log" | tail -20
		fi
	else
		not_ok "agent did not start"
		sed 's/^/#   /' "$WORK/agent.log" | tail -20
	fi
else
	missing=
	[ -n "${NS_READY:-}" ] || missing+=" no-namespace"
	[ -x "$AGENT" ] || missing+=" $AGENT"
	[ -f "$OBJ" ] || missing+=" $OBJ"
	command -v tcpdump >/dev/null || missing+=" tcpdump"
	echo "ok - agent capture # SKIP missing:$missing"
fi

# ---- Wireshark Lua dissector --------------------------------------------------------
if command -v tshark >/dev/null 2>&1; then
	ts() { tshark -n -X "lua_script:$LUA" "$@" 2>"$WORK/tshark.err"; }
	for f in all-eth all-pfsync18; do
		if ts -r "$WORK/$f.pcap" -T fields -E separator=";" -e pfsync.version -e pfsync.len \
			-e pfsync.action >"$WORK/ts.txt" &&
			[ "$(cat "$WORK/ts.txt")" = "6;1320;0,2,4,5,6,7,10,13,14,15" ]; then
			ok "tshark: header and every action ($f)"
		else
			not_ok "tshark: header and every action ($f)"
			sed 's/^/#   /' "$WORK/ts.txt" "$WORK/tshark.err"
		fi
	done
	if ts -r "$WORK/all-eth.pcap" -T fields -E separator=";" -E occurrence=a \
		-e pfsync.state.id -e pfsync.state.ifname -e pfsync.state.proto \
		-e pfsync.state.creation -e pfsync.state.expire -e pfsync.state.timeout \
		-e pfsync.state.packets0 -e pfsync.state.bytes1 -e pfsync.state.direction \
		-e pfsync.key.addr0 -e pfsync.peer.seqlo -e pfsync.tdb.spi -e pfsync.bus.status \
		-e pfsync.clr.ifname >"$WORK/ts.txt"; then
		IFS=";" read -r ids ifn proto creation expire timeout pk0 by1 dir kaddr seqlo spi bus clr \
			<"$WORK/ts.txt"
		if [ "$ids" = "0x6578a1c000000001,0x6578a1c000000001,0x6578a1c000000003,0x6578a1c000000002" ] &&
			[ "$ifn" = "em0,em0,vio0,all" ] && [ "$proto" = "6,6,58,17" ] &&
			[ "$creation" = "3725,3725,5,59" ] && [ "$expire" = "86399,86399,10,60" ] &&
			[ "$timeout" = "2,2,9,8" ] && [ "$pk0" = "10,10,1,3" ] &&
			[ "$by1" = "2000,2000,104,200" ] && [ "$dir" = "1,1,1,2" ] &&
			[[ "$kaddr" == 10.0.0.1,10.0.0.1,* ]] && [[ "$seqlo" == 1000,5000,* ]] &&
			[ "$spi" = "0xdeadbeef" ] && [ "$bus" = "1" ] && [ "$clr" = "em0" ]; then
			ok "tshark: state, key, peer, TDB, BUS, CLR fields"
		else
			not_ok "tshark: state, key, peer, TDB, BUS, CLR fields"
			sed 's/^/#   /' "$WORK/ts.txt"
		fi
	else
		not_ok "tshark: state fields"
		sed 's/^/#   /' "$WORK/tshark.err"
	fi
	# the §5.3 vectors, field by field, over every link type Wireshark 4.0 reads
	# (it has no LINKTYPE_PFSYNC 246: the DLT_PFSYNC captures use 18 and 121)
	VEC_FIELDS='5;0x0000000000000000;0x00000000;;
2;0x6578a1c000000001;0x1234abcd;;
7;0x6578a1c000000001,0x6578a1c000000002;0x1234abcd,0x1234abcd;;
10;;;2;
0;;;;0x1234abcd'
	for f in eth vlan raw ipv4 sll sll2 ipv6 eth6 pfsync18 pfsync121; do
		if ts -r "$WORK/vectors-$f.pcap" -T fields -E separator=";" -e pfsync.action \
			-e pfsync.msg.id -e pfsync.msg.creatorid -e pfsync.bus.status \
			-e pfsync.clr.creatorid >"$WORK/ts.txt" &&
			[ "$(cat "$WORK/ts.txt")" = "$VEC_FIELDS" ]; then
			ok "tshark: §5.3 vectors over $f"
		else
			not_ok "tshark: §5.3 vectors over $f"
			sed 's/^/#   /' "$WORK/ts.txt" "$WORK/tshark.err"
		fi
	done
	# files that are no capture, or cut inside a record: an error, never a Lua error
	for f in garbage cut; do
		if ! ts -r "$WORK/$f.pcap" >"$WORK/ts.txt" && grep -q "$f.pcap" "$WORK/tshark.err" &&
			! grep -qi "lua" "$WORK/tshark.err"; then
			ok "tshark: $f.pcap refused cleanly"
		else
			not_ok "tshark: $f.pcap"
			sed 's/^/#   /' "$WORK/tshark.err"
		fi
	done
	# expert info on malformed packets, and no Lua errors anywhere
	if ts -r "$WORK/bad-eth.pcap" -V >"$WORK/ts.txt" &&
		grep -q "Unsupported pfsync version 5" "$WORK/ts.txt" &&
		grep -q "runs past the captured data" "$WORK/ts.txt" &&
		grep -q "Unknown action 19" "$WORK/ts.txt" &&
		! grep -qi "lua error" "$WORK/ts.txt" "$WORK/tshark.err"; then
		ok "tshark: expert info on malformed packets"
	else
		not_ok "tshark: expert info on malformed packets"
		grep -i "expert\|error\|warn" "$WORK/ts.txt" "$WORK/tshark.err" | head -20 | sed 's/^/#   /'
	fi
else
	echo "ok - Lua dissector # SKIP tshark not installed"
fi

echo "# decode: $pass passed, $fail failed"
[ $fail -eq 0 ]
