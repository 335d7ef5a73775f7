#!/usr/bin/env bash
# Instructions per request, counted by callgrind: the one per-request CPU figure that does not
# move with a shared VM's phases (requests/s and CPU time per request do, by +-25% between runs
# of one binary). Needs valgrind (apt-get install valgrind).
#
#   SLOTCORE_BIN=target/dist/slotcore bash bench/instructions.sh
#   TESTS=get,set,incr,lpush,hset,zadd P=16 N=100000 (the defaults)
#
# What is counted:
# - slotcore: the instructions run inside the shard's tasks (callgrind's --toggle-collect on
#   glommio's task poll), which is the whole path of a request from the read buffer to the
#   reply bytes: parsing, dispatch, execution, encoding, the socket calls' user side. The
#   executor's own loop (the io_uring reactor) is left out: valgrind runs a blocking
#   io_uring_enter while holding its lock, so the node runs with `busy-poll-us 1000000` and
#   that loop spins, which would be counted as work.
# - redis-server: every instruction of the process (its event loop included).
# Each server runs alone under callgrind; redis-benchmark (-c 50, -r 100000, -P $P) sends a
# warm-up of 2000 requests, the counters are zeroed, then N requests are counted.
set -euo pipefail
BIN="${SLOTCORE_BIN:-target/dist/slotcore}"
TESTS="${TESTS:-get,set,incr,lpush,hset,zadd}"
P="${P:-16}"
N="${N:-100000}"
PORT="${PORT:-17915}"
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'exit 1' INT TERM

# count NAME TEST -- server command...: instructions per request
count() {
  local name=$1 test=$2 toggle=$3
  shift 3
  local out="$work/$name.$test.cg" log="$work/$name.$test.log"
  local args=(--tool=callgrind --fair-sched=yes --callgrind-out-file="$out")
  [ -n "$toggle" ] && args+=("--toggle-collect=$toggle")
  # count runs in a subshell: a server it leaves under valgrind (interrupted) would spin on
  # with busy-poll, so the subshell kills it on its way out.
  local vp=""
  trap '[ -n "${vp:-}" ] && kill "${vp:-}" 2>/dev/null' EXIT
  trap 'exit 1' INT TERM
  valgrind "${args[@]}" "$@" >"$log" 2>&1 &
  vp=$!
  local up=0
  for _ in $(seq 600); do
    if redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG; then up=1; break; fi
    sleep 0.2
  done
  if [ "$up" = 0 ]; then
    kill "$vp" 2>/dev/null; wait "$vp" 2>/dev/null || true
    echo "$name did not start under valgrind (see $log)" >&2; exit 1
  fi
  redis-benchmark -p "$PORT" -n 2000 -P "$P" -c 50 -t "$test" -r 100000 >/dev/null 2>&1
  callgrind_control -z "$vp" >/dev/null 2>&1
  redis-benchmark -p "$PORT" -n "$N" -P "$P" -c 50 -t "$test" -r 100000 >/dev/null 2>&1
  kill "$vp"; wait "$vp" 2>/dev/null || true
  vp=""
  local total
  total=$(grep -E "Collected" "$log" | awk '{print $4}' | tr -d ,)
  echo $((total / N))
}

echo "# instructions per request (callgrind): $(date -u '+%Y-%m-%d %H:%M UTC'), $(basename "$BIN") $(git rev-parse --short HEAD 2>/dev/null || true)"
echo "# redis-benchmark -n $N -P $P -c 50 -r 100000; slotcore: the shard's tasks, redis-server: the whole process"
echo
echo "| test | -P | slotcore | redis-server | ratio |"
echo "|---|---|---|---|---|"
for t in ${TESTS//,/ }; do
  sc=$(count slotcore "$t" '*RawTask*run*' "$BIN" --port "$PORT" --save "" --appendonly no --pin-cores no --busy-poll-us 1000000)
  rd=$(count redis "$t" '' redis-server --port "$PORT" --save "" --appendonly no)
  awk -v t="$t" -v p="$P" -v a="$sc" -v b="$rd" 'BEGIN { printf "| %s | %s | %d | %d | %.2f |\n", toupper(t), p, a, b, a / b }'
done
