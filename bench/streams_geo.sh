#!/usr/bin/env bash
# Streams and geo side by side: slotcore (one shard) and a real redis-server, same CPU, same
# redis-benchmark arguments.
#
#   bash bench/streams_geo.sh              # N=200000
#   N=50000 PIPELINE=16 bash bench/streams_geo.sh
#
# Measures, per server:
# - XADD s * f v                  throughput (redis-benchmark, -P $PIPELINE)
# - XREADGROUP GROUP g c COUNT 1 STREAMS s >  followed by XACK of what was read: the
#   consumer side of a work queue (redis-benchmark runs XREADGROUP; the acks are sent by a
#   pipelined redis-cli run over the ids of the pending list, timed apart and reported as one
#   combined rate: entries read and acked per second)
# - stream memory per entry: used_memory growth over N XADDs of one 16-byte field/value pair
#   into one stream, divided by N
# - GEOSEARCH (FROMLONLAT, BYRADIUS 200 km, ASC, COUNT 10) over 100k members spread over a
#   10x10 degree square
# Prints one markdown table; the numbers are this machine's, see bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

N="${N:-200000}"
PIPELINE="${PIPELINE:-16}"
CLIENTS="${CLIENTS:-50}"
SERVER_CPUS="${SERVER_CPUS:-0}"
SC_PORT="${SC_PORT:-8560}"
RD_PORT="${RD_PORT:-8561}"
BIN="${BIN:-target/dist/slotcore}"

[ -x "$BIN" ] || cargo build --profile dist --quiet
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_port() {
  for _ in $(seq 1 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "server on $1 did not start" >&2; exit 1
}

rps() { # redis-benchmark -q output -> requests per second
  redis-benchmark -p "$1" -n "$2" -c "$CLIENTS" -P "$PIPELINE" -q "${@:3}" 2>/dev/null | tr '\r' '\n' |
    awk '/requests per second/ {for (i = 1; i <= NF; i++) if ($i == "requests") print $(i - 1)}' | tail -1
}

used() { redis-cli -p "$1" info memory | awk -F: '/^used_memory:/ {print $2+0}'; }

now_ms() { date +%s%3N; }

measure() { # NAME PORT -> "xadd read readack bytes_per_entry geosearch"
  local port=$2
  redis-cli -p "$port" flushall >/dev/null
  local xadd
  xadd=$(rps "$port" "$N" xadd bench:s '*' field:0123456789 value:012345678)
  # Memory per entry: a fresh stream of N entries written by one pipelined client.
  redis-cli -p "$port" del bench:m >/dev/null
  local before after
  before=$(used "$port")
  redis-benchmark -p "$port" -n "$N" -c 1 -P 64 -q xadd bench:m '*' field:0123456789 value:012345678 >/dev/null 2>&1
  after=$(used "$port")
  local per_entry=$(((after - before) / N))
  # Consumer side: XREADGROUP reads every entry of bench:s once, then XACK of all of them.
  redis-cli -p "$port" xgroup create bench:s g 0 >/dev/null
  local t0 t1 t2 read_rps
  t0=$(now_ms)
  read_rps=$(rps "$port" "$N" xreadgroup group g c count 1 streams bench:s '>')
  t1=$(now_ms)
  redis-cli -p "$port" xpending bench:s g - + "$N" | awk 'NR % 4 == 1 {print "XACK bench:s g " $0}' >"$work/acks"
  redis-cli -p "$port" --pipe <"$work/acks" >/dev/null
  t2=$(now_ms)
  local acked
  acked=$(wc -l <"$work/acks")
  local read_ack=$((acked * 1000 / ((t2 - t0) > 0 ? (t2 - t0) : 1)))
  # GEOSEARCH: 100k members on a grid, searched around the middle.
  redis-cli -p "$port" del bench:g >/dev/null
  awk 'BEGIN { for (i = 0; i < 100000; i++) printf "GEOADD bench:g %.6f %.6f m%d\n", (i % 317) * 10 / 317, int(i / 317) * 10 / 316, i }' |
    redis-cli -p "$port" --pipe >/dev/null
  local geo
  geo=$(rps "$port" $((N / 4)) geosearch bench:g fromlonlat 5 5 byradius 200 km asc count 10)
  echo "$xadd $read_rps $read_ack $per_entry $geo"
}

start() { # NAME PORT -> pid
  case $1 in
    slotcore) taskset -c "$SERVER_CPUS" "$BIN" --port "$2" --dir "$work" --save "" --shards 1 --pin-cores no >"$work/sc.log" 2>&1 & ;;
    redis) taskset -c "$SERVER_CPUS" redis-server --port "$2" --dir "$work" --save "" --appendonly no >"$work/rd.log" 2>&1 & ;;
  esac
  pids+=($!)
  wait_port "$2"
}

start slotcore "$SC_PORT"
read -r s_xadd s_read s_ra s_mem s_geo < <(measure slotcore "$SC_PORT")
start redis "$RD_PORT"
read -r r_xadd r_read r_ra r_mem r_geo < <(measure redis "$RD_PORT")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo "| measure (N=$N, -c $CLIENTS, -P $PIPELINE) | slotcore | redis-server | ratio |"
echo "|---|---|---|---|"
echo "| XADD rps | $s_xadd | $r_xadd | $(ratio "$s_xadd" "$r_xadd") |"
echo "| XREADGROUP COUNT 1 rps | $s_read | $r_read | $(ratio "$s_read" "$r_read") |"
echo "| XREADGROUP + XACK entries/s | $s_ra | $r_ra | $(ratio "$s_ra" "$r_ra") |"
echo "| stream bytes per entry (used_memory) | $s_mem | $r_mem | $(ratio "$s_mem" "$r_mem") |"
echo "| GEOSEARCH BYRADIUS 200 km COUNT 10 rps (100k members) | $s_geo | $r_geo | $(ratio "$s_geo" "$r_geo") |"
