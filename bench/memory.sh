#!/usr/bin/env bash
# Memory per key of slotcore (one shard) next to a real redis-server, for the same data.
#
#   bash bench/memory.sh            # N=1000000 small hashes of 10 fields, N sorted sets of 10 members
#   bash bench/memory.sh 200000     # a smaller N
#   DATASETS=zset bash bench/memory.sh   # only some of string,hash,zset,list,intset
#   DATASETS=bigzset bash bench/memory.sh  # one sorted set of N members (skiplist encoding)
#   SLOTCORE_BIN=/tmp/old/slotcore bash bench/memory.sh  # another build (no cargo build), e.g. a
#                                                         # baseline for before/after numbers
#
# For each data set both servers are started fresh on loopback ports picked here (free ones from
# SC_PORT/RD_PORT up), the same generated RESP stream is loaded into both with
# `redis-cli --pipe`, and `used_memory` from INFO memory is read before and after. slotcore's
# used_memory is jemalloc's `stats.allocated` (all live heap bytes of the process, read through
# tikv-jemalloc-ctl after an epoch advance); redis-server's is its zmalloc count, also
# jemalloc-backed. The table gives the growth per key, the encoding each server reports for a
# sample key, and the ratio slotcore / redis-server.
#
# Data: hashes `h:I` with fields field0..field9 and values `value:K` (7-11 bytes); sorted sets
# `z:I` with members member:K (8-12 bytes) and integer or .5 scores. Both fit Redis's listpack
# thresholds, as the issue asks ("small" hashes and sorted sets). The `string` row (SET s:I
# value:K) is the baseline: what a key costs with a value of about 10 bytes. Lists `l:I` get 10
# elements `value:K` by RPUSH (Redis: one quicklist node); sets `i:I` get 10 integers below 30000
# by SADD (Redis: an intset of int16).
set -euo pipefail
cd "$(dirname "$0")/.."

N="${1:-${N:-1000000}}"
DATASETS="${DATASETS:-string,hash,intset,zset,list}"
SLOTCORE_BIN="${SLOTCORE_BIN:-}"
SC_PORT="${SC_PORT:-17479}"
RD_PORT="${RD_PORT:-17480}"

[ -n "$SLOTCORE_BIN" ] || { cargo build --profile dist --quiet; SLOTCORE_BIN=./target/dist/slotcore; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# First port >= $1 that nothing listens on.
free_port() {
  local p=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}

wait_port() {
  for _ in $(seq 1 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "server on $1 did not start" >&2; exit 1
}

used_memory() { redis-cli -p "$1" info memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }'; }

gen() {
  case $1 in
    hash) mawk -v n="$N" 'BEGIN {
        for (i = 0; i < n; i++) {
          k = "h:" i; printf "*22\r\n$4\r\nHSET\r\n$%d\r\n%s\r\n", length(k), k
          for (j = 0; j < 10; j++) {
            f = "field" j; v = "value:" (i * 10 + j) % 100000
            printf "$%d\r\n%s\r\n$%d\r\n%s\r\n", length(f), f, length(v), v
          }
        } }' ;;
    string) mawk -v n="$N" 'BEGIN {
        for (i = 0; i < n; i++) {
          k = "s:" i; v = "value:" i % 100000
          printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v
        } }' ;;
    list) mawk -v n="$N" 'BEGIN {
        for (i = 0; i < n; i++) {
          k = "l:" i; printf "*12\r\n$5\r\nRPUSH\r\n$%d\r\n%s\r\n", length(k), k
          for (j = 0; j < 10; j++) {
            v = "value:" (i * 10 + j) % 100000
            printf "$%d\r\n%s\r\n", length(v), v
          }
        } }' ;;
    intset) mawk -v n="$N" 'BEGIN {
        for (i = 0; i < n; i++) {
          k = "i:" i; printf "*12\r\n$4\r\nSADD\r\n$%d\r\n%s\r\n", length(k), k
          for (j = 0; j < 10; j++) {
            v = (i * 7 + j * 3001) % 30000
            printf "$%d\r\n%s\r\n", length(v), v
          }
        } }' ;;
    bigzset) mawk -v n="$N" 'BEGIN {
        for (i = 0; i < n; i += 100) {
          c = (n - i < 100) ? n - i : 100
          printf "*%d\r\n$4\r\nZADD\r\n$3\r\nbig\r\n", 2 + 2 * c
          for (j = i; j < i + c; j++) {
            s = (j * 7919) % 1000003; m = "member:" j
            printf "$%d\r\n%s\r\n$%d\r\n%s\r\n", length(s), s, length(m), m
          }
        } }' ;;
    zset) mawk -v n="$N" 'BEGIN {
        for (i = 0; i < n; i++) {
          k = "z:" i; printf "*22\r\n$4\r\nZADD\r\n$%d\r\n%s\r\n", length(k), k
          for (j = 0; j < 10; j++) {
            s = ((i * 7 + j * 13) % 1000) (j % 2 ? ".5" : ""); m = "member:" (i * 10 + j) % 100000
            printf "$%d\r\n%s\r\n$%d\r\n%s\r\n", length(s), s, length(m), m
          }
        } }' ;;
  esac
}

# measure NAME PORT DATASET -> "before after encoding"
measure() {
  local port=$2 ds=$3 before after enc key
  before=$(used_memory "$port")
  redis-cli -p "$port" --pipe <"$work/$ds.resp" >"$work/$1-$ds.pipe" 2>&1 ||
    { cat "$work/$1-$ds.pipe" >&2; exit 1; }
  grep -q 'errors: 0' "$work/$1-$ds.pipe" || { cat "$work/$1-$ds.pipe" >&2; exit 1; }
  local keys
  keys=$(redis-cli -p "$port" dbsize)
  [ "$keys" = "$N" ] || [ "$ds" = bigzset ] || { echo "$1: dbsize $keys, expected $N" >&2; exit 1; }
  sleep 0.5
  after=$(used_memory "$port")
  key="${ds:0:1}:1"
  [ "$ds" != bigzset ] || key=big
  enc=$(redis-cli -p "$port" object encoding "$key")
  echo "$before $after $enc"
}

echo "# slotcore (1 shard) vs redis-server $(redis-server --version | awk '{print $3}' | cut -d= -f2): used_memory, N=$N, $(date -u +%F), $(nproc) CPUs"
printf '\n| data set | slotcore used_memory | redis used_memory | slotcore bytes/key | redis bytes/key | ratio | encodings (slotcore / redis) |\n'
printf '|---|---|---|---|---|---|---|\n'
for ds in ${DATASETS//,/ }; do
  gen "$ds" >"$work/$ds.resp"
  rd_port=$(free_port "$RD_PORT")
  redis-server --port "$rd_port" --save '' --appendonly no --dir "$work" --daemonize no >"$work/redis.log" 2>&1 &
  rd_pid=$!; pids+=("$rd_pid")
  sc_port=$(free_port "$SC_PORT")
  [ "$sc_port" != "$rd_port" ] || sc_port=$(free_port $((rd_port + 1)))
  "$SLOTCORE_BIN" --port "$sc_port" --save '' --dir "$work" --shards 1 --pin-cores no >"$work/slotcore.log" 2>&1 &
  sc_pid=$!; pids+=("$sc_pid")
  wait_port "$rd_port"; wait_port "$sc_port"
  read -r rb ra renc < <(measure redis "$rd_port" "$ds")
  read -r sb sa senc < <(measure slotcore "$sc_port" "$ds")
  kill "$rd_pid" "$sc_pid"; wait "$rd_pid" "$sc_pid" 2>/dev/null || true
  rm -f "$work/$ds.resp"
  awk -v ds="$ds" -v n="$N" -v sb="$sb" -v sa="$sa" -v rb="$rb" -v ra="$ra" -v se="$senc" -v re="$renc" 'BEGIN {
    s = (sa - sb) / n; r = (ra - rb) / n
    label = (ds == "hash") ? "hashes of 10 fields" : (ds == "zset") ? "sorted sets of 10 members" : (ds == "list") ? "lists of 10 elements" : (ds == "intset") ? "sets of 10 small integers" : (ds == "bigzset") ? "members of one sorted set (per member)" : "strings (baseline: per-key overhead)"
    printf "| %d %s | %d | %d | %.1f | %.1f | %.2f | %s / %s |\n", n, label, sa, ra, s, r, (r > 0 ? s / r : 0), se, re
  }'
done
