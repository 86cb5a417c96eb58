#!/usr/bin/env bash
# Load benchmark: redis-benchmark against direct mutual-TLS Redis and against redcloak (which
# adds value and member encryption and its own mTLS hop) on the same machine, in one run, and the
# ratios: SET/GET, then SADD/SISMEMBER/ZADD/ZRANGE (12-byte members, deterministic encryption).
# Everything runs on loopback with a throwaway PKI, password and key; processes stop on exit.
#
# Usage: scripts/bench.sh [-n REQUESTS] [-c CLIENTS] [-d VALUE_BYTES] [--help]
set -euo pipefail
cd "$(dirname "$0")/.."

n=100000 c=50 d=100
while (($#)); do
  case "$1" in
    -n) n=$2; shift 2 ;;
    -c) c=$2; shift 2 ;;
    -d) d=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

direct=(redis-benchmark -h 127.0.0.1 -p "$redis_port" --tls --cacert "$work/certs/ca.crt"
        --cert "$work/certs/client.crt" --key "$work/certs/client.key" -a "$password"
        --dbnum 1)  # apart from redcloak's db 0: plaintext written directly would not decrypt
proxied=(redis-benchmark -h 127.0.0.1 -p "$proxy_port")
# shellcheck disable=SC2054 # -t takes a comma-separated list of tests
common=(-t set,get -n "$n" -c "$c" -d "$d" -r 100000 --csv)

rps() { # prints "SET <rps>\nGET <rps>" from redis-benchmark --csv output
  awk -F'","' 'NR>1 { gsub(/"/, "", $1); gsub(/"/, "", $2); print $1, $2 }'
}

echo "redis-benchmark: $n requests, $c clients, $d-byte values, $(nproc) cores, $(redis-server --version | awk '{print $3}')"
printf '%-10s %-8s %14s %14s %8s\n' pipeline command "direct mTLS" "redcloak" ratio
for p in 1 16; do
  d_out=$("${direct[@]}" "${common[@]}" -P "$p" 2>/dev/null | rps)
  r_out=$("${proxied[@]}" "${common[@]}" -P "$p" 2>/dev/null | rps)
  while read -r cmd drps; do
    rrps=$(awk -v c="$cmd" '$1 == c { print $2 }' <<<"$r_out")
    ratio=$(awk -v a="$rrps" -v b="$drps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
    printf '%-10s %-8s %14s %14s %8s\n' "-P $p" "$cmd" "$drps" "$rrps" "$ratio"
  done <<<"$d_out"
done
# Members: the commands an application's job queue or index uses most, with 14-byte members
# ("m:" + 12 digits). SADD and ZADD fill the set and the sorted set that SISMEMBER and ZRANGE
# (10 members back, each decrypted) then read.
members=("SADD bench:set m:__rand_int__" "SISMEMBER bench:set m:__rand_int__"
         "ZADD bench:zset __rand_int__ m:__rand_int__" "ZRANGE bench:zset 0 9")
for p in 1 16; do
  for line in "${members[@]}"; do
    read -ra cmd <<<"$line"
    drps=$("${direct[@]}" -n "$n" -c "$c" -r 100000 --csv -P "$p" "${cmd[@]}" 2>/dev/null | rps | awk '{ print $NF }')
    rrps=$("${proxied[@]}" -n "$n" -c "$c" -r 100000 --csv -P "$p" "${cmd[@]}" 2>/dev/null | rps | awk '{ print $NF }')
    ratio=$(awk -v a="$rrps" -v b="$drps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
    printf '%-10s %-10s %12s %14s %8s\n' "-P $p" "${cmd[0]}" "$drps" "$rrps" "$ratio"
  done
done
# What the members cost Redis in memory: the set SADD filled, per member (MEMORY USAGE counts the
# hash table and every member's allocation).
cli=(redis-cli --tls --cacert "$work/certs/ca.crt" --cert "$work/certs/client.crt"
     --key "$work/certs/client.key" -p "$redis_port" -a "$password" --no-auth-warning)
for db in 1 0; do
  bytes=$("${cli[@]}" -n "$db" MEMORY USAGE bench:set SAMPLES 0)
  card=$("${cli[@]}" -n "$db" SCARD bench:set)
  label=$([[ $db == 1 ]] && echo "direct (plaintext)" || echo "redcloak (AES-SIV)")
  awk -v l="$label" -v b="$bytes" -v c="$card" \
    'BEGIN { printf "memory: bench:set %-20s %9d bytes, %6d members, %6.1f bytes/member\n", l, b, c, b / c }'
done
if grep -q ERROR "$work/redcloak.log"; then
  echo "redcloak logged errors:"; grep ERROR "$work/redcloak.log" | head
fi
