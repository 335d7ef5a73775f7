#!/usr/bin/env bash
# Large keyspaces, side by side: slotcore and a real redis-server each holding KEYS string keys
# (the very names `redis-benchmark -r KEYS` draws, `key:000000012345`), then SET and GET over
# random keys of that keyspace. compare.sh's default runs hit one key, which stays in the caches;
# here nearly every lookup misses them, as in a real dataset.
#
#   bash bench/keyspace.sh                       # 1M keys, -P 1 and -P 16
#   KEYS=200000 PIPELINES=16 bash bench/keyspace.sh
#   SLOTCORE_BIN=/tmp/old/slotcore bash bench/keyspace.sh   # another build (no cargo build)
#
# Both servers run under `taskset -c $SERVER_CPUS` (one at a time, one slotcore shard),
# redis-benchmark under `taskset -c $CLIENT_CPUS`. Prints requests/s, the ratio, p50/p99 and the
# server CPU time per request (utime+stime from /proc), plus used_memory after the fill.
set -euo pipefail
cd "$(dirname "$0")/.."

KEYS="${KEYS:-1000000}"
N="${N:-1000000}"
CLIENTS="${CLIENTS:-50}"
TESTS="${TESTS:-set get}"
PIPELINES="${PIPELINES:-1 16}"
SERVER_CPUS="${SERVER_CPUS:-0}"
CLIENT_CPUS="${CLIENT_CPUS:-1}"
SC_PORT="${SC_PORT:-17381}"
RD_PORT="${RD_PORT:-17382}"
CLK_TCK=$(getconf CLK_TCK)

SLOTCORE_BIN="${SLOTCORE_BIN:-}"
if [ -z "$SLOTCORE_BIN" ]; then
  cargo build --profile dist --quiet
  SLOTCORE_BIN=./target/dist/slotcore
fi
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# utime + stime of a process (fields 14 and 15, counted after the command name's parenthesis).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

wait_port() {
  for _ in $(seq 1 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "server on $1 did not start" >&2
  exit 1
}

# The fill: one SET per key of the keyspace, in redis-benchmark's key format.
python3 - "$KEYS" >"$work/fill.resp" <<'EOF'
import sys
out = sys.stdout.buffer
for i in range(int(sys.argv[1])):
    k = b"key:%012d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$3\r\nxxx\r\n" % (len(k), k))
EOF

# run_side NAME PORT PID -> lines "test pipeline rps p50 p99 cpu_us_per_req", then "mem BYTES"
run_side() {
  local name=$1 port=$2 pid=$3
  redis-cli -p "$port" --pipe <"$work/fill.resp" >/dev/null
  echo "mem $(redis-cli -p "$port" info memory | tr -d '\r' | awk -F: '$1 == "used_memory" {print $2}')"
  for t in $TESTS; do
    for p in $PIPELINES; do
      local t0 t1 csv
      t0=$(cpu_ticks "$pid")
      csv=$(taskset -c "$CLIENT_CPUS" redis-benchmark -p "$port" -t "$t" -n "$N" -c "$CLIENTS" -P "$p" -r "$KEYS" --csv 2>/dev/null | tail -n 1)
      t1=$(cpu_ticks "$pid")
      echo "$csv" | tr -d '"' | awk -F, -v t="$t" -v p="$p" -v n="$N" -v ticks=$((t1 - t0)) -v hz="$CLK_TCK" \
        '{printf "%s %s %s %s %s %.2f\n", t, p, $2, $4, $7, ticks / hz * 1e6 / n}'
    done
  done >"$work/$name.txt"
}

taskset -c "$SERVER_CPUS" redis-server --port "$RD_PORT" --save "" --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
wait_port "$RD_PORT"
run_side redis "$RD_PORT" "${pids[-1]}" >"$work/redis.mem"
kill "${pids[-1]}"

taskset -c "$SERVER_CPUS" "$SLOTCORE_BIN" --port "$SC_PORT" --save "" --dir "$work" --shards 1 --pin-cores no \
  >"$work/slotcore.log" 2>&1 &
pids+=($!)
wait_port "$SC_PORT"
run_side slotcore "$SC_PORT" "${pids[-1]}" >"$work/slotcore.mem"

echo "# $KEYS keys filled, redis-benchmark -n $N -c $CLIENTS -r $KEYS, servers on CPUs $SERVER_CPUS, client on CPUs $CLIENT_CPUS ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
echo "| test | -P | slotcore rps | redis rps | ratio | p50 ms slotcore / redis | p99 ms slotcore / redis | CPU µs/req slotcore / redis |"
echo "|---|---|---|---|---|---|---|---|"
paste -d' ' "$work/slotcore.txt" "$work/redis.txt" | while read -r t p srps sp50 sp99 scpu _ _ rrps rp50 rp99 rcpu; do
  ratio=$(awk -v a="$srps" -v b="$rrps" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}')
  echo "| $t | $p | $srps | $rrps | $ratio | $sp50 / $rp50 | $sp99 / $rp99 | $scpu / $rcpu |"
done
sm=$(awk '{print $2}' "$work/slotcore.mem")
rm_=$(awk '{print $2}' "$work/redis.mem")
echo
awk -v s="$sm" -v r="$rm_" -v k="$KEYS" 'BEGIN {printf "used_memory after the fill: slotcore %.1f B/key, redis %.1f B/key (%.2fx)\n", s / k, r / k, s / r}'
