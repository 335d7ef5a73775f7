#!/usr/bin/env bash
# SET with the AOF on, slotcore beside redis-server: appendonly off, appendfsync no, everysec
# and always. Prints requests/s, p50/p99 latency, server CPU time per request and (when perf's
# syscall tracepoints work) fsync/fdatasync calls per 1000 requests for both.
#
#   bash bench/aof.sh                       # N=200000 SETs, 50 clients, -P 1
#   N=50000 CLIENTS=100 SHARDS=2 bash bench/aof.sh
#   SLOTCORE_BIN=/tmp/old/slotcore bash bench/aof.sh   # another build (no cargo build)
#
# Both servers run one at a time under `taskset -c $SERVER_CPUS` (the client under
# `taskset -c $CLIENT_CPUS`: by default the other CPU for one shard), with their AOF directory in
# the same scratch directory ($AOF_DIR, default a mktemp dir under /tmp; point it at the disk
# you care about), with identical redis-benchmark arguments. With `always`, redis-server writes
# and fdatasyncs once per event-loop turn before it replies; slotcore writes each round at once
# and its syncer thread fdatasyncs every write made since its last fdatasync, from every shard
# (group commit: the shards serve meanwhile), starting once as many writes wait as the last
# one covered or one fdatasync's time after it ended; each reply waits for the fdatasync that
# covers it.
set -euo pipefail
cd "$(dirname "$0")/.."

N="${N:-200000}"
CLIENTS="${CLIENTS:-50}"
PIPELINE="${PIPELINE:-1}"
SHARDS="${SHARDS:-1}"
MODES="${MODES:-off no everysec always}"
NCPU=$(nproc)
if [ -z "${SERVER_CPUS:-}" ]; then
  if [ "$SHARDS" -gt 1 ] && [ "$NCPU" -ge 2 ]; then SERVER_CPUS="0-$((SHARDS < NCPU ? SHARDS - 1 : NCPU - 1))"; else SERVER_CPUS=0; fi
fi
# The client on the CPUs the servers do not use when there are any (as bench/compare.sh).
if [ -z "${CLIENT_CPUS:-}" ]; then
  if [ "$SHARDS" -eq 1 ] && [ "$NCPU" -ge 2 ] && [ "$SERVER_CPUS" = 0 ]; then CLIENT_CPUS=1; else CLIENT_CPUS="0-$((NCPU - 1))"; fi
fi
SC_PORT="${SC_PORT:-8150}"
RD_PORT="${RD_PORT:-8151}"
CLK_TCK=$(getconf CLK_TCK)

if [ -z "${SLOTCORE_BIN:-}" ]; then
  cargo build --profile dist --quiet
  SLOTCORE_BIN=./target/dist/slotcore
fi
work=$(mktemp -d "${AOF_DIR:-/tmp}/aof-bench.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
wait_port() {
  for _ in $(seq 1 200); do redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.05; done
  echo "server on $1 did not start" >&2; exit 1
}

# aof_args MODE -> server arguments for that mode
aof_args() {
  case $1 in
    off) echo "--appendonly no" ;;
    *) echo "--appendonly yes --appendfsync $1" ;;
  esac
}

# fsync/fdatasync calls of a process are counted with perf's syscall tracepoints when they work.
COUNT_FSYNCS=no
if perf stat -x, -e syscalls:sys_enter_fdatasync -- true >/dev/null 2>&1; then COUNT_FSYNCS=yes; fi

# bench NAME PORT PID MODE -> "name mode rps p50 p99 cpu_us fsyncs_per_1000_req"
bench() {
  local name=$1 port=$2 pid=$3 mode=$4 before after csv perfpid="" fsyncs="n/a"
  redis-cli -p "$port" flushall >/dev/null
  if [ "$COUNT_FSYNCS" = yes ]; then
    perf stat -x, -o "$work/perf-$name-$mode" -e syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync -p "$pid" &
    perfpid=$!
    sleep 0.3
  fi
  before=$(cpu_ticks "$pid")
  csv=$(taskset -c "$CLIENT_CPUS" redis-benchmark -p "$port" -n "$N" -c "$CLIENTS" -P "$PIPELINE" -r 1000000 --csv -t set 2>/dev/null | tail -n 1)
  after=$(cpu_ticks "$pid")
  if [ -n "$perfpid" ]; then
    kill -INT "$perfpid"; wait "$perfpid" 2>/dev/null || true
    fsyncs=$(awk -F, -v n="$N" '$3 ~ /sys_enter_f/ { c += $1 } END { printf "%.1f", c * 1000 / n }' "$work/perf-$name-$mode")
  fi
  local rps p50 p99 cpu
  rps=$(echo "$csv" | awk -F'","' '{print $2}')
  p50=$(echo "$csv" | awk -F'","' '{print $5}')
  p99=$(echo "$csv" | awk -F'","' '{print $7}' | tr -d '"')
  cpu=$(awk -v a="$after" -v b="$before" -v n="$N" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (a - b) / hz * 1e6 / n }')
  echo "$name $mode $rps $p50 $p99 $cpu $fsyncs"
}

echo "# SET with the AOF: $(date -u +%F), $NCPU CPUs, redis-benchmark -t set -n $N -c $CLIENTS -P $PIPELINE -r 1000000"
echo "# servers on CPUs $SERVER_CPUS, client on CPUs $CLIENT_CPUS, slotcore shards=$SHARDS, AOF dir on $(df -T "$work" | awk 'NR==2 {print $2, $1}')"
: >"$work/results.txt"
for mode in $MODES; do
  for who in redis slotcore; do
    d="$work/$who-$mode"; mkdir -p "$d"
    if [ "$who" = redis ]; then
      # shellcheck disable=SC2046
      taskset -c "$SERVER_CPUS" redis-server --port "$RD_PORT" --save '' --dir "$d" $(aof_args "$mode") --daemonize no >"$d/log" 2>&1 &
      port=$RD_PORT
    else
      # shellcheck disable=SC2046
      taskset -c "$SERVER_CPUS" "$SLOTCORE_BIN" --port "$SC_PORT" --save '' --dir "$d" --shards "$SHARDS" --pin-cores no $(aof_args "$mode") >"$d/log" 2>&1 &
      port=$SC_PORT
    fi
    pid=$!; pids+=("$pid")
    wait_port "$port"
    bench "$who" "$port" "$pid" "$mode" >>"$work/results.txt" || true
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done

printf '\n| appendfsync | slotcore rps | redis rps | ratio | slotcore p50 ms | redis p50 ms | slotcore p99 ms | redis p99 ms | slotcore CPU µs/req | redis CPU µs/req | slotcore fsyncs/1000 req | redis fsyncs/1000 req |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|---|\n'
for mode in $MODES; do
  r=$(awk -v m="$mode" '$1 == "redis" && $2 == m' "$work/results.txt")
  s=$(awk -v m="$mode" '$1 == "slotcore" && $2 == m' "$work/results.txt")
  read -r _ _ rrps rp50 rp99 rcpu rfs <<<"$r"
  read -r _ _ srps sp50 sp99 scpu sfs <<<"$s"
  ratio=$(awk -v a="$srps" -v b="$rrps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
  printf '| %s | %.0f | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$mode" "$srps" "$rrps" "$ratio" "$sp50" "$rp50" "$sp99" "$rp99" "$scpu" "$rcpu" "$sfs" "$rfs"
done
