#!/usr/bin/python3
"""Chaos soak of a 6-node slotcore cluster (3 masters + 3 replicas).

  /usr/bin/python3 bench/chaos.py                    # 6 rounds, ports 8140..8145
  ROUNDS=10 PORT_BASE=8140 /usr/bin/python3 bench/chaos.py
  SERVER=/usr/bin/redis-server /usr/bin/python3 bench/chaos.py   # the same soak on redis-server

The cluster is made by `redis-cli --cluster create --cluster-replicas 1`; every node runs with
`appendonly yes`, `appendfsync always` and `cluster-node-timeout` NODE_TIMEOUT ms. While a writer
thread SETs unique keys (each followed by `WAIT 1 <ms>` on the same connection) and a light
`redis-benchmark --cluster` runs, a driver does one action per round, in turn:
  kill    kill -9 a random node, restart it after a random pause (shorter or longer than the
          node timeout), same dir and port;
  stop    SIGSTOP a random node for 2 x node timeout + 1 s (the others see it fail, a replica of
          a stopped master is promoted), then SIGCONT;
  reshard move one slot that the writer writes to between two masters with
          `redis-cli --cluster reshard`;
and then waits (bounded) for every node to report cluster_state:ok with the same config epoch
view. At the end: every node must still be running (no crash: a node that exits without being
killed is a finding), `redis-cli --cluster check` must pass, every WAIT-acknowledged write must be
readable with its value, and writes acknowledged without a WAIT acknowledgement that are gone are
listed with the event that explains them. Prints a markdown report; exit status 1 on a finding.
"""
import atexit
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

import redis
from redis.crc import key_slot

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.environ.get("SERVER", os.path.join(ROOT, "target", "dist", "slotcore"))
PORT_BASE = int(os.environ.get("PORT_BASE", "8140"))
ROUNDS = int(os.environ.get("ROUNDS", "6"))
NODE_TIMEOUT = int(os.environ.get("NODE_TIMEOUT", "3000"))
SEED = int(os.environ.get("SEED", str(int(time.time()))))
SETTLE_S = float(os.environ.get("SETTLE_S", "60"))
BENCH = os.environ.get("BENCH", "1") == "1"
IS_SLOTCORE = "slotcore" in os.path.basename(SERVER)
PORTS = [PORT_BASE + i for i in range(6)]
T0 = time.time()


def now():
    return time.time() - T0


def log(msg):
    print(f"[{now():7.1f}s] {msg}", file=sys.stderr, flush=True)


class StartHang(Exception):
    pass


class Node:
    def __init__(self, port, root):
        self.port = port
        self.dir = os.path.join(root, str(port))
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None
        self.killed_by_us = False
        self.starts = 0

    def start(self):
        args = [SERVER, "--port", str(self.port), "--cluster-enabled", "yes",
                "--cluster-node-timeout", str(NODE_TIMEOUT), "--dir", self.dir,
                "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                "--logfile", os.path.join(self.dir, "log.txt")]
        if IS_SLOTCORE:
            args += ["--shards", "2"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(
            os.path.join(self.dir, "stderr.txt"), "a"))
        self.killed_by_us = False
        self.starts += 1
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.RedisError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"node {self.port} exited at start-up: {self.proc.returncode}")
            time.sleep(0.1)
        raise StartHang(f"node {self.port} did not answer PING within 30 s of start {self.starts}")

    def start_retrying(self, findings):
        """start(); a node that hangs at start-up is a finding, then killed and started again."""
        for _ in range(3):
            try:
                return self.start()
            except StartHang as e:
                findings.append(f"{e} (start-up hang; log tail: {self.log_tail()!r}); killed and restarted")
                log(findings[-1])
                self.proc.kill()
                self.proc.wait()
        raise RuntimeError(f"node {self.port} hung at start-up three times")

    def log_tail(self):
        try:
            return open(os.path.join(self.dir, "log.txt")).read().splitlines()[-1][-120:]
        except (OSError, IndexError):
            return ""

    def client(self, timeout=2.0):
        return redis.Redis(port=self.port, socket_timeout=timeout, socket_connect_timeout=timeout)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class Writer(threading.Thread):
    """SETs key w:<n> = <n> through its own slot routing, then WAIT 1 on the same connection.

    acked: writes answered +OK; waited: those WAIT 1 also acknowledged (value 1 or more)."""

    def __init__(self, nodes):
        super().__init__(daemon=True)
        self.nodes = nodes
        self.stop = False
        self.acked = {}      # key -> (value, port, time)
        self.waited = set()
        self.errors = {}
        self.slot_owner = {}
        self.conns = {}

    def refresh(self):
        for n in self.nodes:
            if not n.alive():
                continue
            try:
                slots = n.client().execute_command("CLUSTER SLOTS")
            except redis.RedisError:
                continue
            owner = {}
            for entry in slots:
                start, end, master = entry[0], entry[1], entry[2]
                for s in range(start, end + 1):
                    owner[s] = int(master[1])
            if owner:
                self.slot_owner = owner
                return

    def conn(self, port):
        c = self.conns.get(port)
        if c is None:
            c = redis.Redis(port=port, socket_timeout=1.0 + NODE_TIMEOUT / 1000, socket_connect_timeout=1.0)
            self.conns[port] = c
        return c

    def run(self):
        self.refresh()
        i = 0
        while not self.stop:
            key = f"w:{{{i % 64}}}:{i}"
            val = str(i)
            port = self.slot_owner.get(key_slot(key.encode()))
            if port is None:
                self.refresh()
                time.sleep(0.05)
                continue
            c = self.conn(port)
            try:
                c.set(key, val)
            except redis.ResponseError as e:
                kind = str(e).split(" ")[0]
                self.errors[kind] = self.errors.get(kind, 0) + 1
                if kind in ("MOVED", "ASK"):
                    if kind == "ASK":
                        # Follow ASK once: the slot is migrating.
                        try:
                            target = int(str(e).split(":")[-1])
                            t = self.conn(target)
                            t.execute_command("ASKING")
                            t.set(key, val)
                            self.acked[key] = (val, target, now())
                            if t.execute_command("WAIT", 1, 1000) >= 1:
                                self.waited.add(key)
                        except redis.RedisError:
                            pass
                        i += 1
                        continue
                    self.refresh()
                else:
                    time.sleep(0.05)
                    self.refresh()
                i += 1
                continue
            except redis.RedisError as e:
                kind = type(e).__name__
                self.errors[kind] = self.errors.get(kind, 0) + 1
                self.conns.pop(port, None)
                time.sleep(0.1)
                self.refresh()
                i += 1
                continue
            self.acked[key] = (val, port, now())
            try:
                if c.execute_command("WAIT", 1, 1000) >= 1:
                    self.waited.add(key)
            except redis.RedisError as e:
                kind = "WAIT " + type(e).__name__
                self.errors[kind] = self.errors.get(kind, 0) + 1
                self.conns.pop(port, None)
            i += 1
            time.sleep(0.002)


def cluster_ok(nodes):
    """Whether every running node reports cluster_state:ok and they agree on slot owners."""
    views = set()
    for n in nodes:
        if not n.alive():
            return False
        try:
            c = n.client()
            if b"cluster_state:ok" not in c.execute_command("CLUSTER", "INFO"):
                return False
            views.add(tuple(sorted((e[0], e[1], int(e[2][1])) for e in c.execute_command("CLUSTER SLOTS"))))
        except redis.RedisError:
            return False
    return len(views) == 1


def settle(nodes, what):
    t = time.time()
    while time.time() - t < SETTLE_S:
        if cluster_ok(nodes):
            log(f"settled after {what} in {time.time() - t:.1f}s")
            return time.time() - t
        time.sleep(0.25)
    log(f"NOT settled {SETTLE_S}s after {what}")
    return None


def masters(nodes):
    out = []
    for n in nodes:
        try:
            if n.alive() and n.client().execute_command("ROLE")[0] == b"master":
                out.append(n)
        except redis.RedisError:
            pass
    return out


def node_id(n):
    return n.client().execute_command("CLUSTER", "MYID").decode()


def main():
    rng = random.Random(SEED)
    root = tempfile.mkdtemp(prefix="slotcore-chaos-")
    nodes = [Node(p, root) for p in PORTS]
    atexit.register(lambda: [n.proc.kill() for n in nodes if n.alive()])
    events = []   # (time, round, action, port, detail)
    findings = []
    for n in nodes:
        n.start_retrying(findings)
    create = subprocess.run(["redis-cli", "--cluster", "create"] + [f"127.0.0.1:{p}" for p in PORTS]
                            + ["--cluster-replicas", "1", "--cluster-yes"], capture_output=True, text=True)
    if create.returncode != 0:
        print(create.stdout, create.stderr)
        sys.exit(2)
    if settle(nodes, "create") is None:
        findings.append("cluster never reached cluster_state:ok after create")
    writer = Writer(nodes)
    writer.start()
    bench = None
    if BENCH:
        bench = subprocess.Popen(["redis-benchmark", "--cluster", "-p", str(PORTS[0]), "-t", "set,get",
                                  "-n", "100000000", "-c", "2", "-r", "100000", "-q"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    settle_times = []
    actions = ["kill", "stop", "reshard"]
    for rnd in range(ROUNDS):
        time.sleep(2)
        action = actions[rnd % 3]
        if action == "kill":
            # Alternately any node for shorter than the node timeout (no failover) and a master
            # for longer (its replica is promoted, it comes back as a replica).
            long_kill = (rnd // 3) % 2 == 1
            pause = NODE_TIMEOUT / 1000 * 2 + 1 if long_kill else 0.5
            n = rng.choice(masters(nodes) if long_kill else nodes)
            role = n.client().execute_command("ROLE")[0].decode()
            n.killed_by_us = True
            n.proc.send_signal(signal.SIGKILL)
            n.proc.wait()
            events.append((now(), rnd, "kill -9", n.port, f"{role}, restarted after {pause}s"))
            log(f"round {rnd}: kill -9 {n.port} ({role}), restart in {pause}s")
            time.sleep(pause)
            n.start_retrying(findings)
        elif action == "stop":
            n = rng.choice(nodes)
            role = n.client().execute_command("ROLE")[0].decode()
            hold = NODE_TIMEOUT / 1000 * 2 + 1
            n.proc.send_signal(signal.SIGSTOP)
            events.append((now(), rnd, "SIGSTOP", n.port, f"{role}, {hold}s"))
            log(f"round {rnd}: SIGSTOP {n.port} ({role}) for {hold}s")
            time.sleep(hold)
            n.proc.send_signal(signal.SIGCONT)
        else:
            ms = masters(nodes)
            writer.refresh()
            # A slot the writer uses, owned by some master, to another master.
            tag = rng.randrange(64)
            slot = key_slot(f"{{{tag}}}".encode())
            src = next((m for m in ms if m.port == writer.slot_owner.get(slot)), None)
            others = [m for m in ms if m is not src]
            if src is None or not others:
                events.append((now(), rnd, "reshard", 0, "skipped: no owner found"))
                continue
            dst = rng.choice(others)
            r = subprocess.run(["redis-cli", "--cluster", "reshard", f"127.0.0.1:{src.port}",
                                "--cluster-from", node_id(src), "--cluster-to", node_id(dst),
                                "--cluster-slots", "1", "--cluster-yes"], capture_output=True, text=True,
                               timeout=120)
            # redis-cli moves the lowest slot of the source; report which one moved.
            moved = [ln for ln in r.stdout.splitlines() if "Moving slot" in ln]
            detail = f"{src.port} -> {dst.port}: " + (moved[0].strip() if moved else "nothing moved") + \
                f", exit {r.returncode}"
            events.append((now(), rnd, "reshard", src.port, detail))
            log(f"round {rnd}: reshard {detail}")
            if r.returncode != 0:
                findings.append(f"round {rnd}: reshard failed: {r.stdout[-400:]} {r.stderr[-400:]}")
        for m in nodes:
            if not m.alive() and not m.killed_by_us:
                findings.append(f"round {rnd}: node {m.port} exited by itself (code {m.proc.returncode})")
                m.start_retrying(findings)
        st = settle(nodes, f"round {rnd} ({action})")
        settle_times.append(st)
        if st is None:
            findings.append(f"round {rnd} ({action}): no cluster_state:ok with one slot view within {SETTLE_S}s")
    writer.stop = True
    writer.join(10)
    if bench:
        bench.terminate()
        bench.wait()
    final_ok = settle(nodes, "the end")
    check = subprocess.run(["redis-cli", "--cluster", "check", f"127.0.0.1:{PORTS[0]}"], capture_output=True,
                           text=True)
    if check.returncode != 0 or "[ERR]" in check.stdout:
        findings.append("redis-cli --cluster check: " + "; ".join(
            ln for ln in check.stdout.splitlines() if "ERR" in ln or "WARNING" in ln))
    rc = redis.RedisCluster(host="127.0.0.1", port=PORTS[0])
    lost_waited, lost_acked = [], []
    for key, (val, port, t) in list(writer.acked.items()):
        got = None
        for _ in range(3):
            try:
                got = rc.get(key)
                break
            except redis.RedisError:
                time.sleep(0.5)
        if got != val.encode():
            (lost_waited if key in writer.waited else lost_acked).append((key, port, t, got))
    for key, port, t, got in lost_waited:
        findings.append(f"WAIT-acknowledged {key} (to {port} at {t:.1f}s) reads {got!r}")
    crashes = []
    for n in nodes:
        for f in ("log.txt", "stderr.txt"):
            p = os.path.join(n.dir, f)
            if os.path.exists(p):
                text = open(p, errors="replace").read()
                for word in ("panicked", "Segmentation", "BUG", "ASSERTION"):
                    if word in text:
                        crashes.append(f"{n.port}/{f}: {word}")
    findings += [f"crash trace in {c}" for c in crashes]

    def why(port, t):
        for et, rnd, action, eport, detail in events:
            if et >= t and eport == port and action in ("kill -9", "SIGSTOP"):
                return f"round {rnd} {action} of {port} ({detail}) at {et:.1f}s"
        # A master back from a stop or a restart believes it still owns its slots and accepts
        # writes until the cluster tells it that its replica was promoted (then it resyncs
        # from the new master and drops them), as Redis does.
        for et, rnd, action, eport, detail in reversed(events):
            if et < t <= et + 15.0 and eport == port and action in ("kill -9", "SIGSTOP"):
                return (f"write to {port} at {t:.1f}s, {t - et:.1f}s after round {rnd} {action} of it "
                        f"({detail}): a stale master until it learns of the failover")
        return f"no kill/stop of that node around the write (to {port} at {t:.1f}s)"

    print(f"## Chaos soak: {ROUNDS} rounds, seed {SEED}, server {os.path.basename(SERVER)}, "
          f"node timeout {NODE_TIMEOUT} ms, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| round | t (s) | action | node | detail |\n|---|---|---|---|---|")
    for et, rnd, action, port, detail in events:
        print(f"| {rnd} | {et:.1f} | {action} | {port} | {detail} |")
    print()
    st = [s for s in settle_times if s is not None]
    print(f"- writes acknowledged: {len(writer.acked)}; WAIT 1 acknowledged: {len(writer.waited)}; "
          f"client errors: {dict(sorted(writer.errors.items()))}")
    print(f"- rounds settled (cluster_state:ok, one slot view): {len(st)}/{len(settle_times)}"
          + (f", slowest {max(st):.1f}s" if st else ""))
    print(f"- final cluster_state ok on all nodes: {final_ok is not None}; "
          f"`redis-cli --cluster check` exit {check.returncode}")
    print(f"- node starts: {', '.join(f'{n.port}:{n.starts}' for n in nodes)}")
    print(f"- WAIT-acknowledged writes missing: {len(lost_waited)}")
    print(f"- acknowledged (not WAIT-acknowledged) writes missing: {len(lost_acked)}")
    reasons = {}
    for key, port, t, got in lost_acked:
        reasons.setdefault(why(port, t), []).append(key)
    for r, keys in reasons.items():
        print(f"  - {len(keys)} explained by: {r} (e.g. {keys[0]})")
    print(f"- findings: {len(findings)}")
    for f in findings:
        print(f"  - {f}")
    for n in nodes:
        if n.alive():
            n.proc.send_signal(signal.SIGKILL)
            n.proc.wait()
    if not findings:
        subprocess.run(["rm", "-rf", root])
    else:
        print(f"\nnode dirs and logs kept in {root}")
    sys.exit(1 if findings else 0)


if __name__ == "__main__":
    main()
