#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Helper of bench/sync.sh: conntrackd's side of the measurements.

conntrackd answers on its UNIX socket: the client writes the request code as
a native int and reads text until EOF. Code 21 is `conntrackd -s` (general
statistics, which include the entries in the internal and external caches);
one exchange costs about 0.2 ms, far cheaper than forking `conntrackd -s`.

  count SOCK [internal|external]       entries in that cache (default external)
  poll SOCK TARGET TIMEOUT_S OUT [STILL_S]
                                        sample (CLOCK_MONOTONIC, external count)
                                        every ~1 ms until TARGET, the timeout, or
                                        (STILL_S given) a count unchanged that
                                        long; OUT.ready appears after the first
  wait SOCK TARGET TIMEOUT_S START      print elapsed=seconds from START (a
                                        CLOCK_MONOTONIC time) until TARGET
  lag TIMES POLL BASE                   per-flow lag: flow j (sent at TIMES[j])
                                        counts as present at the first sample
                                        whose count reaches BASE+j+1 (the
                                        external cache fills in arrival order)
  burst TIMES POLL BASE                 applied rate: flows / (first send ->
                                        sample where all are present); when some
                                        never arrived, the flows that did / (first
                                        send -> the sample where the last did),
                                        and missing= says how many
All times are CLOCK_MONOTONIC seconds (time.monotonic()), like sync_driver's.
"""
import array
import bisect
import re
import socket
import struct
import sys
import time

STATS = 21
POLL_INTERVAL_S = 0.001


def stats_text(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(struct.pack("=i", STATS))
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks).decode(errors="replace")


def cache_count(path, which="external"):
    """Active entries of conntrackd's internal or external cache."""
    text = stats_text(path)
    m = re.search(r"cache %s:\s*\n\s*current active connections:\s*(\d+)" % which, text)
    if not m:
        raise RuntimeError("no 'cache %s' figure in conntrackd -s output:\n%s" % (which, text))
    return int(m.group(1))


def cmd_count(args):
    print(cache_count(args[0], args[1] if len(args) > 1 else "external"))
    return 0


def cmd_poll(args):
    sock, target, timeout, out = args[0], int(args[1]), float(args[2]), args[3]
    still = float(args[4]) if len(args) > 4 else 0.0
    deadline = time.monotonic() + timeout
    samples = array.array("d")
    count = -1
    ready = False
    changed_at, last = time.monotonic(), -1
    while True:
        count = cache_count(sock)
        t = time.monotonic()
        samples.extend((t, float(count)))
        if not ready:
            # the caller starts the load only once sampling has begun
            open(out + ".ready", "w").close()
            ready = True
        if count != last:
            changed_at, last = t, count
        if count >= target or t > deadline or (still and t - changed_at > still):
            break
        time.sleep(POLL_INTERVAL_S)
    with open(out, "wb") as f:
        samples.tofile(f)
    print("last_count=%d" % count)
    return 0 if count >= target else 1


def cmd_wait(args):
    sock, target, timeout, start = args[0], int(args[1]), float(args[2]), float(args[3])
    deadline = time.monotonic() + timeout
    while True:
        count = cache_count(sock)
        t = time.monotonic()
        if count >= target:
            print("elapsed=%.6f\ncount=%d" % (t - start, count))
            return 0
        if t > deadline:
            print("elapsed=-1\ncount=%d" % count)
            return 1
        time.sleep(POLL_INTERVAL_S)


def load_doubles(path):
    a = array.array("d")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    return a


def load_poll(path):
    raw = load_doubles(path)
    return list(raw[0::2]), [int(c) for c in raw[1::2]]


def percentile(sorted_vals, p):
    if not sorted_vals:
        return -1.0
    idx = int(p * (len(sorted_vals) - 1) + 0.5)
    return sorted_vals[min(idx, len(sorted_vals) - 1)]


def cmd_lag(args):
    sent = load_doubles(args[0])
    times, counts = load_poll(args[1])
    base = int(args[2])
    lags, lows = [], []
    missing = 0
    for j, t_sent in enumerate(sent):
        k = bisect.bisect_left(counts, base + j + 1)
        if k == len(counts):
            missing += 1
            continue
        lags.append(max(0.0, times[k] - t_sent) * 1e3)
        # the flow arrived after the previous poll: a lower bound, which
        # tells a slow peer from a poller that was not scheduled
        lows.append(max(0.0, times[k - 1] - t_sent) * 1e3 if k > 0 else 0.0)
    lags.sort()
    lows.sort()
    gaps = [b - a for a, b in zip(times, times[1:])]
    print("samples=%d\nsamples_found=%d" % (len(sent), len(lags)))
    print("poll_gap_max_ms=%.3f" % (max(gaps) * 1e3 if gaps else -1.0))
    print("lag_p50_ms=%.3f\nlag_p99_ms=%.3f\nlag_max_ms=%.3f" % (
        percentile(lags, 0.50), percentile(lags, 0.99), lags[-1] if lags else -1.0))
    print("lag_lo_p50_ms=%.3f\nlag_lo_p99_ms=%.3f\nlag_lo_max_ms=%.3f" % (
        percentile(lows, 0.50), percentile(lows, 0.99), lows[-1] if lows else -1.0))
    return 0 if missing == 0 else 1


def cmd_burst(args):
    sent = load_doubles(args[0])
    times, counts = load_poll(args[1])
    base = int(args[2])
    n = len(sent)
    span = sent[-1] - sent[0] if n > 1 else 0.0
    print("count=%d\noffered_per_s=%.0f" % (n, (n - 1) / span if span > 0 else 0))
    k = bisect.bisect_left(counts, base + n)
    if k == len(counts):
        # some never arrived: rate of those that did, up to the last arrival
        reached = max(counts) if counts else base
        k = bisect.bisect_left(counts, reached)
        got = reached - base
        print("missing=%d" % (n - got))
        if got <= 0 or times[k] <= sent[0]:
            print("complete_s=-1\napplied_per_s=-1")
            return 1
        complete = times[k] - sent[0]
        print("complete_s=%.6f\napplied_per_s=%.0f" % (complete, got / complete))
        return 1
    complete = times[k] - sent[0]
    print("missing=0\ncomplete_s=%.6f\napplied_per_s=%.0f" % (complete, n / complete))
    return 0


COMMANDS = {"count": (cmd_count, 1), "poll": (cmd_poll, 4), "wait": (cmd_wait, 4),
            "lag": (cmd_lag, 3), "burst": (cmd_burst, 3)}


def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS or len(argv) - 2 < COMMANDS[argv[1]][1]:
        sys.stderr.write(__doc__)
        return 2
    fn = COMMANDS[argv[1]][0]
    try:
        return fn(argv[2:])
    except (OSError, RuntimeError) as e:
        sys.stderr.write("sync_ctdpoll: %s: %s\n" % (argv[1], e))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
