#!/usr/bin/env bash
# Scripting and job-queue benchmark: the same workloads against direct mutual-TLS Redis and
# through redcloak (which runs every script itself, on encrypted values), on the same machine,
# in one run: BullMQ jobs added and processed per second (tests/apps/bullmq, unmodified BullMQ
# on ioredis), and 20 clients x 500 runs of a read-increment-write Lua script on one key.
# Everything runs on loopback with a throwaway PKI, password and key; processes stop on exit.
#
# Usage: scripts/bench-scripts.sh [-n JOBS] [--help]
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=5000
while (($#)); do
  case "$1" in
    -n) jobs=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
done

./scripts/ensure-deps.sh >/dev/null
cargo build --release --quiet -p redcloak
bin=$PWD/target/release/redcloak
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
"$bin" certs --dir "$work/certs" >/dev/null
password=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
redis_port=$(free_port)
proxy_port=$(free_port)
printf 'requirepass %s\n' "$password" >"$work/redis.conf"
redis-server "$work/redis.conf" --port 0 --bind 127.0.0.1 --tls-port "$redis_port" \
  --tls-cert-file "$work/certs/redis.crt" --tls-key-file "$work/certs/redis.key" \
  --tls-ca-cert-file "$work/certs/ca.crt" --tls-auth-clients yes --save '' --appendonly no \
  --logfile "$work/redis.log" --dir "$work" &
pids+=($!)
REDIS_URL="rediss://127.0.0.1:$redis_port" REDIS_PASSWORD="$password" \
  REDIS_ENCRYPTION_KEY="$("$bin" keygen)" REDIS_TLS_CA_CERT="$work/certs/ca.crt" \
  REDIS_TLS_CERT="$work/certs/client.crt" REDIS_TLS_KEY="$work/certs/client.key" \
  REDCLOAK_LISTEN="127.0.0.1:$proxy_port" REDCLOAK_LOG=warn "$bin" 2>"$work/redcloak.log" &
pids+=($!)
for _ in $(seq 1 100); do
  redis-cli -p "$proxy_port" PING >/dev/null 2>&1 && break
  sleep 0.1
done

app=tests/apps/bullmq/app.mjs
# Direct: mutual TLS + AUTH, database 1 (apart from redcloak's database 0).
direct() {
  REDIS_TLS_CA="$work/certs/ca.crt" REDIS_TLS_CERT="$work/certs/client.crt" \
    REDIS_TLS_KEY="$work/certs/client.key" REDIS_PASSWORD="$password" REDIS_DB=1 \
    node "$app" "$1" 127.0.0.1 "$redis_port" "${@:2}" | head -1
}
proxied() { node "$app" "$1" 127.0.0.1 "$proxy_port" "${@:2}" | head -1; }

echo "$(nproc) cores, $(redis-server --version | awk '{print $3}'), BullMQ $(node -p "require('./tests/apps/bullmq/node_modules/bullmq/package.json').version")"
echo "BullMQ, $jobs jobs (8 producers adding one job at a time; a Worker with concurrency 16):"
echo "  direct mTLS: $(direct bench "$jobs")"
echo "  redcloak:    $(proxied bench "$jobs")"
echo "Lua read-increment-write script, 20 clients x 500 runs on one key (EVALSHA):"
echo "  direct mTLS: $(direct scripts)"
echo "  redcloak:    $(proxied scripts)"
