#!/usr/bin/env python3
"""UDP sink for tests: ADDR PORT FILE. Writes "listening", then each
datagram's payload, one line each, to FILE (line-buffered, so a test can
poll the file)."""
import socket
import sys

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
out = open(sys.argv[3], "a", buffering=1)
out.write("listening\n")
while True:
    out.write(s.recv(100).decode(errors="replace") + "\n")
