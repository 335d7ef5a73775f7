#!/usr/bin/env bash
# Side-by-side throughput of slotcore and a real redis-server on this machine.
#
#   bash bench/compare.sh                 # one slotcore shard vs redis-server
#   SHARDS=2 bash bench/compare.sh        # two shards (each on its own CPU when CPUS has two)
#   N=2000000 TESTS=set,get bash bench/compare.sh
#   N=50000 bash bench/compare.sh         # the whole default list, short
#   SLOTCORE_BIN=/tmp/old/slotcore bash bench/compare.sh   # another build (no cargo build then)
#   KEYSPACE=100000 bash bench/compare.sh # random keys (-r 100000): a table, not one hot key
#   CLUSTER=1 bash bench/compare.sh       # both servers as one-node clusters owning every slot
#   FLOOR=1 bash bench/compare.sh         # also the socket-work floor (bench/floor), two ways
#
# Both servers run under `taskset -c $SERVER_CPUS` (the same CPUs for both, one at a time) and
# redis-benchmark runs with identical arguments against each, under `taskset -c $CLIENT_CPUS`
# (by default the other CPU of a 2-CPU machine with one shard). For every test and pipeline depth
# it prints requests/s for both, the ratio slotcore/redis, p50 and p99 latency for both, and
# server CPU time per request (the run time of every thread of the server process, from /proc,
# divided by requests), and the client's CPU share (redis-benchmark's user + system time over its
# wall time: near 100% means the client, not the server, bounds requests/s). ROUNDS=3 runs everything three times (redis, slotcore, redis, ...) and reports the
# median of each figure.
set -euo pipefail
cd "$(dirname "$0")/.."

N="${N:-500000}"
CLIENTS="${CLIENTS:-50}"
# redis-benchmark's default suite minus the pings and XADD, in its order.
TESTS="${TESTS:-set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,lrange_300,lrange_500,lrange_600,mset}"
# LRANGE replies are 100-600 elements: fewer requests keep those tests as short as the others.
N_LRANGE="${N_LRANGE:-$((N / 10))}"
PIPELINES="${PIPELINES:-1 16}"
# Empty: every request uses the same key (redis-benchmark's default). A number: keys are drawn
# from that many (-r), and GET reads the keys the SET test before it wrote (no FLUSHALL between).
KEYSPACE="${KEYSPACE:-}"
CLUSTER="${CLUSTER:-}"
# Non-empty: each round also runs bench/floor, a server that does only the socket calls (epoll,
# then with io_uring), and prints its CPU per request: what any server pays for them here.
FLOOR="${FLOOR:-}"
FL_PORT="${FL_PORT:-17381}"
SHARDS="${SHARDS:-1}"
NCPU=$(nproc)
if [ -z "${SERVER_CPUS:-}" ]; then
  if [ "$SHARDS" -gt 1 ] && [ "$NCPU" -ge 2 ]; then SERVER_CPUS="0-$((SHARDS < NCPU ? SHARDS - 1 : NCPU - 1))"; else SERVER_CPUS=0; fi
fi
if [ -z "${CLIENT_CPUS:-}" ]; then
  if [ "$SHARDS" -eq 1 ] && [ "$NCPU" -ge 2 ] && [ "$SERVER_CPUS" = 0 ]; then CLIENT_CPUS=1; else CLIENT_CPUS="0-$((NCPU - 1))"; fi
fi
ROUNDS="${ROUNDS:-1}"
SC_PORT="${SC_PORT:-17379}"
RD_PORT="${RD_PORT:-17380}"
CLK_TCK=$(getconf CLK_TCK)

SLOTCORE_BIN="${SLOTCORE_BIN:-}"
if [ -z "$SLOTCORE_BIN" ]; then
  cargo build --profile dist --quiet
  SLOTCORE_BIN=./target/dist/slotcore
fi
if [ -n "$FLOOR" ]; then
  cargo build --release --quiet --manifest-path bench/floor/Cargo.toml
  FLOOR_BIN=./bench/floor/target/release/slotcore-floor
fi
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# Server CPU time in nanoseconds: the run time the scheduler counted for every thread of the
# process (/proc/PID/task/*/schedstat, nanosecond resolution). Where the kernel has no
# schedstat, utime+stime clock ticks from /proc/PID/stat (10 ms resolution: 0.05 µs per request
# at N=200000, too coarse for pipelined tests).
if [ -r "/proc/$$/schedstat" ]; then
  cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'; }
else
  cpu_ns() { awk -v hz="$CLK_TCK" '{ printf "%.0f", ($14 + $15) / hz * 1e9 }' "/proc/$1/stat"; }
fi

wait_port() {
  for _ in $(seq 1 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "server on $1 did not start" >&2; exit 1
}

# With CLUSTER=1: the arguments that start a server as a cluster node, and the step that gives
# it every slot and waits for cluster_state:ok.
cluster_args() { [ -n "$CLUSTER" ] && echo "--cluster-enabled yes --cluster-config-file $work/nodes-$1.conf"; }
cluster_up() {
  [ -n "$CLUSTER" ] || return 0
  redis-cli -p "$1" cluster addslotsrange 0 16383 >/dev/null
  for _ in $(seq 1 100); do
    redis-cli -p "$1" cluster info | grep -q 'cluster_state:ok' && return 0
    sleep 0.05
  done
  echo "server on $1: cluster_state did not turn ok" >&2; exit 1
}

# run_one NAME PORT PID -> lines "test pipeline rps p50 p99 cpu_us_per_req"
run_one() {
  local name=$1 port=$2 pid=$3
  for p in $PIPELINES; do
    for t in ${TESTS//,/ }; do
      local n=$N bench=(-t "$t")
      [ -n "$KEYSPACE" ] && bench+=(-r "$KEYSPACE")
      case $t in
        # Pops take what the pushes before them left, as in redis-benchmark's own default run.
        lpop | rpop | spop | zpopmin) ;;
        # redis-benchmark -t lrange_K first runs LPUSH with the same -n, which would count in the
        # CPU time: fill the list apart (600 elements of "xxx", as its LPUSH makes) and time the
        # LRANGE alone with the same command line redis-benchmark uses.
        lrange_*)
          redis-cli -p "$port" flushall >/dev/null
          redis-benchmark -p "$port" -t lpush -n 600 -c 1 >/dev/null 2>&1
          n=$N_LRANGE bench=(lrange mylist 0 $((${t#lrange_} - 1))) ;;
        get) [ -n "$KEYSPACE" ] || redis-cli -p "$port" flushall >/dev/null ;;
        *) redis-cli -p "$port" flushall >/dev/null ;;
      esac
      local before after
      before=$(cpu_ns "$pid")
      local csv times
      # The client's own CPU share (bash's `time`: wall, user, system seconds): near 100% means
      # redis-benchmark, not the server, bounds the requests/s.
      times=$({ TIMEFORMAT='%R %U %S'; time taskset -c "$CLIENT_CPUS" redis-benchmark -p "$port" -n "$n" -c "$CLIENTS" -P "$p" --csv "${bench[@]}" >"$work/csv" 2>/dev/null; } 2>&1)
      csv=$(tail -n 1 "$work/csv")
      after=$(cpu_ns "$pid")
      local rps p50 p99
      rps=$(echo "$csv" | awk -F'","' '{print $2}')
      p50=$(echo "$csv" | awk -F'","' '{print $5}')
      p99=$(echo "$csv" | awk -F'","' '{print $7}')
      local cpu_us
      cpu_us=$(awk -v a="$after" -v b="$before" -v n="$n" 'BEGIN { printf "%.3f", (a - b) / 1e3 / n }')
      local client
      client=$(echo "$times" | awk '{ if ($1 > 0) printf "%.0f", ($2 + $3) / $1 * 100; else print 0 }')
      echo "$name ${t^^} $p $rps $p50 $p99 $cpu_us $client"
    done
  done
}

echo "# slotcore vs redis-server: $(date -u '+%F %H:%M UTC'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# redis-benchmark -n $N (LRANGE: -n $N_LRANGE) -c $CLIENTS${KEYSPACE:+ -r $KEYSPACE}${CLUSTER:+, both servers one-node clusters}, servers on CPUs $SERVER_CPUS, client on CPUs $CLIENT_CPUS, slotcore shards=$SHARDS, rounds=$ROUNDS (median)"

for round in $(seq 1 "$ROUNDS"); do
  taskset -c "$SERVER_CPUS" redis-server --port "$RD_PORT" --save '' --appendonly no --dir "$work" --daemonize no $(cluster_args "$RD_PORT") >"$work/redis.log" 2>&1 &
  pids+=($!); rd_pid=$!
  wait_port "$RD_PORT"
  cluster_up "$RD_PORT"
  run_one redis "$RD_PORT" "$rd_pid" >"$work/redis.$round.txt"
  kill "$rd_pid"; wait "$rd_pid" 2>/dev/null || true
  rm -f "$work"/nodes-*.conf

  taskset -c "$SERVER_CPUS" "$SLOTCORE_BIN" --port "$SC_PORT" --save '' --dir "$work" --shards "$SHARDS" --pin-cores no $(cluster_args "$SC_PORT") >"$work/slotcore.log" 2>&1 &
  pids+=($!); sc_pid=$!
  wait_port "$SC_PORT"
  cluster_up "$SC_PORT"
  run_one slotcore "$SC_PORT" "$sc_pid" >"$work/slotcore.$round.txt"
  kill "$sc_pid"; wait "$sc_pid" 2>/dev/null || true
  rm -f "$work"/nodes-*.conf

  if [ -n "$FLOOR" ]; then
    for mode in epoll uring; do
      taskset -c "$SERVER_CPUS" "$FLOOR_BIN" --port "$FL_PORT" --mode "$mode" >"$work/floor.log" 2>&1 &
      pids+=($!); fl_pid=$!
      wait_port "$FL_PORT"
      run_one "floor-$mode" "$FL_PORT" "$fl_pid" >"$work/floor-$mode.$round.txt"
      kill "$fl_pid"; wait "$fl_pid" 2>/dev/null || true
    done
  fi
done

# median NAME -> lines "test pipeline rps p50 p99 cpu client%", the median of each figure over the rounds
median() {
  cat "$work/$1".*.txt | awk '
    { k = $2 " " $3; if (!(k in seen)) { seen[k] = 1; order[++n] = k }
      for (f = 4; f <= 8; f++) v[k, f, ++c[k, f]] = $f }
    END {
      for (i = 1; i <= n; i++) {
        k = order[i]; line = k
        for (f = 4; f <= 8; f++) {
          m = c[k, f]; for (a = 1; a <= m; a++) x[a] = v[k, f, a]
          for (a = 1; a <= m; a++) for (b = a + 1; b <= m; b++) if (x[b] + 0 < x[a] + 0) { t = x[a]; x[a] = x[b]; x[b] = t }
          line = line " " x[int((m + 1) / 2)]
        }
        print line
      }
    }'
}
median slotcore >"$work/slotcore.txt"
median redis >"$work/redis.txt"

printf '\n| test | -P | slotcore rps | redis rps | ratio | slotcore p50/p99 ms | redis p50/p99 ms | slotcore CPU µs/req | redis CPU µs/req | client CPU %% (vs slotcore / redis) |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
paste -d' ' "$work/slotcore.txt" "$work/redis.txt" | while read -r t p src sp50 sp99 scpu scl _ _ rrps rp50 rp99 rcpu rcl; do
  ratio=$(awk -v a="$src" -v b="$rrps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
  printf '| %s | %s | %.0f | %.0f | %s | %s / %s | %s / %s | %s | %s | %s / %s |\n' "$t" "$p" "$src" "$rrps" "$ratio" "$sp50" "$sp99" "$rp50" "$rp99" "$scpu" "$rcpu" "$scl" "$rcl"
done

if [ -n "$FLOOR" ]; then
  median floor-epoll >"$work/floor-epoll.txt"
  median floor-uring >"$work/floor-uring.txt"
  printf '\nThe socket-work floor (bench/floor: the same system calls, no other work; CPU µs per request):\n'
  printf '\n| test | -P | floor, epoll | floor, io_uring | slotcore over the epoll floor | redis over the epoll floor | floor rps (epoll / io_uring) |\n'
  printf '|---|---|---|---|---|---|---|\n'
  paste -d' ' "$work/floor-epoll.txt" "$work/floor-uring.txt" "$work/slotcore.txt" "$work/redis.txt" |
    while read -r t p erps _ _ ecpu _ _ _ urps _ _ ucpu _ _ _ _ _ _ scpu _ _ _ _ _ _ rcpu _; do
      awk -v t="$t" -v p="$p" -v e="$ecpu" -v u="$ucpu" -v s="$scpu" -v r="$rcpu" -v er="$erps" -v ur="$urps" \
        'BEGIN { printf "| %s | %s | %.3f | %.3f | %.3f | %.3f | %.0f / %.0f |\n", t, p, e, u, s - e, r - e, er, ur }'
    done
fi
