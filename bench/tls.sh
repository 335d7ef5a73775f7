#!/usr/bin/env bash
# The cost of TLS per request: redis-benchmark over plain TCP and over TLS (`--tls`, TLS 1.3
# with the certificates gen-test-certs.sh would make), against slotcore (one shard) and a real
# redis-server, both on the same CPUs, one at a time. Prints requests/s and server CPU time per
# request (utime+stime from /proc divided by requests) for each.
#
#   N=100000 TESTS=set,get bash bench/tls.sh
set -euo pipefail
cd "$(dirname "$0")/.."

N="${N:-100000}"
CLIENTS="${CLIENTS:-50}"
TESTS="${TESTS:-set,get}"
PIPELINE="${PIPELINE:-1}"
SERVER_CPUS="${SERVER_CPUS:-0}"
PORT="${PORT:-17390}"
TLS_PORT="${TLS_PORT:-17391}"
CLK_TCK=$(getconf CLK_TCK)

cargo build --profile dist --quiet
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# Certificates: a CA, a server and a client certificate (as utils/gen-test-certs.sh).
(
  cd "$work"
  openssl genrsa -out ca.key 2048 2>/dev/null
  openssl req -x509 -new -nodes -sha256 -key ca.key -days 30 -subj '/O=Redis Test/CN=CA' -out ca.crt
  printf '[ server_cert ]\nkeyUsage = digitalSignature, keyEncipherment\nnsCertType = server\n[ client_cert ]\nkeyUsage = digitalSignature, keyEncipherment\nnsCertType = client\n' >openssl.cnf
  for n in server client; do
    openssl genrsa -out $n.key 2048 2>/dev/null
    openssl req -new -sha256 -subj "/O=Redis Test/CN=$n" -key $n.key |
      openssl x509 -req -sha256 -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
        -extfile openssl.cnf -extensions ${n}_cert -out $n.crt 2>/dev/null
  done
)
tls_conf=(--tls-port "$TLS_PORT" --tls-cert-file "$work/server.crt" --tls-key-file "$work/server.key"
  --tls-ca-cert-file "$work/ca.crt")
cli_tls=(--tls --cacert "$work/ca.crt" --cert "$work/client.crt" --key "$work/client.key")

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

wait_up() {
  for _ in $(seq 1 200); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "server did not start" >&2
  exit 1
}

# bench NAME [TLS args...] -> one line per test
bench() {
  local name=$1
  shift
  for t in ${TESTS//,/ }; do
    local port=$PORT
    [ $# -gt 0 ] && port=$TLS_PORT
    local before after rps
    before=$(cpu_ticks "$pid")
    rps=$(redis-benchmark "$@" -p "$port" -t "$t" -n "$N" -c "$CLIENTS" -P "$PIPELINE" -r 100000 --csv 2>/dev/null |
      awk -F, 'NR==2 {gsub(/"/, "", $2); print $2}')
    after=$(cpu_ticks "$pid")
    awk -v n="$name" -v t="$t" -v r="$rps" -v d=$((after - before)) -v hz="$CLK_TCK" -v req="$N" \
      'BEGIN { printf "%-22s %-5s %10.0f rps %8.2f us/req server CPU\n", n, t, r, d / hz * 1e6 / req }'
  done
}

run_server() {
  local kind=$1
  if [ "$kind" = slotcore ]; then
    taskset -c "$SERVER_CPUS" target/dist/slotcore --port "$PORT" --shards 1 --pin-cores no \
      --save "" --dir "$work" "${tls_conf[@]}" >"$work/$kind.log" 2>&1 &
  else
    taskset -c "$SERVER_CPUS" redis-server --port "$PORT" --save "" --appendonly no \
      --dir "$work" "${tls_conf[@]}" >"$work/$kind.log" 2>&1 &
  fi
  pid=$!
  wait_up
  bench "$kind plain"
  bench "$kind tls" "${cli_tls[@]}"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=""
}

echo "N=$N clients=$CLIENTS pipeline=$PIPELINE server CPUs $SERVER_CPUS, $(date -u '+%Y-%m-%d %H:%M UTC')"
run_server slotcore
run_server redis
