#!/usr/bin/env bash
# Rebuilds the seed corpora in fuzz/seeds/ from a real redis-server 7.0 (one port P and its bus
# port P+10000 must be free): RDB snapshots (`redis-cli --rdb`, listpack and hashtable
# encodings, expiries, a stream, a function), DUMP payloads of every type, an appendonlydir
# (RDB preamble and plain), redis.conf files, client request bytes and cluster bus messages.
set -euo pipefail
P=${1:-8100}
HERE=$(cd "$(dirname "$0")" && pwd)
S=$HERE/seeds
W=$(mktemp -d)
trap 'kill $(cat $W/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf $W' EXIT
mkdir -p $S/{resp,bus,rdb,restore,aof,config}
cli() { redis-cli -p $P "$@"; }

redis-server --port $P --dir $W --daemonize yes --pidfile $W/a.pid --save '' --appendonly yes \
  --appenddirname aofdir --aof-use-rdb-preamble yes --logfile $W/a.log
for _ in $(seq 50); do cli ping >/dev/null 2>&1 && break; sleep 0.1; done
fill() {
  cli flushall >/dev/null
  cli set s hello >/dev/null; cli set n 12345 >/dev/null; cli set big "$(head -c 300 /dev/zero | tr '\0' x)" >/dev/null
  cli set e v px 4102444800000 >/dev/null
  cli rpush l a b 1 2 >/dev/null; cli sadd si 1 2 3 >/dev/null; cli sadd ss a b c >/dev/null
  cli hset h f v f2 2 >/dev/null; cli zadd z 1 a 2.5 b -inf c >/dev/null
  cli xadd x '*' f v >/dev/null; cli xadd x '*' g w >/dev/null; cli xgroup create x g 0 >/dev/null
  cli xreadgroup group g c count 1 streams x '>' >/dev/null
  cli pfadd hll a b c >/dev/null; cli setbit bits 100 1 >/dev/null
  cli function load replace "#!lua name=lib
redis.register_function('f', function() return 1 end)" >/dev/null
  cli select 1 >/dev/null
}
fill
cli config set list-max-listpack-size 2 >/dev/null; cli config set set-max-intset-entries 2 >/dev/null
cli config set hash-max-listpack-entries 1 >/dev/null; cli config set zset-max-listpack-entries 1 >/dev/null
for i in $(seq 8); do cli rpush L$i $i x y z >/dev/null; cli sadd SI 1$i >/dev/null; cli hset H f$i v >/dev/null; cli zadd Z $i m$i >/dev/null; done
cli --rdb $S/rdb/redis-cli-rdb.rdb >/dev/null
cli config set rdbcompression no >/dev/null; cli --rdb $S/rdb/uncompressed.rdb >/dev/null
for k in s n big e l si ss h z x hll bits L1 SI H Z; do
  printf 'DUMP %s\r\n' $k | redis-cli -p $P --raw | head -c -1 > $S/restore/$k.dump
done
rewritten() {
  cli bgrewriteaof >/dev/null
  for _ in $(seq 100); do
    cli info persistence | grep -q 'aof_rewrite_in_progress:0' && cli info persistence | grep -q 'aof_rewrite_scheduled:0' && break
    sleep 0.1
  done
}
rewritten
printf 'SET after rewrite\r\nMULTI\r\nINCR n\r\nEXEC\r\n' | redis-cli -p $P >/dev/null
for f in $W/aofdir/*; do cp $f $S/aof/preamble-$(basename $f); done
cli config set aof-use-rdb-preamble no >/dev/null; rewritten; ls $W/aofdir
for f in $W/aofdir/*.base.aof; do cp $f $S/aof/plain-$(basename $f); done
kill $(cat $W/a.pid); sleep 0.5

cp /etc/redis/redis.conf $S/config/debian-redis.conf
printf 'port 7000\ncluster-enabled yes\nsave 900 1\nsave ""\nmaxmemory 2mb\nuser alice on >pw ~* +@all\nrename-command FLUSHALL ""\n' > $S/config/small.conf

printf 'PING\r\n' > $S/resp/inline; printf '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n' > $S/resp/pipeline
printf 'set "a b" '"'"'c\\'"'"'d'"'"' "\\x41\\n"\r\n' > $S/resp/quoted; printf '*-1\r\n*0\r\n\r\n*1\r\n$0\r\n\r\n' > $S/resp/empty
head -c 3000 $S/aof/plain-*.base.aof > $S/resp/aof-stream

# Cluster bus: a 2-node redis-server cluster MEETs a listener that records what it receives.
for n in 1 2; do
  mkdir -p $W/n$n
  redis-server --port $((P + n)) --dir $W/n$n --cluster-enabled yes --daemonize yes --pidfile $W/n$n.pid \
    --save '' --cluster-announce-hostname node$n.example --logfile $W/n$n.log
done
for _ in $(seq 50); do redis-cli -p $((P + 2)) ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p $((P + 1)) cluster addslots 0 1 2 100 16383 >/dev/null
redis-cli -p $((P + 1)) cluster meet 127.0.0.1 $((P + 2)) >/dev/null; sleep 2
/usr/bin/python3 - $((P + 3 + 10000)) $S/bus <<'PY' &
import socket, sys
port, out = int(sys.argv[1]), sys.argv[2]
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port)); srv.listen(4); srv.settimeout(6)
n = 0
try:
    while n < 4:
        c, _ = srv.accept(); c.settimeout(3); buf = b""
        try:
            while True:
                d = c.recv(65536)
                if not d: break
                buf += d
                while len(buf) >= 8 and len(buf) >= int.from_bytes(buf[4:8], "big"):
                    l = int.from_bytes(buf[4:8], "big")
                    open(f"{out}/captured-{n}-{int.from_bytes(buf[12:14], 'big')}", "wb").write(buf[:l])
                    buf = buf[l:]; n += 1
        except socket.timeout: pass
except socket.timeout: pass
PY
sleep 0.5
redis-cli -p $((P + 1)) cluster meet 127.0.0.1 $((P + 3)) >/dev/null
redis-cli -p $((P + 2)) cluster meet 127.0.0.1 $((P + 3)) >/dev/null
wait %1 || true
ls $S/*/ | head -100
