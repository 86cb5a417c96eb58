#!/usr/bin/env bash
# Application benchmark: redis-py Lock acquire+release per second (1 client, 8 client
# processes) and `limits` hits per second (fixed window, moving window, sliding window counter),
# against direct mutual-TLS Redis and through redcloak (which runs each Lua script itself), on the
# same machine, in one run, with the ratios. Workload: benches/apps_workload.py.
# Everything runs on loopback with a throwaway PKI, password and key; processes stop on exit.
#
# Usage: scripts/bench-apps.sh [-s SECONDS_PER_MEASUREMENT] [--help]
set -euo pipefail
cd "$(dirname "$0")/.."

secs=5
while (($#)); do
  case "$1" in
    -s) secs=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
done

./scripts/ensure-deps.sh >/dev/null
cargo build --release --quiet -p redcloak
bin=target/release/redcloak
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

echo "apps: ${secs} s per measurement, $(nproc) cores, Redis $(redis-server --version | awk '{print $3}'), $(python3 -c 'import redis, limits; print("redis-py", redis.__version__, "limits", limits.__version__)')"
direct=$(python3 benches/apps_workload.py "$secs" 127.0.0.1 "$redis_port" 1 "$password" \
  "$work/certs/ca.crt" "$work/certs/client.crt" "$work/certs/client.key")
proxied=$(python3 benches/apps_workload.py "$secs" 127.0.0.1 "$proxy_port" 0)
printf '%-32s %14s %14s %7s\n' workload "direct (op/s)" "redcloak" ratio
join <(sort <<<"$direct") <(sort <<<"$proxied") |
  awk '{ printf "%-32s %14d %14d %7.2f\n", $1, $2, $3, $3 / $2 }'
