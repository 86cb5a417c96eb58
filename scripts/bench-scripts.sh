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
    -h|--help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
done

# shellcheck source=lib/bench-stack.sh
. scripts/lib/bench-stack.sh

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

# Emulated read-modify-write commands (redcloak reads under WATCH, computes, writes back
# encrypted in MULTI/EXEC): INCR on one hot key and on 10,000 keys, HINCRBY on one field.
metric() { curl -fsS "http://127.0.0.1:$admin_port/metrics" | awk -v m="$1" '$1 ~ "^"m { s += $2 } END { print s + 0 }'; }
rps() { awk -F'"' '/"/ { print int($4) }' | tail -1; }
echo "Emulated counters, redis-benchmark -c 50 -n $((jobs * 4)) (requests/s):"
printf '  %-30s %12s %12s %7s\n' workload direct redcloak ratio
for spec in "INCR hot:counter" "INCR counter:__rand_int__" "HINCRBY hot:hash field 1"; do
  # shellcheck disable=SC2086
  d=$(redis-benchmark "${direct_tls_args[@]}" --dbnum 1 -c 50 -n $((jobs * 4)) -r 10000 --csv $spec | rps)
  # shellcheck disable=SC2086
  p=$(redis-benchmark -h 127.0.0.1 -p "$proxy_port" -c 50 -n $((jobs * 4)) -r 10000 --csv $spec | rps)
  printf '  %-30s %12d %12d %7.2f\n' "$spec" "$d" "$p" "$(awk -v a="$p" -v b="$d" 'BEGIN { print a / b }')"
done
echo "  retries under contention: $(metric redcloak_emulation_retries_total), gave up: $(metric redcloak_emulation_gave_up_total)"
