#!/usr/bin/env bash
# EVALSHA of a rate-limiter script (INCR + EXPIRE on first hit), slotcore side by side with a
# real redis-server on this machine.
#
#   bash bench/evalsha.sh                  # N=200000 requests, 50 clients, -P 1 and 16
#   N=50000 PIPELINES=1 bash bench/evalsha.sh
#   SLOTCORE=/path/to/slotcore bash bench/evalsha.sh   # another build of slotcore
#
# Both servers run one at a time under `taskset -c $SERVER_CPUS` with identical
# redis-benchmark arguments (keys `rl:<rand>` over KEYSPACE keys, so most calls are an INCR
# of an existing key and some an INCR + EXPIRE). Printed per pipeline depth: requests/s,
# p50 latency and server CPU time per request (utime+stime from /proc over the run), as a
# Markdown table row.
set -euo pipefail
cd "$(dirname "$0")/.."

N="${N:-200000}"
CLIENTS="${CLIENTS:-50}"
KEYSPACE="${KEYSPACE:-10000}"
PIPELINES="${PIPELINES:-1 16}"
SERVER_CPUS="${SERVER_CPUS:-0}"
SC_PORT="${SC_PORT:-8270}"
RD_PORT="${RD_PORT:-8271}"
CLK_TCK=$(getconf CLK_TCK)
SLOTCORE="${SLOTCORE:-target/dist/slotcore}"
SCRIPT='local n = redis.call("incr", KEYS[1]) if n == 1 then redis.call("expire", KEYS[1], ARGV[1]) end if n > tonumber(ARGV[2]) then return 0 end return n'

[ -x "$SLOTCORE" ] || cargo build --profile dist --quiet
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
wait_port() {
  for _ in $(seq 1 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "server on port $1 did not start" >&2; exit 1
}

run_one() { # name port pid
  local name=$1 port=$2 pid=$3 sha
  sha=$(redis-cli -p "$port" script load "$SCRIPT")
  for p in $PIPELINES; do
    redis-cli -p "$port" flushall >/dev/null
    local t0 out rps p50 t1
    t0=$(cpu_ticks "$pid")
    out=$(redis-benchmark -p "$port" -c "$CLIENTS" -n "$N" -P "$p" -r "$KEYSPACE" -q --csv \
      evalsha "$sha" 1 "rl:__rand_int__" 60 1000000000)
    t1=$(cpu_ticks "$pid")
    rps=$(echo "$out" | tail -1 | awk -F'","' '{print $2}')
    p50=$(echo "$out" | tail -1 | awk -F'","' '{print $5}')
    local cpu
    cpu=$(awk -v a="$t0" -v b="$t1" -v n="$N" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / hz * 1e6 / n }')
    echo "$name $p $rps $p50 $cpu"
  done
}

taskset -c "$SERVER_CPUS" "$SLOTCORE" --port "$SC_PORT" --save "" --dir "$work" --shards 1 --pin-cores no \
  >"$work/slotcore.log" 2>&1 &
pids+=($!)
wait_port "$SC_PORT"
run_one slotcore "$SC_PORT" "${pids[-1]}" >"$work/sc.txt"
kill "${pids[-1]}"

taskset -c "$SERVER_CPUS" redis-server --port "$RD_PORT" --save "" --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
wait_port "$RD_PORT"
run_one redis "$RD_PORT" "${pids[-1]}" >"$work/rd.txt"

echo "| -P | slotcore rps | redis rps | ratio | slotcore p50 ms | redis p50 ms | slotcore CPU µs/req | redis CPU µs/req |"
echo "|---|---|---|---|---|---|---|---|"
paste -d' ' "$work/sc.txt" "$work/rd.txt" | while read -r _ p s_rps s_p50 s_cpu _ _ r_rps r_p50 r_cpu; do
  ratio=$(awk -v a="${s_rps//\"/}" -v b="${r_rps//\"/}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
  echo "| $p | ${s_rps//\"/} | ${r_rps//\"/} | $ratio | ${s_p50//\"/} | ${r_p50//\"/} | $s_cpu | $r_cpu |"
done
