#!/usr/bin/env bash
# BGSAVE under load, side by side: slotcore's forkless snapshot vs redis-server's fork.
#
#   bash bench/bgsave.sh                  # 1M keys of 100 bytes
#   KEYS=200000 bash bench/bgsave.sh      # shorter
#   SLOTCORE=/path/to/slotcore ONLY=slotcore bash bench/bgsave.sh   # another build, one side
#   CLIENT_CPUS=0-1 bash bench/bgsave.sh  # clients on every CPU, the server's included
#
# For each server (one at a time, same CPUs, same data): load KEYS string keys, measure
# redis-benchmark (SET+GET on those keys) idle, then again while BGSAVEs run back to back for
# the whole benchmark; report p50/p99 and requests/s idle vs during the save and how long one
# BGSAVE took. Then the same load and saves once more, this time sampling memory every 50 ms:
# peak memory during the saves over memory before them. Memory is PSS summed over the server
# and its children (`/proc/PID/smaps_rollup`), so redis-server's copy-on-write pages count once
# each. The two are measured apart because reading smaps_rollup walks the server's page tables
# under its mmap lock: sampled every 50 ms during the latency phase it raised slotcore's p99
# during the saves from ~1.5x to 4-7x of idle with saves and no sampler alike (a loop sampling
# PSS and sending PING, no save, showed the same rise).
set -euo pipefail
cd "$(dirname "$0")/.."

KEYS="${KEYS:-1000000}"
VALUE="${VALUE:-100}"
N="${N:-400000}"
CLIENTS="${CLIENTS:-50}"
SERVER_CPUS="${SERVER_CPUS:-0}"
# CPUs of redis-benchmark and of the BGSAVE loop: every CPU but the server's by default (as
# bench/compare.sh); figures before session 20 were taken with CLIENT_CPUS=0-1.
case "$(nproc)" in 1) CLIENT_CPUS="${CLIENT_CPUS:-0}" ;; 2) CLIENT_CPUS="${CLIENT_CPUS:-1}" ;; *) CLIENT_CPUS="${CLIENT_CPUS:-1-$(($(nproc) - 1))}" ;; esac
SC_PORT="${SC_PORT:-8590}"
RD_PORT="${RD_PORT:-8591}"
SLOTCORE="${SLOTCORE:-./target/dist/slotcore}"
ONLY="${ONLY:-}"

[ "$SLOTCORE" = ./target/dist/slotcore ] && cargo build --profile dist --quiet
work=$(mktemp -d)
pids=()
cleanup() { # SIGTERM, then SIGKILL for a server that does not exit (e.g. stuck in a save)
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "server on $1 did not start" >&2; exit 1
}

# KEYS SET commands in RESP, for redis-cli --pipe.
gen_load() {
  awk -v n="$KEYS" -v vl="$VALUE" 'BEGIN {
    v = sprintf("%" vl "s", ""); gsub(/ /, "v", v);
    for (i = 0; i < n; i++) { k = "key:" sprintf("%012d", i);
      printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, vl, v } }'
}

pss_kb() { # PSS of a process and its children, in kB
  local total=0 p
  for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    local v
    v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

# redis-benchmark SET+GET on the loaded keyspace; prints "rps p50 p99" per test, CSV.
bench() {
  taskset -c "$CLIENT_CPUS" redis-benchmark -p "$1" -t set,get -n "$N" -c "$CLIENTS" -r "$KEYS" -d "$VALUE" --csv 2>/dev/null |
    awk 'NR > 1 { gsub(/"/, ""); print }'
}

# The BGSAVE loop, without a process per poll: one connection kept open, INFO and BGSAVE sent
# on it, the 50 ms pause taken with bash builtins only (a loop starting redis-cli, awk and
# pgrep every 50 ms took ~6% of a CPU). With `sample` = 1 it also reads the PSS of the server
# and its children from /proc each time, keeping the peak in `prefix.peak`.
save_loop() { # port pid prefix sample
  local port=$1 pid=$2 pre=$3 sample=$4 peak=0 line n info m p k v f
  local -a kids c
  taskset -pc "$CLIENT_CPUS" "$BASHPID" >/dev/null
  export LC_ALL=C
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  rm -f "$pre.never" "$pre.stop"
  mkfifo "$pre.never"
  exec 4<>"$pre.never"
  while [ ! -f "$pre.stop" ]; do
    printf 'INFO persistence\r\n' >&3
    read -r -u 3 line
    n=${line#\$}
    n=${n%$'\r'}
    read -r -N "$((n + 2))" -u 3 info
    if [[ "$info" != *rdb_bgsave_in_progress:1* ]]; then
      printf 'BGSAVE\r\n' >&3
      read -r -u 3 line
    fi
    if [ "$sample" != 1 ]; then
      read -r -t 0.05 -u 4 _ || true
      continue
    fi
    kids=()
    for f in /proc/"$pid"/task/*/children; do
      c=()
      read -r -a c <"$f" 2>/dev/null || true # the list has no final newline
      kids+=("${c[@]}")
    done
    m=0
    for p in "$pid" "${kids[@]}"; do
      while read -r k v _; do
        if [ "$k" = Pss: ]; then m=$((m + v)); fi
      done 2>/dev/null <"/proc/$p/smaps_rollup" || true
    done
    if [ "$m" -gt "$peak" ]; then peak=$m; fi
    echo "$peak" >"$pre.peak"
    read -r -t 0.05 -u 4 _ || true
  done
  exec 3>&- 4>&-
}

in_progress() { redis-cli -p "$1" info persistence | tr -d '\r' | awk -F: '/^rdb_bgsave_in_progress/ {print $2}'; }

# redis-benchmark (CSV to `out`) while BGSAVEs run back to back, the loop sampling memory
# when `sample` = 1; returns once the last save ended.
bench_under_saves() { # name port pid sample out
  local name=$1 port=$2 pid=$3 sample=$4 out=$5 looper
  save_loop "$port" "$pid" "$work/$name" "$sample" &
  looper=$!
  sleep 0.2
  bench "$port" >"$out"
  touch "$work/$name.stop"; wait "$looper"
  while [ "$(in_progress "$port")" = 1 ]; do sleep 0.02; done
}

run_one() { # name port pid
  local name=$1 port=$2 pid=$3
  gen_load | redis-cli -p "$port" --pipe >/dev/null
  echo "[$name] keys: $(redis-cli -p "$port" dbsize)"
  sleep 1
  local base; base=$(pss_kb "$pid")
  echo "[$name] load average: $(cut -d' ' -f1-3 /proc/loadavg), server CPUs $SERVER_CPUS, client CPUs $CLIENT_CPUS"
  echo "[$name] idle:"; bench "$port" | tee "$work/$name.idle" | sed "s/^/[$name]   /"
  # One timed BGSAVE alone.
  local t0 t1
  t0=$(date +%s.%N); redis-cli -p "$port" bgsave >/dev/null
  while [ "$(in_progress "$port")" = 1 ]; do sleep 0.02; done
  t1=$(date +%s.%N)
  echo "[$name] one BGSAVE alone: $(echo "$t1 - $t0" | bc) s"
  # BGSAVEs back to back while the benchmark runs (no memory sampling: see the top).
  bench_under_saves "$name" "$port" "$pid" 0 "$work/$name.during"
  echo "[$name] during BGSAVE:"; sed "s/^/[$name]   /" "$work/$name.during"
  echo "[$name] load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  # CSV: test, rps, avg, min, p50, p95, p99, max (idle), then the same during the saves.
  paste -d, "$work/$name.idle" "$work/$name.during" | tr -d ' ' | awk -F, -v n="$name" \
    '{ printf "[%s] %s p99 during/idle %.2fx, p50 %.2fx, req/s %.2fx\n", n, $1, $15 / $7, $13 / $5, $10 / $2 }'
  # The same load and saves again, sampling memory.
  : >"$work/$name.peak"
  bench_under_saves "$name" "$port" "$pid" 1 /dev/null
  local peak; peak=$(cat "$work/$name.peak")
  echo "[$name] memory before saves: $((base / 1024)) MiB, peak during saves: $((peak / 1024)) MiB, ratio $(echo "scale=3; $peak / $base" | bc)"
  echo "[$name] saves: $(redis-cli -p "$port" info persistence | tr -d '\r' | grep -E '^rdb_saves|^rdb_last_bgsave_status')"
}

mkdir -p "$work/sc" "$work/rd"
if [ "$ONLY" != redis ]; then
taskset -c "$SERVER_CPUS" "$SLOTCORE" --port "$SC_PORT" --dir "$work/sc" --save "" \
  --shards 1 --pin-cores no --logfile "$work/sc.log" &
pids+=($!)
wait_port "$SC_PORT"
run_one slotcore "$SC_PORT" "${pids[-1]}"
redis-cli -p "$SC_PORT" shutdown nosave >/dev/null 2>&1 || true
fi
[ "$ONLY" = slotcore ] && exit 0

taskset -c "$SERVER_CPUS" redis-server --port "$RD_PORT" --dir "$work/rd" --save "" --appendonly no \
  --logfile "$work/rd.log" &
pids+=($!)
wait_port "$RD_PORT"
run_one redis "$RD_PORT" "${pids[-1]}"
redis-cli -p "$RD_PORT" shutdown nosave >/dev/null 2>&1 || true
