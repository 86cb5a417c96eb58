# shellcheck shell=bash
# Sourced by the load benchmarks (scripts/bench-*.sh): builds the release binary, then starts
# a throwaway TLS-only redis-server (client certificates required, a random password) and
# redcloak in front of it, both on free loopback ports; both stop, and the files go, on exit.
# Sets: bin, work, password, redis_port, proxy_port, admin_port (metrics), pids; defines direct_tls_args (the
# redis-cli / redis-benchmark arguments for direct mutual TLS + AUTH).

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
admin_port=$(free_port)
printf 'requirepass %s\n' "$password" >"$work/redis.conf"
redis-server "$work/redis.conf" --port 0 --bind 127.0.0.1 --tls-port "$redis_port" \
  --tls-cert-file "$work/certs/redis.crt" --tls-key-file "$work/certs/redis.key" \
  --tls-ca-cert-file "$work/certs/ca.crt" --tls-auth-clients yes --save '' --appendonly no \
  --logfile "$work/redis.log" --dir "$work" &
pids+=($!)
for _ in $(seq 1 100); do
  grep -q 'Ready to accept' "$work/redis.log" 2>/dev/null && break
  sleep 0.1
done
REDIS_URL="rediss://127.0.0.1:$redis_port" REDIS_PASSWORD="$password" \
  REDIS_ENCRYPTION_KEY="$("$bin" keygen)" REDIS_TLS_CA_CERT="$work/certs/ca.crt" \
  REDIS_TLS_CERT="$work/certs/client.crt" REDIS_TLS_KEY="$work/certs/client.key" \
  REDCLOAK_LISTEN="127.0.0.1:$proxy_port" REDCLOAK_ADMIN_LISTEN="127.0.0.1:$admin_port" REDCLOAK_LOG=warn "$bin" 2>"$work/redcloak.log" &
pids+=($!)
# Connected to Redis, not only listening: PING is answered by redcloak itself and a SET would
# be journaled while Redis is unreachable, but INCR needs Redis.
for _ in $(seq 1 300); do
  [[ $(redis-cli -p "$proxy_port" INCR bench:ready 2>/dev/null) =~ ^[0-9]+$ ]] && break
  sleep 0.1
done
redis-cli -p "$proxy_port" DEL bench:ready >/dev/null

# Direct mutual TLS + AUTH, in database 1 (redcloak uses 0). The password is a throwaway one,
# made above for this run only.
direct_tls_args=(--tls --cacert "$work/certs/ca.crt" --cert "$work/certs/client.crt"
  --key "$work/certs/client.key" -h 127.0.0.1 -p "$redis_port" -a "$password")
