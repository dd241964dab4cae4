#!/usr/bin/env bash
# Writes fuzz seeds captured from real agents (fuzz/corpus/cap-*): two
# pfsync-agents on a veth in namespaces of their own; tcpdump on B's side
# records what A sends while states are created on A (INS, UPD), B asks for
# a bulk update (UPD_REQ, bulk UPD, BUS) and A flushes (CLR). Each pfsync
# packet becomes one seed: mode byte 01 (an IPv4 packet, as fuzz_decode and
# fuzz_apply read it) and the IP packet. Needs root and a build (make tests).
#
#   scripts/fuzz-corpus-capture.sh [OUTDIR]     (default fuzz/corpus)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. scripts/netns-lib.sh
OUT=$(realpath -m "${1:-fuzz/corpus}")

nl_build
nl_need "$OBJ" "$AGENT" "$CTL" "$DRV"
nl_need_tools tcpdump python3
nl_init fc
A_NS="pfca-$NL_ID" B_NS="pfcb-$NL_ID"
nl_netns_add "$A_NS"
nl_netns_add "$B_NS"
nl_veth "$A_NS" sync0 "$B_NS" sync0
nl_addr "$A_NS" sync0 10.215.0.1/24
nl_addr "$B_NS" sync0 10.215.0.2/24
PIN_A=$(nl_bpffs_tmp)
PIN_B=$(nl_bpffs_tmp)

start() # NAME NS PIN HOSTID
{
	nl_agent_run "$1" "$2" "$NL_TMP/$1.sock" --syncdev sync0 --hostid "$4" --pin-dir "$3" \
		--obj "$OBJ" --pfsync-if none --interval 1
	"$DRV" config "$3" >/dev/null || nl_die "cannot set long timeouts on $1"
}
received() { [ "$(nl_ctlq B "stats --json" ipackets)" -ge "$1" ]; }

start A "$A_NS" "$PIN_A" 0x1234abcd
nsenter --net="/run/netns/$B_NS" -- tcpdump -i sync0 -U -n -w "$NL_TMP/cap.pcap" 'ip proto 240' \
	2>"$NL_TMP/tcpdump.err" &
TCPDUMP=$!
nl_on_cleanup "kill $TCPDUMP; wait $TCPDUMP"
nl_wait_until 10 nl_file_has "$NL_TMP/tcpdump.err" "listening on" || nl_die "tcpdump did not start"
start B "$B_NS" "$PIN_B" 0x0badcafe
nl_wait_until 20 nl_bulk_done B || nl_die "B's bulk request was not answered"
nl_in "$A_NS" "$DRV" fill "$PIN_A" 40 0 0 >/dev/null || nl_die "cannot create states on A"
nl_wait_until 20 received 3 || nl_die "B received nothing after the states"
nl_agent_stop B
start B "$B_NS" "$PIN_B" 0x0badcafe # a bulk update of A's 40 states
nl_wait_until 20 nl_bulk_done B || nl_die "B's second bulk request was not answered"
python3 "$NL_LIB_DIR/ctlq.py" "$NL_TMP/A.sock" flush >/dev/null || nl_die "flush on A failed"
nl_wait_until 10 bash -c "[ \"\$(python3 '$NL_LIB_DIR/ctlq.py' '$NL_TMP/B.sock' 'stats --json' in:0)\" -ge 1 ]" ||
	nl_die "B did not receive A's CLR"
kill "$TCPDUMP"
wait "$TCPDUMP"

mkdir -p "$OUT"
python3 - "$NL_TMP/cap.pcap" "$OUT" <<'PY' || nl_die "cannot split the capture"
import hashlib, struct, sys
data = open(sys.argv[1], "rb").read()
assert struct.unpack("<I", data[:4])[0] == 0xa1b2c3d4, "not a little-endian pcap"
off, n = 24, 0
while off + 16 <= len(data):
    caplen = struct.unpack("<I", data[off + 8:off + 12])[0]
    frame = data[off + 16:off + 16 + caplen]
    off += 16 + caplen
    ip = frame[14:]  # Ethernet
    seed = b"\x01" + ip
    name = "cap-%s" % hashlib.sha1(seed).hexdigest()[:16]
    open("%s/%s" % (sys.argv[2], name), "wb").write(seed)
    n += 1
print("%d packets written to %s" % (n, sys.argv[2]))
PY
nl_finish
