#!/usr/bin/env python3
"""Memory per idle connection: slotcore (one shard) next to a real redis-server.

    python3 bench/connections.py                     # 5000 connections, target/dist/slotcore
    N=2000 python3 bench/connections.py
    SLOTCORE_BIN=/tmp/old/slotcore python3 bench/connections.py

Each server is started fresh on a loopback port, `N` clients connect and send one PING each
(as a client library's first command), and after a second `used_memory` (INFO memory) and the
process's RSS (/proc/<pid>/status) are read again. The growth divided by `N` is the cost of one
idle connection. Both servers get `--maxclients 10000`; this script raises its own and their
open-file limits.
"""

import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

N = int(os.environ.get("N", "5000"))
BIN = os.environ.get("SLOTCORE_BIN", "target/dist/slotcore")
RD_PORT = int(os.environ.get("RD_PORT", "7821"))
SC_PORT = int(os.environ.get("SC_PORT", "7822"))
LIMIT = N + 1000


def raise_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


def used_memory(port):
    out = subprocess.run(["redis-cli", "-p", str(port), "info", "memory"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    raise RuntimeError(f"no used_memory from port {port}")


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def measure(name, argv, port):
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=raise_limit)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(0.3)
        used0, rss0 = used_memory(port), rss(proc.pid)
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(N)]
        for s in socks:
            s.sendall(b"PING\r\n")
        for s in socks:
            s.recv(16)
        time.sleep(1.0)
        used1, rss1 = used_memory(port), rss(proc.pid)
        for s in socks:
            s.close()
        return (used1 - used0) / N, (rss1 - rss0) / N
    finally:
        proc.kill()
        proc.wait()


def main():
    raise_limit()
    with tempfile.TemporaryDirectory() as work:
        rd = measure("redis-server", ["redis-server", "--port", str(RD_PORT), "--save", "", "--maxclients", "10000", "--dir", work], RD_PORT)
        sc = measure(
            "slotcore",
            [BIN, "--port", str(SC_PORT), "--save", "", "--maxclients", "10000", "--shards", "1", "--dir", work],
            SC_PORT,
        )
    print(f"{N} idle connections (one PING each), bytes per connection")
    print("| server | used_memory | RSS |")
    print("|---|---|---|")
    print(f"| slotcore | {sc[0]:,.0f} | {sc[1]:,.0f} |")
    print(f"| redis-server | {rd[0]:,.0f} | {rd[1]:,.0f} |")
    print(f"| ratio | {sc[0] / rd[0]:.2f} | {sc[1] / rd[1]:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
