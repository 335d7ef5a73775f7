#!/usr/bin/env bash
# Builds slotcore in release mode and runs a local six-node cluster (three masters, three
# replicas, all 16384 slots assigned) on 127.0.0.1, then waits until Ctrl-C, which stops it.
#
#   bash scripts/run-local.sh                 # ports 7000-7005, bus ports 17000-17005
#   PORT=7100 SHARDS=2 bash scripts/run-local.sh
#
# Installs redis-tools (for redis-cli) when it is missing. Node directories (nodes.conf,
# logs) are under tmp/cluster-PORT; a second run with the same directories restarts the same
# cluster instead of creating a new one.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${PORT:-7000}"
SHARDS="${SHARDS:-2}"
TIMEOUT="${NODE_TIMEOUT:-5000}"
ROOT="${DIR:-$(pwd)/tmp/cluster-$PORT}"

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 1
fi
if ! command -v redis-cli >/dev/null 2>&1; then
  echo "==> installing redis-tools (redis-cli)"
  SUDO=""
  [ "$(id -u)" != 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-tools >/dev/null
fi
cargo build --profile dist --quiet

pids=()
stop() {
  trap - EXIT INT TERM
  echo
  echo "slotcore: stopping the cluster"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT INT TERM

addrs=()
fresh=1
for i in 0 1 2 3 4 5; do
  p=$((PORT + i))
  d="$ROOT/$p"
  mkdir -p "$d"
  [ -s "$d/nodes.conf" ] && fresh=0
  ./target/dist/slotcore --port "$p" --dir "$d" --cluster-enabled yes \
    --cluster-node-timeout "$TIMEOUT" --shards "$SHARDS" --pin-cores no \
    --logfile "$d/slotcore.log" &
  pids+=($!)
  addrs+=("127.0.0.1:$p")
done

for i in 0 1 2 3 4 5; do
  p=$((PORT + i))
  for _ in $(seq 1 100); do
    redis-cli -p "$p" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
done

if [ "$fresh" = 1 ]; then
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes
else
  echo "slotcore: restarting the existing cluster in $ROOT"
  for _ in $(seq 1 100); do
    redis-cli -p "$PORT" cluster info 2>/dev/null | grep -q 'cluster_state:ok' && break
    sleep 0.2
  done
fi
redis-cli -p "$PORT" cluster info | head -1
echo
echo "slotcore: six nodes on 127.0.0.1:$PORT-$((PORT + 5)) (logs in $ROOT/*/slotcore.log)"
echo "slotcore: connect with:  redis-cli -c -p $PORT"
echo "slotcore: press Ctrl-C to stop"
wait
