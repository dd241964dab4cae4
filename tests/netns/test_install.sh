#!/usr/bin/env bash
# `make install` into a DESTDIR, then everything run from there:
#   - the files land where PREFIX/BINDIR/MANDIR/SYSCONFDIR say (defaults and
#     others), the unit and man pages name those paths, uninstall removes them
#   - installed pfsyncctl/pfsync-agent --help; the installed agent finds the
#     installed BPF object by itself (no --obj, no $PFSYNC_BPF_OBJ)
#   - a config file (-f) sets the options, the command line overrides one,
#     a file with an error names file and line; --rules loads the ruleset
#     and SIGHUP reloads it (a bad file keeps the old rules)
#   - sd_notify: READY=1 arrives once the bulk update from a peer is done
#   - `pfsyncctl stats --prometheus` passes a checker of the text format
#     (which itself must reject broken samples)
#   - forged CLR packets from the sync link are logged rate-limited
#   - mandoc -T lint, man -l, systemd-analyze verify on the installed unit,
#     keepalived -t on the example and the example itself on two routers
#     (demoted until the bulk update is done), ucarp-up.sh gated on "bulk: done"
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. scripts/netns-lib.sh

BUILD=${PFSYNC_BUILD:-$PWD/build}
for f in pfsync-agent pfsyncctl pfsync_xdp.o pfsync_bulk.o; do
	[ -e "$BUILD/$f" ] || nl_die "$BUILD/$f not built (make)"
done
nl_need_tools make python3 ip nsenter mandoc man
unset PFSYNC_BPF_OBJ NOTIFY_SOCKET

nl_init in
DEST=$NL_TMP/root
SBIN=$DEST/usr/local/sbin
AGENT=$SBIN/pfsync-agent
CTL=$SBIN/pfsyncctl

# ---- install ------------------------------------------------------------------
# -o: never rebuild here (other builds may be running in this tree); install what is built
if ! make -s -C "$PWD" BUILD="$BUILD" -o "$BUILD/pfsync-agent" -o "$BUILD/pfsyncctl" \
	-o "$BUILD/pfsync_xdp.o" -o "$BUILD/pfsync_bulk.o" DESTDIR="$DEST" install >"$NL_TMP/install.log" 2>&1; then
	cat "$NL_TMP/install.log" >&2
	nl_die "make install failed"
fi
expected="etc/pfsync/pfsync.conf.example
usr/local/lib/bpf/pfsync_bulk.o
usr/local/lib/bpf/pfsync_xdp.o
usr/local/lib/systemd/system/pfsync-agent.service
usr/local/sbin/pfsync-agent
usr/local/sbin/pfsyncctl
usr/local/share/doc/pfsync-xdp/examples/keepalived.conf
usr/local/share/doc/pfsync-xdp/examples/pfsync-agent.service
usr/local/share/doc/pfsync-xdp/examples/pfsync.conf
usr/local/share/doc/pfsync-xdp/examples/ucarp-down.sh
usr/local/share/doc/pfsync-xdp/examples/ucarp-up.sh
usr/local/share/man/man5/pfsync.conf.5
usr/local/share/man/man8/pfsync-agent.8
usr/local/share/man/man8/pfsyncctl.8"
got=$(cd "$DEST" && find . -type f | sed 's|^\./||' | sort)
if [ "$got" = "$expected" ]; then
	nl_pass "installed files"
else
	nl_fail "installed files differ: $(diff <(echo "$expected") <(echo "$got") | tr '\n' ' ')"
fi
[ "$(stat -c %a "$DEST/etc/pfsync/pfsync.conf.example")" = 600 ] &&
	[ -x "$AGENT" ] && [ -x "$CTL" ] && nl_pass "file modes" || nl_fail "file modes"

# ---- install with other PREFIX / BINDIR / MANDIR / SYSCONFDIR ---------------------
# (a copy of the built files in a build dir of its own: another SYSCONFDIR
# would mark the shared build's objects out of date; -o keeps make from
# rebuilding the copies)
DEST2=$NL_TMP/root2
B2=$NL_TMP/build2
mkdir -p "$B2"
cp "$BUILD/pfsync-agent" "$BUILD/pfsyncctl" "$BUILD/pfsync_xdp.o" "$BUILD/pfsync_bulk.o" "$B2"/
paths=(PREFIX=/opt/pfs BINDIR=/opt/pfs/bin MANDIR=/opt/pfs/man SYSCONFDIR=/opt/pfs/etc)
if make -s -C "$PWD" BUILD="$B2" -o "$B2/pfsync-agent" -o "$B2/pfsyncctl" -o "$B2/pfsync_xdp.o" \
	-o "$B2/pfsync_bulk.o" DESTDIR="$DEST2" "${paths[@]}" install >"$NL_TMP/install2.log" 2>&1; then
	expected2="opt/pfs/bin/pfsync-agent
opt/pfs/bin/pfsyncctl
opt/pfs/etc/pfsync/pfsync.conf.example
opt/pfs/lib/bpf/pfsync_bulk.o
opt/pfs/lib/bpf/pfsync_xdp.o
opt/pfs/lib/systemd/system/pfsync-agent.service
opt/pfs/man/man5/pfsync.conf.5
opt/pfs/man/man8/pfsync-agent.8
opt/pfs/man/man8/pfsyncctl.8
opt/pfs/share/doc/pfsync-xdp/examples/keepalived.conf
opt/pfs/share/doc/pfsync-xdp/examples/pfsync-agent.service
opt/pfs/share/doc/pfsync-xdp/examples/pfsync.conf
opt/pfs/share/doc/pfsync-xdp/examples/ucarp-down.sh
opt/pfs/share/doc/pfsync-xdp/examples/ucarp-up.sh"
	got2=$(cd "$DEST2" && find . -type f | sed 's|^\./||' | sort)
	[ "$got2" = "$expected2" ] && nl_pass "PREFIX, BINDIR, MANDIR, SYSCONFDIR place every file" ||
		nl_fail "installed with ${paths[*]}: $(diff <(echo "$expected2") <(echo "$got2") | tr '\n' ' ')"
	grep -qx "ExecStart=/opt/pfs/bin/pfsync-agent -f /opt/pfs/etc/pfsync/pfsync.conf" \
		"$DEST2/opt/pfs/lib/systemd/system/pfsync-agent.service" &&
		grep -q '/opt/pfs/etc/pfsync/pfsync.conf' "$DEST2/opt/pfs/man/man8/pfsync-agent.8" &&
		nl_pass "the installed unit and man page name the configured paths" ||
		nl_fail "unit/man paths: $(grep ExecStart "$DEST2/opt/pfs/lib/systemd/system/pfsync-agent.service")"
	make -s -C "$PWD" BUILD="$B2" DESTDIR="$DEST2" "${paths[@]}" uninstall >>"$NL_TMP/install2.log" 2>&1 ||
		nl_fail "make uninstall with ${paths[*]}: $(tail -3 "$NL_TMP/install2.log")"
	left2=$(find "$DEST2" -type f)
	[ -z "$left2" ] && nl_pass "make uninstall with the same paths removes every file" ||
		nl_fail "left after uninstall with ${paths[*]}: $left2"
else
	nl_fail "make install ${paths[*]}: $(tail -5 "$NL_TMP/install2.log")"
fi

"$CTL" --help >"$NL_TMP/ctl-help.txt" 2>&1 && grep -q -- "--prometheus" "$NL_TMP/ctl-help.txt" &&
	nl_pass "installed pfsyncctl --help" || nl_fail "installed pfsyncctl --help"
"$AGENT" --help >"$NL_TMP/agent-help.txt" 2>&1 && grep -q -- "--syncdev" "$NL_TMP/agent-help.txt" &&
	grep -q "/etc/pfsync/pfsync.conf" "$NL_TMP/agent-help.txt" &&
	nl_pass "installed pfsync-agent --help" || nl_fail "installed pfsync-agent --help"

# ---- manual pages ------------------------------------------------------------------
for page in "$DEST"/usr/local/share/man/man*/*; do
	name=${page##*/}
	# STYLE messages about pages not on this machine's manpath are not the page's fault
	lint=$(mandoc -T lint "$page" 2>&1 | grep -v "referenced manual not found\|outdated mandoc.db")
	if [ -z "$lint" ] && mandoc -T lint -W warning "$page" >/dev/null 2>&1; then
		nl_pass "mandoc -T lint $name"
	else
		nl_fail "mandoc -T lint $name: $lint"
	fi
	if MANWIDTH=80 man -l "$page" 2>/dev/null | nl_has "^SYNOPSIS\|^DESCRIPTION"; then
		nl_pass "man -l $name renders"
	else
		nl_fail "man -l $name"
	fi
done

# ---- systemd unit ------------------------------------------------------------------
UNIT=$DEST/usr/local/lib/systemd/system/pfsync-agent.service
grep -qx "ExecStart=/usr/local/sbin/pfsync-agent -f /etc/pfsync/pfsync.conf" "$UNIT" &&
	grep -qx "Type=notify" "$UNIT" && grep -q "^ExecReload=.*-HUP" "$UNIT" &&
	nl_pass "unit: notify, ExecStart, ExecReload" || nl_fail "unit contents"
command -v systemd-analyze >/dev/null || nl_die "systemd-analyze missing (scripts/deps.sh installs systemd)"
# verify checks that ExecStart exists and that man: pages resolve: point
# both into the DESTDIR (the unit itself names the final paths)
sed "s|/usr/local/sbin/|$SBIN/|" "$UNIT" >"$NL_TMP/pfsync-agent.service"
if MANPATH="$DEST/usr/local/share/man:" systemd-analyze verify \
	"$NL_TMP/pfsync-agent.service" >"$NL_TMP/verify.txt" 2>&1 && [ ! -s "$NL_TMP/verify.txt" ]; then
	nl_pass "systemd-analyze verify"
else
	nl_fail "systemd-analyze verify: $(cat "$NL_TMP/verify.txt")"
fi

# ---- configuration file errors --------------------------------------------------------
printf 'syncdev sync0\n# ok so far\nmaxupd 12\nsyncpeer\n' >"$NL_TMP/bad.conf"
rc=0
"$AGENT" -f "$NL_TMP/bad.conf" >/dev/null 2>"$NL_TMP/bad.err" || rc=$?
[ $rc -eq 2 ] && grep -q "bad.conf:4: missing value" "$NL_TMP/bad.err" &&
	nl_pass "config error names file and line" ||
	nl_fail "config error (rc $rc): $(cat "$NL_TMP/bad.err")"
rc=0
"$AGENT" -f "$NL_TMP/none.conf" >/dev/null 2>"$NL_TMP/none.err" || rc=$?
[ $rc -eq 2 ] && grep -q "none.conf: No such file" "$NL_TMP/none.err" &&
	nl_pass "missing -f file is an error" || nl_fail "missing -f file (rc $rc)"

# ---- two firewalls running the installed agent -----------------------------------------
FWA="pfia-$NL_ID"
FWB="pfib-$NL_ID"
nl_netns_add "$FWA"
nl_netns_add "$FWB"
nl_veth "$FWA" sync0 "$FWB" sync0
nl_addr "$FWA" sync0 10.211.9.1/24
nl_addr "$FWB" sync0 10.211.9.2/24
# nl_bpffs_tmp runs in a $(...) subshell: its own cleanup entry is lost, so register the umount here
PIN_A=$(nl_bpffs_tmp) && nl_on_cleanup "umount -l '$PIN_A'"
PIN_B=$(nl_bpffs_tmp) && nl_on_cleanup "umount -l '$PIN_B'"
nl_acct_watch A "$PIN_A" && nl_acct_watch B "$PIN_B"
ctl_a() { "$CTL" --pin-dir "$PIN_A" --ctl "$NL_TMP/a.sock" "$@"; }

# B first, so that A's bulk request is answered. B runs with only the
# capabilities the unit allows (CapabilityBoundingSet), attaches the
# datapath, creates its pfsync0 and runs the BPF sweep program (flush).
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNIT" | tr 'A-Z ' 'a-z\n' | sed -n 's/^cap_/+/p' |
	paste -sd, -)
ip link add name in0 netns "$FWB" type veth peer name out0 netns "$FWB" ||
	nl_die "cannot create fwB's veth pair"
ip -n "$FWB" link set dev in0 up
nsenter --net="/run/netns/$FWB" -- setpriv --bounding-set="-all,$caps" -- "$AGENT" --syncdev sync0 \
	--pin-dir "$PIN_B" --ctl "$NL_TMP/b.sock" --attach in0 --hostid 0x0b0b0b0b \
	>"$NL_TMP/b.log" 2>&1 &
B_PID=$!
nl_on_cleanup "kill $B_PID; wait $B_PID"
nl_wait_until 10 test -S "$NL_TMP/b.sock" || nl_die "agent B did not start: $(tail -5 "$NL_TMP/b.log")"
capbnd() { sed -n 's/^CapBnd:\s*//p' "/proc/$1/status"; }
if [ -n "$caps" ] && [ "$(capbnd "$B_PID")" != "$(capbnd $$)" ] &&
	nl_wait_until 10 nl_file_has "$NL_TMP/b.log" "attached XDP and tc egress to in0" &&
	ip -n "$FWB" link show pfsync0 >/dev/null 2>&1 &&
	"$CTL" --ctl "$NL_TMP/b.sock" flush | nl_has "^flushed" &&
	! grep -qi "error" "$NL_TMP/b.log"; then
	nl_pass "agent runs with the unit's capabilities only (${caps//+/})"
else
	nl_fail "agent with the unit's capabilities ($caps): $(grep -i error "$NL_TMP/b.log" | head -3)"
fi

nl_notify_listen "$NL_TMP/notify.sock" "$NL_TMP/notify.log"

printf 'pass in proto tcp to any port 22\n' >"$NL_TMP/rules.conf"
cat >"$NL_TMP/a.conf" <<CONF
# firewall A, as /etc/pfsync/pfsync.conf would say it
syncdev sync0
pin-dir "$PIN_A"
ctl $NL_TMP/a.sock   # control socket
pfsync-if none
hostid 0x0a0b0c0d
maxupd 32
rules $NL_TMP/rules.conf
defer no
CONF
# no --obj: the agent must find $DEST/usr/local/lib/bpf/pfsync_xdp.o itself
NOTIFY_SOCKET=$NL_TMP/notify.sock nsenter --net="/run/netns/$FWA" -- "$AGENT" \
	-f "$NL_TMP/a.conf" --maxupd 7 -v >"$NL_TMP/a.log" 2>&1 &
A_PID=$!
nl_on_cleanup "kill $A_PID; wait $A_PID"
nl_wait_until 10 test -S "$NL_TMP/a.sock" || nl_die "agent A did not start: $(tail -5 "$NL_TMP/a.log")"

grep -q "BPF object $SBIN/../lib/bpf/pfsync_xdp.o" "$NL_TMP/a.log" &&
	nl_pass "installed agent found the installed BPF object" ||
	nl_fail "BPF object: $(grep -i "object" "$NL_TMP/a.log")"
# pfsync_bulk.o beside it: batch import and fetch, else one bpf() call per state
! grep -q "no batch import" "$NL_TMP/a.log" &&
	nl_pass "installed agent loaded the batch programs" ||
	nl_fail "batch programs: $(grep "batch import" "$NL_TMP/a.log")"

if nl_wait_until 30 nl_file_has "$NL_TMP/notify.log" "READY=1"; then
	grep "READY=1" "$NL_TMP/notify.log" | head -1 | nl_has "STATUS=bulk update done" &&
		nl_pass "READY=1 once the bulk update is done" ||
		nl_fail "READY=1 without bulk done: $(cat "$NL_TMP/notify.log")"
	ctl_a status | nl_has "^bulk: done" && nl_pass "status says bulk: done at READY" ||
		nl_fail "status at READY: $(ctl_a status | grep bulk)"
else
	nl_fail "no READY=1: $(cat "$NL_TMP/notify.log") / $(tail -5 "$NL_TMP/a.log")"
fi
[ "$(grep -c "READY=1" "$NL_TMP/notify.log")" -eq 1 ] && nl_pass "READY=1 sent once" ||
	nl_fail "READY=1 count"

status=$(ctl_a status)
grep -q "hostid: 0x0a0b0c0d" <<<"$status" && nl_pass "config file sets hostid" ||
	nl_fail "hostid from config: $status"
grep -q "maxupd: 7 " <<<"$status" && nl_pass "command line overrides the config file" ||
	nl_fail "maxupd override: $status"

# ---- rules file: loaded at start, reloaded on SIGHUP --------------------------------
rules_count() { [ "$(ctl_a rules | grep -c .)" -eq "$1" ]; }
rules_count 1 && ctl_a rules | nl_has "port 22" && nl_pass "rules file loaded at start" ||
	nl_fail "rules at start: $(ctl_a rules)"
printf 'block in all\npass in proto tcp to any port 22\npass out proto udp\n' >"$NL_TMP/rules.conf"
kill -HUP "$A_PID"
nl_wait_until 10 rules_count 3 && nl_pass "SIGHUP reloads the rules file" ||
	nl_fail "SIGHUP reload: $(ctl_a rules)"
printf 'pass in proto tcp\nthis is not a rule\n' >"$NL_TMP/rules.conf"
kill -HUP "$A_PID"
if nl_wait_until 10 nl_file_has "$NL_TMP/a.log" "rules.conf:2:"; then
	rules_count 3 && kill -0 "$A_PID" && nl_pass "bad rules file on SIGHUP: error with line, old rules stay" ||
		nl_fail "bad rules file changed the rules: $(ctl_a rules)"
else
	nl_fail "bad rules file not reported: $(tail -3 "$NL_TMP/a.log")"
fi

# ---- Prometheus ----------------------------------------------------------------------
# Checks the text exposition format; prints the samples as NAME{LABELS} VALUE
cat >"$NL_TMP/promcheck.py" <<'PY'
import re, sys
NAME = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*$')
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"\s*(,|$)')
def labels(text):
    out, pos = [], 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        if not m:
            raise ValueError('bad label syntax: ' + text)
        out.append((m.group(1), m.group(2)))
        pos = m.end()
    names = [n for n, _ in out]
    if len(set(names)) != len(names) or any(n.startswith('__') for n in names):
        raise ValueError('duplicate or reserved label: ' + text)
    return tuple(sorted(out))
def check(text):
    types, helps, seen, done, current, samples = {}, set(), set(), set(), None, []
    if not text.endswith('\n'):
        raise ValueError('no final newline')
    for line in text.splitlines():
        if line.startswith('#'):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ('HELP', 'TYPE'):
                name = parts[2]
                if not NAME.match(name):
                    raise ValueError('bad metric name: ' + line)
                if parts[1] == 'TYPE':
                    if name in types or name in done:
                        raise ValueError('second TYPE for ' + name)
                    if len(parts) != 4 or parts[3] not in ('counter', 'gauge', 'untyped', 'summary', 'histogram'):
                        raise ValueError('bad TYPE line: ' + line)
                    types[name] = parts[3]
                else:
                    if name in helps:
                        raise ValueError('second HELP for ' + name)
                    helps.add(name)
                if current != name:
                    if current:
                        done.add(current)
                    current = name
            continue
        m = re.match(r'([^{\s]+)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$', line)
        if not m:
            raise ValueError('bad sample line: ' + line)
        name, lab, value = m.group(1), m.group(2) or '', m.group(3)
        if not NAME.match(name):
            raise ValueError('bad metric name: ' + name)
        if name not in types:
            raise ValueError('sample before its TYPE: ' + line)
        if name != current:
            raise ValueError('family %s not contiguous' % name)
        if types[name] == 'counter' and not name.endswith('_total'):
            raise ValueError('counter without _total: ' + name)
        float(value)
        key = (name, labels(lab))
        if key in seen:
            raise ValueError('duplicate sample: ' + line)
        seen.add(key)
        samples.append('%s{%s} %s' % (name, ','.join('%s="%s"' % kv for kv in key[1]), value))
    for name in types:
        if not any(s.startswith(name + '{') for s in samples):
            raise ValueError('TYPE without samples: ' + name)
    return samples
if sys.argv[1] == '--self-test':
    good = '# HELP a_total x\n# TYPE a_total counter\na_total{k="v"} 1\n'
    check(good)
    bad = [good.replace('counter', 'gauge').replace('a_total', 'a') + 'b 1\n',        # b untyped
           '# TYPE a counter\na 1\n',                                                 # no _total
           good + 'a_total{k="v"} 2\n',                                               # duplicate
           '# TYPE 1a gauge\n1a 1\n',                                                 # bad name
           '# TYPE a gauge\na{k=v} 1\n',                                              # unquoted
           '# TYPE a gauge\na{k="v",k="w"} 1\n',                                      # label twice
           '# TYPE a gauge\n# TYPE b gauge\nb 1\na 1\n',                              # a empty, late
           '# TYPE a gauge\na 1\n# TYPE a gauge\na{x="1"} 1\n',                       # second TYPE
           '# TYPE a gauge\na one\n',                                                 # bad value
           '# TYPE a gauge\na 1',                                                     # no newline
           ]
    for b in bad:
        try:
            check(b)
        except ValueError:
            continue
        sys.exit('accepted bad input: %r' % b)
    sys.exit(0)
for s in check(open(sys.argv[1]).read()):
    print(s)
PY
python3 "$NL_TMP/promcheck.py" --self-test && nl_pass "prometheus checker rejects broken input" ||
	nl_fail "prometheus checker self-test"
ctl_a stats --prometheus >"$NL_TMP/prom.txt" 2>"$NL_TMP/prom.err" || nl_fail "stats --prometheus failed"
if python3 "$NL_TMP/promcheck.py" "$NL_TMP/prom.txt" >"$NL_TMP/samples.txt" 2>"$NL_TMP/check.err"; then
	nl_pass "stats --prometheus is valid exposition format ($(wc -l <"$NL_TMP/samples.txt") samples)"
else
	nl_fail "stats --prometheus format: $(cat "$NL_TMP/check.err")"
fi
has_sample() { grep -Eq "^$1$" "$NL_TMP/samples.txt"; }
has_sample 'pfsync_agent_up\{\} 1' && has_sample 'pfsync_bulk_done\{\} 1' &&
	has_sample 'pfsync_datapath_states\{\} [0-9]+' &&
	has_sample 'pfsync_datapath_packets_seen_total\{\} [0-9]+' &&
	has_sample 'pfsync_actions_total\{action="upd_req",direction="out"\} [1-9][0-9]*' &&
	has_sample 'pfsync_actions_total\{action="bus",direction="in"\} [1-9][0-9]*' &&
	has_sample 'pfsync_agent_info\{hostid="0a0b0c0d",syncdev="sync0"\} 1' &&
	has_sample 'pfsync_ipackets_total\{\} [1-9][0-9]*' &&
	nl_pass "prometheus: agent up, bulk done, per-action in/out" ||
	nl_fail "prometheus samples: $(tr '\n' ';' <"$NL_TMP/samples.txt")"
"$CTL" --pin-dir "$PIN_A" --ctl "$NL_TMP/nobody.sock" stats --prometheus >"$NL_TMP/prom0.txt" 2>/dev/null
python3 "$NL_TMP/promcheck.py" "$NL_TMP/prom0.txt" >"$NL_TMP/samples0.txt" 2>&1 &&
	grep -qx 'pfsync_agent_up{} 0' "$NL_TMP/samples0.txt" &&
	! grep -q "pfsync_actions_total" "$NL_TMP/samples0.txt" &&
	nl_pass "prometheus without an agent: agent_up 0" || nl_fail "prometheus without agent"

# ---- peer-caused log lines are rate-limited ----------------------------------------------
clr_in() {
	ctl_a stats --prometheus | nl_has "^pfsync_actions_total{action=\"clr\",direction=\"in\"} $1\$"
}
nsenter --net="/run/netns/$FWB" -- python3 - <<'PY'
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 240)
s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
for i in range(60):
    clr = struct.pack('>16sI', b'', 0x7e000000 + i)           # CLR of a creator nobody has
    body = struct.pack('>BBH', 0, len(clr) // 4, 1) + clr
    s.sendto(struct.pack('>BBH16x', 6, 0, 20 + len(body)) + body, ('10.211.9.1', 0))
PY
if nl_wait_until 15 clr_in 60; then
	n=$(grep -c "peer cleared creatorid" "$NL_TMP/a.log")
	[ "$n" -ge 1 ] && [ "$n" -le 5 ] && nl_pass "60 forged CLR, $n log lines (rate-limited)" ||
		nl_fail "60 forged CLR gave $n log lines"
else
	nl_fail "forged CLR not counted: $(ctl_a stats | grep -i "clr")"
fi

# ---- ucarp up script gated on bulk done --------------------------------------------------
EX=$DEST/usr/local/share/doc/pfsync-xdp/examples
printf '#!/bin/sh\nexec "%s" --pin-dir "%s" --ctl "%s" "$@"\n' "$CTL" "$PIN_A" "$NL_TMP/a.sock" \
	>"$NL_TMP/pfsyncctl-a"
# a status source the test controls, for a bulk update that is not done:
# prints $NL_TMP/stub.status, counts its calls in $NL_TMP/stub.calls
printf '#!/bin/sh\necho >>"%s"\ncat "%s"\n' "$NL_TMP/stub.calls" "$NL_TMP/stub.status" \
	>"$NL_TMP/pfsyncctl-stub"
chmod +x "$NL_TMP/pfsyncctl-a" "$NL_TMP/pfsyncctl-stub"
vip_up() { ip -n "$FWA" -4 -o addr show dev sync0 | nl_has " 10.211.9.100/32"; }

# ucarp_up CASE PFSYNCCTL WAIT: runs the installed ucarp-up.sh for
# 10.211.9.100 in the background (output in $NL_TMP/ucarp-CASE.out, PID in
# UP_PID) and returns once it exited (UP_RC), or fails after 30 s. UP_EARLY
# is 1 when the address was up while the script had not yet said why it
# takes it (it says so before adding the address, so no race).
ucarp_up()
{
	UP_OUT=$NL_TMP/ucarp-$1.out UP_EARLY=0 UP_RC=-1
	PFSYNCCTL=$2 PFSYNC_WAIT=$3 nsenter --net="/run/netns/$FWA" -- \
		"$EX/ucarp-up.sh" sync0 10.211.9.100 >"$UP_OUT" 2>&1 &
	UP_PID=$!
	nl_on_cleanup "kill $UP_PID"
	ucarp_step()
	{
		if vip_up && ! grep "^ucarp-up: " "$UP_OUT" >/dev/null; then UP_EARLY=1; fi
		nl_pid_exited "$UP_PID"
	}
	nl_wait_until 30 ucarp_step || return 1
	wait "$UP_PID"
	UP_RC=$?
}
ucarp_down() { nsenter --net="/run/netns/$FWA" -- "$EX/ucarp-down.sh" sync0 10.211.9.100; }
ucarp_said() { grep -x "ucarp-up: $1" "$UP_OUT" >/dev/null; }
ucarp_report() { echo "exit $UP_RC, early $UP_EARLY: $(tr '\n' ' ' <"$UP_OUT")"; }

# bulk done (A's, the real agent): the address at once, without waiting
ucarp_up done "$NL_TMP/pfsyncctl-a" 30
[ "$UP_RC" = 0 ] && [ "$UP_EARLY" = 0 ] && vip_up &&
	ucarp_said "pfsync bulk update done after 0 s; taking 10.211.9.100 on sync0" &&
	nl_pass "ucarp-up.sh takes the address at once when bulk is done (exit 0)" ||
	nl_fail "ucarp-up.sh, bulk done: $(ucarp_report); $("$NL_TMP/pfsyncctl-a" status 2>&1 | grep '^bulk')"
ucarp_down
# bulk not done and never done: nothing before the wait ends, then the address anyway
echo "bulk: in progress" >"$NL_TMP/stub.status"
: >"$NL_TMP/stub.calls"
ucarp_down
ucarp_up notdone "$NL_TMP/pfsyncctl-stub" 2
[ "$UP_RC" = 0 ] && [ "$UP_EARLY" = 0 ] && vip_up && [ "$(wc -l <"$NL_TMP/stub.calls")" -ge 3 ] &&
	ucarp_said "pfsync bulk update not done after 2 s (in progress); taking 10.211.9.100 on sync0 anyway" &&
	nl_pass "ucarp-up.sh, bulk not done: no address until the 2-s wait ended, then taken and said so" ||
	nl_fail "ucarp-up.sh, bulk not done: $(ucarp_report); $(wc -l <"$NL_TMP/stub.calls") status calls"
ucarp_down
# bulk done while the script waits: the address only after that (an address
# before the script said "done" sets UP_EARLY)
echo "bulk: requested" >"$NL_TMP/stub.status"
: >"$NL_TMP/stub.calls"
flip_done()
{
	[ "$(wc -l <"$NL_TMP/stub.calls")" -ge 2 ] || return 1
	echo "bulk: done" >"$NL_TMP/stub.status"
}
( nl_wait_until 20 flip_done ) &
flipper=$!
nl_on_cleanup "kill $flipper"
ucarp_up later "$NL_TMP/pfsyncctl-stub" 60
wait "$flipper" || nl_fail "ucarp-up.sh did not ask for the status twice"
[ "$UP_RC" = 0 ] && [ "$UP_EARLY" = 0 ] && vip_up && grep -x \
	"ucarp-up: pfsync bulk update done after [1-9][0-9]* s; taking 10.211.9.100 on sync0" "$UP_OUT" >/dev/null &&
	nl_pass "ucarp-up.sh waits for a bulk update in progress and takes the address once it is done" ||
	nl_fail "ucarp-up.sh, bulk done while waiting: $(ucarp_report)"
ucarp_down
# the peer never answered: no reason to wait
echo "bulk: failed" >"$NL_TMP/stub.status"
ucarp_up failed "$NL_TMP/pfsyncctl-stub" 60
[ "$UP_RC" = 0 ] && vip_up &&
	ucarp_said "pfsync bulk update failed (no peer answered) after 0 s; taking 10.211.9.100 on sync0" &&
	nl_pass "ucarp-up.sh takes the address at once when the bulk update failed" ||
	nl_fail "ucarp-up.sh, bulk failed: $(ucarp_report)"
nsenter --net="/run/netns/$FWA" -- "$EX/ucarp-down.sh" sync0 10.211.9.100
! ip -n "$FWA" addr show dev sync0 | nl_has "10.211.9.100" &&
	nl_pass "ucarp-down.sh gives it back" || nl_fail "ucarp-down.sh"

# keepalived_demotion: the installed examples/keepalived.conf itself on two
# routers (K1 as shipped, K2 as its comment says for the backup: state
# BACKUP, priority 100), their eth0 and eth1 linked. Each one's pfsyncctl is
# a stub whose status the test sets. While K1's bulk update is not done its
# priority drops below K2's and K2 holds both addresses; once done, K1 takes
# them over (the sync group moves both together).
keepalived_demotion()
{
	local n ns conf
	for n in 1 2; do
		ns="pfk$n-$NL_ID"
		nl_netns_add "$ns"
		printf '#!/bin/sh\ncat "%s"\n' "$NL_TMP/k$n.status" >"$NL_TMP/pfsyncctl-k$n"
		chmod +x "$NL_TMP/pfsyncctl-k$n"
	done
	nl_veth "pfk1-$NL_ID" eth0 "pfk2-$NL_ID" eth0
	nl_veth "pfk1-$NL_ID" eth1 "pfk2-$NL_ID" eth1
	for n in 1 2; do
		ns="pfk$n-$NL_ID"
		nl_addr "$ns" eth0 "192.0.2.1$n/24"
		nl_addr "$ns" eth1 "198.51.100.1$n/24"
		conf=$NL_TMP/keepalived-k$n.conf
		sed "s|/usr/local/sbin/pfsyncctl|$NL_TMP/pfsyncctl-k$n|" "$EX/keepalived.conf" >"$conf"
		[ "$n" = 2 ] && sed -i -e 's/state MASTER/state BACKUP/' -e 's/priority 150/priority 100/' \
			-e 's/router_id fw1/router_id fw2/' "$conf"
	done
	grep "pfsyncctl-k1 status" "$NL_TMP/keepalived-k1.conf" >/dev/null ||
		nl_fail "the example's track script does not run pfsyncctl status"
	echo "bulk: in progress" >"$NL_TMP/k1.status"
	echo "bulk: done" >"$NL_TMP/k2.status"
	for n in 1 2; do
		ip netns exec "pfk$n-$NL_ID" keepalived -n -l -D -f "$NL_TMP/keepalived-k$n.conf" \
			-p "$NL_TMP/ka-k$n.pid" -r "$NL_TMP/vrrp-k$n.pid" >"$NL_TMP/keepalived-k$n.log" 2>&1 &
		nl_on_cleanup "kill $!; wait $!"
	done
	vips_on() # N: router N holds both addresses, the other none
	{
		local other=$((3 - $1))
		ip -n "pfk$1-$NL_ID" -4 -o addr show | nl_has " 192.0.2.1/24 " &&
			ip -n "pfk$1-$NL_ID" -4 -o addr show | nl_has " 198.51.100.1/24 " &&
			! ip -n "pfk$other-$NL_ID" -4 -o addr show | nl_has " 192.0.2.1/24 \| 198.51.100.1/24 "
	}
	nl_wait_until 20 vips_on 2 &&
		nl_pass "keepalived.conf: K1's bulk update not done, the backup K2 holds both addresses" ||
		nl_fail "keepalived.conf, K1 not done: K1 $(ip -n "pfk1-$NL_ID" -4 -o addr show | awk '{print $4}' | tr '\n' ' '), K2 $(ip -n "pfk2-$NL_ID" -4 -o addr show | awk '{print $4}' | tr '\n' ' ')"
	echo "bulk: done" >"$NL_TMP/k1.status"
	nl_wait_until 20 vips_on 1 &&
		nl_pass "keepalived.conf: once K1's bulk update is done K1 takes both addresses" ||
		nl_fail "keepalived.conf, K1 done: K1 $(ip -n "pfk1-$NL_ID" -4 -o addr show | awk '{print $4}' | tr '\n' ' '), K2 $(ip -n "pfk2-$NL_ID" -4 -o addr show | awk '{print $4}' | tr '\n' ' ')"
}

if command -v keepalived >/dev/null; then
	KA="pfik-$NL_ID"
	nl_netns_add "$KA"
	ip -n "$KA" link add eth0 type veth peer name eth1 && ip -n "$KA" link set eth0 up &&
		ip -n "$KA" link set eth1 up
	nsenter --net="/run/netns/$KA" -- keepalived -t -f "$EX/keepalived.conf" >"$NL_TMP/ka.txt" 2>&1 &&
		nl_pass "keepalived -t accepts the example" || nl_fail "keepalived -t: $(cat "$NL_TMP/ka.txt")"
	keepalived_demotion
else
	nl_skip "keepalived -t on the example" "keepalived not installed"
fi

# ---- stop: STOPPING=1, then uninstall ----------------------------------------------------
kill "$B_PID"
wait "$B_PID"
rc=$?
[ $rc -eq 0 ] || nl_fail "agent B exited with status $rc on SIGTERM ($(nl_exit_means $rc))"
kill "$A_PID"
wait "$A_PID"
rc=$?
# the listener writes what it got in its own time: wait for it, not the agent
[ $rc -eq 0 ] && nl_wait_until 10 nl_file_has "$NL_TMP/notify.log" "STOPPING=1" &&
	nl_pass "clean stop, STOPPING=1" ||
	nl_fail "stop (rc $rc): $(tail -2 "$NL_TMP/notify.log")"

make -s -C "$PWD" BUILD="$BUILD" DESTDIR="$DEST" uninstall >"$NL_TMP/uninstall.log" 2>&1 ||
	nl_fail "make uninstall: $(cat "$NL_TMP/uninstall.log")"
left=$(find "$DEST" -type f)
[ -z "$left" ] && nl_pass "make uninstall removes every file" || nl_fail "left after uninstall: $left"

nl_finish
