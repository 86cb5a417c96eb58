#!/usr/bin/env bash
# Instructions per request in redcloak, counted by valgrind's callgrind (stable on a noisy,
# shared machine where wall times are not): one TLS Redis, redcloak under callgrind, one
# redis-benchmark run per binary given, same workload; prints instructions per request (all of
# redcloak's threads; startup and shutdown included, so use enough requests) and the top
# functions of each profile.
# Usage: scripts/bench-callgrind.sh BINARY… (env: N=20000 P=16 D=100 T=set C=50, EXTRA_ENV="VAR=value …")
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
(($#)) || { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 64; }
for b in "$@"; do
  [[ -x $b && $b != -* ]] || { echo "error: $b is not an executable redcloak binary (see --help)" >&2; exit 64; }
done
command -v valgrind >/dev/null || { echo "error: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
N=${N:-20000} P=${P:-16} D=${D:-100} T=${T:-set} C=${C:-50}
read -ra extra_env <<<"${EXTRA_ENV:-}"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [[ -n ${KEEP:-} ]] || rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
"$1" certs --dir "$work/certs" >/dev/null
password=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
key=$("$1" keygen)
redis_port=$(free_port)
printf 'requirepass %s\n' "$password" >"$work/redis.conf"
redis-server "$work/redis.conf" --port 0 --bind 127.0.0.1 --tls-port "$redis_port" \
  --tls-cert-file "$work/certs/redis.crt" --tls-key-file "$work/certs/redis.key" \
  --tls-ca-cert-file "$work/certs/ca.crt" --tls-auth-clients yes --save '' --appendonly no \
  --logfile "$work/redis.log" --dir "$work" &
pids+=($!)
sleep 0.5
for bin in "$@"; do
  port=$(free_port)
  env REDIS_URL="rediss://127.0.0.1:$redis_port" REDIS_PASSWORD="$password" \
    REDIS_ENCRYPTION_KEY="$key" REDIS_TLS_CA_CERT="$work/certs/ca.crt" \
    REDIS_TLS_CERT="$work/certs/client.crt" REDIS_TLS_KEY="$work/certs/client.key" \
    REDCLOAK_LISTEN="127.0.0.1:$port" REDCLOAK_LOG=warn "${extra_env[@]}" \
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$bin" 2>"$work/vg.log" &
  vg=$!
  pids+=("$vg")
  for _ in $(seq 1 300); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.2; done
  redis-benchmark -h 127.0.0.1 -p "$port" -t "$T" -n "$N" -c "$C" -d "$D" -r 100000 -P "$P" -q >/dev/null 2>&1
  kill -INT "$vg"
  wait "$vg" || true
  total=$(callgrind_annotate "$work/cg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ && !done { gsub(/,/, "", $1); print $1; done = 1 }')
  echo "$bin: $total instructions, $((total / N)) per request ($T -n $N -c $C -d $D -P $P)"
  callgrind_annotate --inclusive=no "$work/cg.out" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | head -"${TOP:-12}" || true
  rm -f "$work/cg.out"
done
