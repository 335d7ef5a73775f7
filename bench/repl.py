#!/usr/bin/env python3
"""Replication, side by side: slotcore as master vs redis-server as master, a real
redis-server replica in both cases.

  python3 bench/repl.py                 # 1M keys, 2 slotcore shards
  KEYS=200000 SHARDS=1 python3 bench/repl.py
  DISKLESS=no PORT_BASE=8440 python3 bench/repl.py   # disk target, other ports

For each master kind it:
1. loads KEYS string keys (100-byte values) with `redis-cli --pipe`;
2. starts `redis-server --replicaof` and measures the time until `master_link_status:up`
   with the keyspace equal, while `redis-benchmark` (SET and GET, 20 clients, random keys)
   runs against the master: its p99 is the master's latency during the full sync; besides,
   one probe connection alternates SET and GET for exactly the sync's window and reports
   their p99 (redis-benchmark's run need not match the sync's length), and the same probe
   runs for as long before the sync (idle p99, for the ratio);
3. runs `redis-benchmark -t set -P 16` against the master and samples, every 50 ms, how far
   the replica's offset is behind the master's (bytes), then the time to catch up.

Both masters use `repl-diskless-sync yes` (or DISKLESS=no: disk target) with delay 0.
Ports PORT_BASE..PORT_BASE+3 (default 8150). Prints a markdown table.
"""
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = int(os.environ.get("KEYS", "1000000"))
SHARDS = os.environ.get("SHARDS", "2")
SLOTCORE = os.environ.get("SLOTCORE", os.path.join(ROOT, "target", "dist", "slotcore"))
PORT_BASE = int(os.environ.get("PORT_BASE", "8150"))
DISKLESS = os.environ.get("DISKLESS", "yes")


class Probe:
    """One connection alternating SET and GET on random loaded keys, recording each
    request's latency until stopped (a thread)."""

    def __init__(self, port):
        import socket
        import threading

        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.stop = False
        self.lat = {"SET": [], "GET": []}
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        import random

        f = self.sock.makefile("rb")
        i = 0
        while not self.stop:
            k = f"key:{random.randrange(KEYS):07d}"
            if i % 2 == 0:
                name, req = "SET", f"*3\r\n$3\r\nSET\r\n${len(k)}\r\n{k}\r\n$5\r\nprobe\r\n"
            else:
                name, req = "GET", f"*2\r\n$3\r\nGET\r\n${len(k)}\r\n{k}\r\n"
            t = time.perf_counter()
            self.sock.sendall(req.encode())
            line = f.readline()
            if line.startswith(b"$") and not line.startswith(b"$-1"):
                f.read(int(line[1:]) + 2)
            self.lat[name].append((time.perf_counter() - t) * 1000)
            i += 1

    def finish(self):
        self.stop = True
        self.t.join()
        self.sock.close()
        out = {}
        for name, v in self.lat.items():
            v.sort()
            out[name] = v[min(len(v) - 1, int(len(v) * 0.99))] if v else float("nan")
        return out


def cli(port, *args):
    out = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=60)
    return out.stdout.strip()


def info(port, section, field):
    for line in cli(port, "INFO", section).splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    return None


def wait_port(port):
    for _ in range(400):
        if cli(port, "PING") == "PONG":
            return
        time.sleep(0.05)
    raise SystemExit(f"port {port} did not come up")


def start(args, workdir, log):
    return subprocess.Popen(args, cwd=workdir, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def load(port, n):
    def gen():
        for i in range(n):
            k = f"key:{i:07d}"
            v = f"{i:07d}" + "x" * 93
            yield f"*3\r\n$3\r\nSET\r\n${len(k)}\r\n{k}\r\n${len(v)}\r\n{v}\r\n".encode()

    p = subprocess.Popen(["redis-cli", "-p", str(port), "--pipe"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    buf = []
    for chunk in gen():
        buf.append(chunk)
        if len(buf) >= 10000:
            p.stdin.write(b"".join(buf))
            buf = []
    p.stdin.write(b"".join(buf))
    p.stdin.close()
    p.wait()


def bench_csv(port, extra):
    """Runs redis-benchmark --csv; returns {test: (rps, p99_ms)}."""
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "--csv", *extra], capture_output=True, text=True, timeout=600
    ).stdout
    res = {}
    for line in out.splitlines()[1:]:
        f = [x.strip('"') for x in line.split(",")]
        if len(f) >= 7:
            res[f[0]] = (float(f[1]), float(f[6]))
    return res


def run(kind, work):
    mport, rport = (PORT_BASE, PORT_BASE + 1) if kind == "slotcore" else (PORT_BASE + 2, PORT_BASE + 3)
    mdir = os.path.join(work, kind + "-master")
    rdir = os.path.join(work, kind + "-replica")
    os.makedirs(mdir)
    os.makedirs(rdir)
    common = ["--port", str(mport), "--save", "", "--repl-diskless-sync", DISKLESS, "--repl-diskless-sync-delay", "0"]
    if kind == "slotcore":
        m = start([SLOTCORE, *common, "--shards", SHARDS, "--pin-cores", "no"], mdir, os.path.join(mdir, "log"))
    else:
        m = start(["redis-server", *common], mdir, os.path.join(mdir, "log"))
    procs = [m]
    try:
        wait_port(mport)
        t = time.time()
        load(mport, KEYS)
        load_s = time.time() - t
        dbsize = cli(mport, "DBSIZE")
        # Idle probe, as long as a sync typically takes (3 s).
        probe = Probe(mport)
        time.sleep(3)
        idle_probe = probe.finish()
        # Full sync while the master serves SET/GET.
        bench = subprocess.Popen(
            ["redis-benchmark", "-p", str(mport), "--csv", "-t", "set,get", "-n", "200000", "-c", "20", "-r", str(KEYS), "-d", "100"],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.2)
        probe = Probe(mport)
        t0 = time.time()
        r = start(["redis-server", "--port", str(rport), "--save", "", "--replicaof", "127.0.0.1", str(mport)], rdir, os.path.join(rdir, "log"))
        procs.append(r)
        online = None
        while time.time() - t0 < 300:
            if info(rport, "replication", "master_link_status") == "up":
                online = time.time() - t0
                break
            time.sleep(0.02)
        sync_probe = probe.finish()
        out = bench.communicate()[0]
        during = {}
        for line in out.splitlines()[1:]:
            f = [x.strip('"') for x in line.split(",")]
            if len(f) >= 7:
                during[f[0]] = (float(f[1]), float(f[6]))
        # Baseline latency with the replica online and idle.
        base = bench_csv(mport, ["-t", "set,get", "-n", "200000", "-c", "20", "-r", str(KEYS), "-d", "100"])
        # Replication lag under SET load at P=16.
        lag = subprocess.Popen(
            ["redis-benchmark", "-p", str(mport), "--csv", "-t", "set", "-n", "2000000", "-P", "16", "-c", "20", "-r", str(KEYS)],
            stdout=subprocess.PIPE,
            text=True,
        )
        samples = []
        while lag.poll() is None:
            mo = info(mport, "replication", "master_repl_offset")
            ro = info(rport, "replication", "slave_repl_offset")
            if mo and ro:
                samples.append(max(0, int(mo) - int(ro)))
            time.sleep(0.05)
        lag_out = lag.communicate()[0]
        lag_rps = 0.0
        for line in lag_out.splitlines()[1:]:
            f = [x.strip('"') for x in line.split(",")]
            if len(f) >= 2:
                lag_rps = float(f[1])
        t1 = time.time()
        while time.time() - t1 < 120:
            mo = info(mport, "replication", "master_repl_offset")
            ro = info(rport, "replication", "slave_repl_offset")
            if mo and ro and int(ro) >= int(mo):
                break
            time.sleep(0.01)
        catchup = time.time() - t1
        same = cli(mport, "DBSIZE") == cli(rport, "DBSIZE")
        samples.sort()
        return {
            "kind": kind,
            "keys": dbsize,
            "load_s": load_s,
            "online_s": online,
            "during": during,
            "base": base,
            "lag_max": samples[-1] if samples else 0,
            "lag_p50": samples[len(samples) // 2] if samples else 0,
            "lag_rps": lag_rps,
            "catchup_s": catchup,
            "same": same,
            "idle_probe": idle_probe,
            "sync_probe": sync_probe,
        }
    finally:
        if os.environ.get("SHOW_LOGS"):
            for d in (mdir, rdir):
                print(open(os.path.join(d, "log")).read()[-3000:], file=sys.stderr)
        for p in procs:
            p.kill()
            p.wait()


def main():
    if "SLOTCORE" not in os.environ:
        subprocess.run(["cargo", "build", "--profile", "dist", "--quiet"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as work:
        only = os.environ.get("ONLY")
        results = [run(k, work) for k in ("slotcore", "redis") if not only or k == only]
    print(f"keys={KEYS} shards={SHARDS} diskless={DISKLESS}  ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n")
    print("| master | keys | time to replica online s | SET p99 ms during sync | GET p99 ms during sync | SET p99 ms after | GET p99 ms after | SET -P16 rps | lag p50 B | lag max B | catch-up s | dbsize equal |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        d, b = r["during"], r["base"]
        g = lambda m, t: f"{m[t][1]:.3f}" if t in m else "-"
        online = f"{r['online_s']:.2f}" if r["online_s"] is not None else "timeout"
        print(
            f"| {r['kind']} | {r['keys']} | {online} | {g(d, 'SET')} | {g(d, 'GET')} | {g(b, 'SET')} | {g(b, 'GET')} | "
            f"{r['lag_rps']:.0f} | {r['lag_p50']} | {r['lag_max']} | {r['catchup_s']:.2f} | {r['same']} |"
        )
    print("\nProbe connection (one client, SET/GET alternating), p99 ms:\n")
    print("| master | SET idle | SET during sync | GET idle | GET during sync |")
    print("|---|---|---|---|---|")
    for r in results:
        i, s = r["idle_probe"], r["sync_probe"]
        print(f"| {r['kind']} | {i['SET']:.3f} | {s['SET']:.3f} | {i['GET']:.3f} | {s['GET']:.3f} |")


if __name__ == "__main__":
    sys.exit(main())
