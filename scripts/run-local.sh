#!/usr/bin/env bash
# Builds slotcore in release mode and runs a local node in the foreground.
#
#   bash scripts/run-local.sh            # port 7000, one shard per core (minus the control core)
#   PORT=7100 SHARDS=2 bash scripts/run-local.sh
#
# Cluster mode (the six-node local cluster that redis-cli -c can use) is the next milestone;
# until it lands this starts a single standalone node that serves all 16384 slots.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${PORT:-7000}"
SHARDS="${SHARDS:-0}"
DIR="${DIR:-$(pwd)/tmp/node-$PORT}"

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (https://rustup.rs)" >&2
  exit 1
fi
cargo build --release --quiet
mkdir -p "$DIR"

args=(--port "$PORT" --dir "$DIR" --pin-cores no)
if [ "$SHARDS" != "0" ]; then
  args+=(--shards "$SHARDS")
fi

echo "slotcore: starting on 127.0.0.1:$PORT (data dir $DIR)"
echo "slotcore: connect with:  redis-cli -p $PORT"
exec ./target/release/slotcore "${args[@]}"
