#!/usr/bin/env bash
# One command to a secure local Redis for development:
#   - a CA, a Redis server certificate and a redcloak client certificate in certs/
#   - a random Redis password and a Fernet encryption key in .env (REDCLOAK_ENV=development)
#   - a TLS-only redis-server (no plaintext port, client certificates required, requirepass)
#     on 127.0.0.1:6380, data in .run/redis/
# Re-running never replaces an existing key, password or certificate (data and clients would
# break); --force regenerates them after an explicit confirmation.
#
# Usage: scripts/setup-secure-redis.sh [--force] [--no-start] [--help]
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
CERTS="$ROOT/certs"
RUN="$ROOT/.run"
ENV_FILE="$ROOT/.env"
REDIS_PORT="${REDCLOAK_DEV_REDIS_PORT:-6380}"
BIN="$ROOT/target/release/redcloak"

force=0
start=1
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --no-start) start=0 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option $arg (see --help)" >&2; exit 64 ;;
  esac
done

say() { printf '==> %s\n' "$*"; }

if ((force)); then
  echo "--force regenerates the CA, certificates, Redis password and ENCRYPTION KEY."
  echo "Values already stored with the old key become unreadable. Type 'regenerate' to go on:"
  read -r answer
  [[ "$answer" == "regenerate" ]] || { echo "aborted; nothing changed"; exit 1; }
  "$ROOT/scripts/stop-redis.sh" >/dev/null 2>&1 || true
  rm -f "$CERTS"/{ca,redis,client}.{crt,key} "$ENV_FILE"
fi

"$ROOT/scripts/ensure-deps.sh"

if [[ ! -x "$BIN" ]] || [[ -n "$(find "$ROOT/crates" -newer "$BIN" -name '*.rs' -print -quit)" ]]; then
  say "building redcloak (cargo build --release)"
  cargo build --release --quiet -p redcloak
fi

# --- certificates (never overwritten) ---
if [[ -f "$CERTS/ca.crt" && -f "$CERTS/client.key" && -f "$CERTS/redis.key" ]]; then
  say "certificates: keeping the existing ones in certs/"
else
  say "certificates: generating a development CA, Redis and client certificates in certs/"
  "$BIN" certs --dir "$CERTS" >/dev/null
fi

# --- .env (values never replaced) ---
touch "$ENV_FILE"
chmod 600 "$ENV_FILE"
has() { grep -q "^$1=" "$ENV_FILE"; }
add() { has "$1" || { printf '%s=%s\n' "$1" "$2" >>"$ENV_FILE"; say ".env: set $1"; }; }
add REDCLOAK_ENV development
add REDIS_URL "rediss://localhost:$REDIS_PORT"
has REDIS_PASSWORD || add REDIS_PASSWORD "$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
has REDIS_ENCRYPTION_KEY || add REDIS_ENCRYPTION_KEY "$("$BIN" keygen)"
add REDIS_TLS_CA_CERT "$CERTS/ca.crt"
add REDIS_TLS_CERT "$CERTS/client.crt"
add REDIS_TLS_KEY "$CERTS/client.key"

# --- TLS-only redis-server ---
((start)) || { say "not starting Redis (--no-start)"; exit 0; }
mkdir -p "$RUN/redis"
chmod 700 "$RUN"
if [[ -f "$RUN/redis.pid" ]] && kill -0 "$(cat "$RUN/redis.pid")" 2>/dev/null; then
  say "redis-server already running (pid $(cat "$RUN/redis.pid")) on 127.0.0.1:$REDIS_PORT (TLS)"
  exit 0
fi
password=$(grep '^REDIS_PASSWORD=' "$ENV_FILE" | head -n1 | cut -d= -f2-)
# The password goes into a 0600 config file, not onto the command line (ps would show it).
umask 077
cat >"$RUN/redis.conf" <<CONF
port 0
bind 127.0.0.1
tls-port $REDIS_PORT
tls-cert-file $CERTS/redis.crt
tls-key-file $CERTS/redis.key
tls-ca-cert-file $CERTS/ca.crt
tls-auth-clients yes
tls-protocols "TLSv1.2 TLSv1.3"
requirepass $password
daemonize yes
pidfile $RUN/redis.pid
logfile $RUN/redis.log
dir $RUN/redis
appendonly yes
save ""
CONF
say "starting redis-server (TLS only) on 127.0.0.1:$REDIS_PORT"
redis-server "$RUN/redis.conf"
for _ in $(seq 1 50); do
  [[ -f "$RUN/redis.pid" ]] && kill -0 "$(cat "$RUN/redis.pid")" 2>/dev/null && break
  sleep 0.1
done
if ! [[ -f "$RUN/redis.pid" ]]; then
  echo "error: redis-server did not start; see $RUN/redis.log" >&2
  tail -n 20 "$RUN/redis.log" >&2 || true
  exit 1
fi
say "secure Redis is up on 127.0.0.1:$REDIS_PORT (TLS only); make stop stops it"
