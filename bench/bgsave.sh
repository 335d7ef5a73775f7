#!/usr/bin/env bash
# BGSAVE under load, side by side: slotcore's forkless snapshot vs redis-server's fork.
#
#   bash bench/bgsave.sh                  # 1M keys of 100 bytes
#   KEYS=200000 bash bench/bgsave.sh      # shorter
#   SLOTCORE=/path/to/slotcore ONLY=slotcore bash bench/bgsave.sh   # another build, one side
#   CLIENT_CPUS=1 bash bench/bgsave.sh    # clients off the server's CPU 0
#   SAVE_LOOP=cli bash bench/bgsave.sh    # the BGSAVE loop with redis-cli/awk/pgrep (before session 17)
#
# For each server (one at a time, same CPUs, same data): load KEYS string keys, measure
# redis-benchmark (SET+GET on those keys) idle, then again while BGSAVEs run back to back for
# the whole benchmark; report p50/p99 and requests/s idle vs during the save, how long one
# BGSAVE took, and peak memory during the saves over memory before them. Memory is PSS summed
# over the server and its children (`/proc/PID/smaps_rollup`), so redis-server's copy-on-write
# pages count once each, sampled every 50 ms.
set -euo pipefail
cd "$(dirname "$0")/.."

KEYS="${KEYS:-1000000}"
VALUE="${VALUE:-100}"
N="${N:-400000}"
CLIENTS="${CLIENTS:-50}"
SERVER_CPUS="${SERVER_CPUS:-0}"
# CPUs of redis-benchmark and of the BGSAVE loop's redis-cli: all by default (as the figures in
# bench/RESULTS.md were taken); CLIENT_CPUS=1 keeps them off the server's CPU (as bench/compare.sh).
CLIENT_CPUS="${CLIENT_CPUS:-0-$(($(nproc) - 1))}"
SC_PORT="${SC_PORT:-8590}"
RD_PORT="${RD_PORT:-8591}"
SLOTCORE="${SLOTCORE:-./target/release/slotcore}"
ONLY="${ONLY:-}"
# The BGSAVE loop during the benchmark: builtin (default: no process started per poll) or cli
# (redis-cli/awk/pgrep every 50 ms, as the figures before session 17 were taken).
SAVE_LOOP="${SAVE_LOOP:-builtin}"

[ "$SLOTCORE" = ./target/release/slotcore ] && cargo build --release --quiet
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
    awk -F'","' 'NR > 1 { gsub(/"/, ""); print $1, $2, $5, $7 }'
}

# The BGSAVE loop without a process per poll (SAVE_LOOP=builtin, the default): one connection
# kept open, INFO and BGSAVE sent on it, PSS read from /proc and the 50 ms pause taken with
# bash builtins only. The old loop (SAVE_LOOP=cli) started redis-cli, tr, awk, pgrep and sleep
# every 50 ms (~120 processes a second, ~6% of CPU 0 in a perf profile of the server's CPU
# during the saves), on the client CPUs, which include the server's CPU 0 by default.
save_loop() { # port pid prefix
  local port=$1 pid=$2 pre=$3 peak=0 line n info m p k v f
  local -a kids c
  taskset -pc "$CLIENT_CPUS" "$BASHPID" >/dev/null
  export LC_ALL=C
  exec 3<>"/dev/tcp/127.0.0.1/$port"
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
      done <"/proc/$p/smaps_rollup" 2>/dev/null || true
    done
    if [ "$m" -gt "$peak" ]; then peak=$m; fi
    echo "$peak" >"$pre.peak"
    read -r -t 0.05 -u 4 _ || true
  done
  exec 3>&- 4>&-
}

in_progress() { redis-cli -p "$1" info persistence | tr -d '\r' | awk -F: '/^rdb_bgsave_in_progress/ {print $2}'; }

run_one() { # name port pid
  local name=$1 port=$2 pid=$3
  gen_load | redis-cli -p "$port" --pipe >/dev/null
  echo "[$name] keys: $(redis-cli -p "$port" dbsize)"
  sleep 1
  local base; base=$(pss_kb "$pid")
  echo "[$name] load average: $(cut -d' ' -f1-3 /proc/loadavg), server CPUs $SERVER_CPUS, client CPUs $CLIENT_CPUS"
  echo "[$name] idle:"; bench "$port" | sed "s/^/[$name]   /"
  # One timed BGSAVE alone.
  local t0 t1
  t0=$(date +%s.%N); redis-cli -p "$port" bgsave >/dev/null
  while [ "$(in_progress "$port")" = 1 ]; do sleep 0.02; done
  t1=$(date +%s.%N)
  echo "[$name] one BGSAVE alone: $(echo "$t1 - $t0" | bc) s"
  # BGSAVEs back to back while the benchmark runs; memory sampled meanwhile.
  : >"$work/$name.peak"
  if [ "$SAVE_LOOP" = cli ]; then
  (
    taskset -pc "$CLIENT_CPUS" "$BASHPID" >/dev/null # the loop's redis-cli on the client CPUs too
    peak=0
    while [ ! -f "$work/$name.stop" ]; do
      if [ "$(in_progress "$port")" != 1 ]; then redis-cli -p "$port" bgsave >/dev/null 2>&1 || true; fi
      m=$(pss_kb "$pid"); [ "$m" -gt "$peak" ] && peak=$m
      echo "$peak" >"$work/$name.peak"
      sleep 0.05
    done
  ) &
  else
    save_loop "$port" "$pid" "$work/$name" &
  fi
  local looper=$!
  sleep 0.2
  echo "[$name] during BGSAVE:"; bench "$port" | sed "s/^/[$name]   /"
  echo "[$name] load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  touch "$work/$name.stop"; wait "$looper"
  while [ "$(in_progress "$port")" = 1 ]; do sleep 0.02; done
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
