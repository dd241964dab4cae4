#!/usr/bin/env python3
"""Long-lived TCP streams for the demo and the failover tests.

server ADDR PORT                 echo server (every byte sent back)
client ADDR PORT N SECONDS FILE [INTERVAL]
                                 N connections, each sending a counter pattern and checking that the
                                 echo is the same pattern; every INTERVAL seconds (default 0.1) one
                                 line "bytes b1 ... bN <monotonic time>" goes to FILE; "open N" once
                                 all are connected; "error I TEXT" when a stream breaks or its data
                                 is corrupted.
progressed FILE MARKER N         exit 0 when every stream received data after line MARKER, no errors
summary FILE MARKER [kv]         longest stall per stream after MARKER (p50 / p99 / max); a stream
                                 still stalled at the last line counts up to that line. With "kv":
                                 key=value lines (streams, broken, survived = no error and data in
                                 the last second of lines, stall_p50_ms, stall_p99_ms, stall_max_ms);
                                 with "stalls": each stream's longest stall, in ms, one a line (to
                                 pool the streams of several runs)
"""
import selectors
import socket
import sys
import time

CHUNK = 512


def pattern(offset, length):
    return bytes((offset + i) % 251 for i in range(length))


def serve(addr, port):
    sel = selectors.DefaultSelector()
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((addr, int(port)))
    lsock.listen(1024)
    sel.register(lsock, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            if key.fileobj is lsock:
                conn, _ = lsock.accept()
                sel.register(conn, selectors.EVENT_READ)
                continue
            conn = key.fileobj
            try:
                data = conn.recv(65536)
            except OSError:
                data = b""
            if not data:
                sel.unregister(conn)
                conn.close()
                continue
            conn.setblocking(True)
            conn.sendall(data)
            conn.setblocking(False)


def client(addr, port, count, seconds, status_path, interval="0.1"):
    interval = float(interval)
    status = open(status_path, "w", buffering=1)
    socks = []
    for _ in range(int(count)):
        s = socket.create_connection((addr, int(port)), timeout=10)
        s.setblocking(False)
        socks.append(s)
    status.write("open %d\n" % len(socks))
    sent = [0] * len(socks)
    recvd = [0] * len(socks)
    broken = [False] * len(socks)
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        sel.register(s, selectors.EVENT_READ, i)
    end = time.monotonic() + float(seconds)
    next_report = 0.0
    while time.monotonic() < end:
        for i, s in enumerate(socks):
            # keep a bounded amount in flight so a stalled path does not fill buffers
            if not broken[i] and sent[i] - recvd[i] < 4 * CHUNK:
                try:
                    sent[i] += s.send(pattern(sent[i], CHUNK))
                except BlockingIOError:
                    pass
                except OSError as e:
                    broken[i] = True
                    status.write("error %d send %s\n" % (i, e))
        for key, _ in sel.select(timeout=0.01):
            i = key.data
            try:
                data = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                data = None
                err = str(e)
            if not data:
                if not broken[i]:
                    broken[i] = True
                    status.write("error %d recv %s\n" % (i, "closed" if data == b"" else err))
                sel.unregister(key.fileobj)
                continue
            if data != pattern(recvd[i], len(data)):
                broken[i] = True
                status.write("error %d corrupted data at %d\n" % (i, recvd[i]))
            recvd[i] += len(data)
        now = time.monotonic()
        if now >= next_report:
            status.write("bytes %s %.3f\n" % (" ".join(map(str, recvd)), now))
            next_report = now + interval
    for s in socks:
        s.close()


def rows_after(path, marker):
    lines = open(path).read().splitlines()
    errors = [l for l in lines if l.startswith("error")]
    rows = []
    for l in lines[int(marker):]:
        if l.startswith("bytes "):
            fields = l.split()
            rows.append(([int(x) for x in fields[1:-1]], float(fields[-1])))
    return rows, errors


def progressed(path, marker, count):
    rows, errors = rows_after(path, marker)
    if errors or len(rows) < 2:
        return 1
    first, last = rows[0][0], rows[-1][0]
    return 0 if len(last) == int(count) and all(b > a for a, b in zip(first, last)) else 1


def percentile(sorted_values, fraction):
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, -(-len(sorted_values) * fraction // 1))
    return sorted_values[int(rank) - 1]


def longest_stalls(rows):
    """Per stream: the longest time between two lines that showed new data,
    or from the last new data to the last line (a stream that never moves
    again counts its whole stall)."""
    stalls = []
    for i in range(len(rows[0][0]) if rows else 0):
        longest, since = 0.0, rows[0][1]
        for (prev, _), (cur, t) in zip(rows, rows[1:]):
            if cur[i] > prev[i]:
                longest = max(longest, t - since)
                since = t
        stalls.append(max(longest, rows[-1][1] - since))
    return stalls


def survivors(rows, errors):
    """Streams without an error that received data in the last second of lines."""
    broken = {int(e.split()[1]) for e in errors}
    if not rows:
        return 0
    end = rows[-1][1]
    ref = next((r for r in reversed(rows) if r[1] <= end - 1.0), rows[0])[0]
    return sum(1 for i, b in enumerate(rows[-1][0]) if i not in broken and b > ref[i])


def summary(path, marker, mode=""):
    rows, errors = rows_after(path, marker)
    stalls = sorted(longest_stalls(rows))
    if mode == "kv":
        print("streams=%d" % len(stalls))
        print("broken=%d" % len({e.split()[1] for e in errors}))
        print("survived=%d" % survivors(rows, errors))
        for name, frac in (("p50", 0.5), ("p99", 0.99), ("max", 1.0)):
            value = 1000 * percentile(stalls, frac) if stalls else -1
            print("stall_%s_ms=%.0f" % (name, value))
    elif mode == "stalls":
        for stall in stalls:
            print("%.0f" % (1000 * stall))
    elif stalls:
        print("streams: %d, broken: %d, longest stall per stream: p50 %.0f ms, p99 %.0f ms, max %.0f ms"
              % (len(stalls), len(errors), 1000 * percentile(stalls, 0.5),
                 1000 * percentile(stalls, 0.99), 1000 * stalls[-1]))
    return 0 if not errors else 1


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "server":
        serve(*args)
    elif cmd == "client":
        client(*args)
    elif cmd == "progressed":
        sys.exit(progressed(*args))
    elif cmd == "summary":
        sys.exit(summary(*args))
    else:
        sys.exit("unknown command " + cmd)
