#!/usr/bin/env bash
# Installs what the tests need (redis-server, redis-tools: the real Redis 7.0 used as client,
# interop peer and oracle; python3-redis: redis-py, the Sentinel-aware client of
# tests/sentinel.rs) when missing, then runs every check and test:
#   cargo fmt --check, cargo clippy (warnings are errors), cargo test --release (unit + integration).
set -euo pipefail
cd "$(dirname "$0")/.."

need_redis=0
for tool in redis-server redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null 2>&1 || need_redis=1
done
/usr/bin/python3 -c 'import redis.sentinel' >/dev/null 2>&1 || need_redis=1
if [ "$need_redis" = 1 ]; then
  echo "==> installing redis-server, redis-tools and python3-redis"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      echo "need root or sudo to install redis-server/redis-tools/python3-redis" >&2; exit 1
    fi
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server redis-tools python3-redis >/dev/null
  # The Debian package starts a system redis on 6379; tests never use that port.
fi
redis-server --version

echo "==> cargo fmt --check"
cargo fmt --check
echo "==> cargo clippy"
cargo clippy --release --all-targets -- -D warnings
echo "==> cargo test --release"
cargo test --release
echo "==> all checks passed"
