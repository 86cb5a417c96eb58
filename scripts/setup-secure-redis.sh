#!/usr/bin/env bash
# One command to a secure Redis for development, ready for redcloak:
#   certs/  a development CA, a Redis server certificate (SANs localhost, 127.0.0.1, ::1 and
#           redis for compose) and a client certificate for redcloak; keys 0600
#           (scripts/init-redis-tls.sh, through `redcloak certs`)
#   .env    (0600, gitignored) REDCLOAK_ENV=development, REDIS_URL, a random 64-character
#           REDIS_PASSWORD, a Fernet REDIS_ENCRYPTION_KEY, REDIS_TLS_CA_CERT, REDIS_TLS_CERT,
#           REDIS_TLS_KEY
#   Redis   TLS only on 127.0.0.1:6380: no plaintext port (port 0), client certificates
#           required (tls-auth-clients yes), requirepass, TLS 1.2 and 1.3. With Docker Compose
#           when a Docker engine answers (deploy/docker-compose.secure.yml plus
#           deploy/docker-compose.dev.yml), otherwise a local redis-server (data in .run/redis/;
#           installed with apt-get when it is missing and you are root)
# and finally `redcloak check` proves the chain: TLS, client certificate, AUTH, PING.
#
# Re-running it is safe: an existing key, password or certificate is never replaced (values
# stored with them would become unreadable, clients would break); a stopped Redis is started.
#
# Usage: scripts/setup-secure-redis.sh [options]
#   --force        regenerate the CA, certificates, password and encryption key, after you type
#                  'regenerate'; the old ones and Redis's data go to .run/backup-<time>/
#                  (the other .env settings, such as REDIS_URL, are kept)
#   --renew-certs  new CA and certificates; password, key and data are kept (Redis restarts)
#   --no-start     write certs/ and .env only; do not start Redis
#   --local        run Redis as a local redis-server, even when Docker is available
#   --docker       run Redis with Docker Compose (fails when no Docker engine answers)
#   -h, --help     this text
#
# Environment:
#   REDCLOAK_BIN=PATH           the redcloak binary (default target/release/redcloak, built with
#                               cargo when it is missing or older than the sources)
#   REDCLOAK_DEV_REDIS_PORT=N   Redis's TLS port on 127.0.0.1 when .env has no REDIS_URL yet
#                               (default 6380; afterwards the port in .env's REDIS_URL counts)
#   REDCLOAK_REDIS_MODE=auto|local|docker   like --local / --docker (default auto: the mode
#                               recorded in .run/redis.mode, else Docker when available)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib/common.sh
. "$ROOT/scripts/lib/common.sh"
CERTS="$ROOT/certs"
RUN="$ROOT/.run"
ENV_FILE="$ROOT/.env"

force=0
renew=0
start=1
mode=${REDCLOAK_REDIS_MODE:-auto}
while (($#)); do
  case "$1" in
    --force) force=1 ;;
    --renew-certs) renew=1 ;;
    --no-start) start=0 ;;
    --local) mode=local ;;
    --docker) mode=docker ;;
    -h|--help) print_help "$0"; exit 0 ;;
    *) usage_error "unknown option $1" ;;
  esac
  shift
done
case "$mode" in
  auto|local|docker) ;;
  *) die "REDCLOAK_REDIS_MODE=$mode" "auto, local or docker" "unset REDCLOAK_REDIS_MODE, or use --local / --docker" 64 ;;
esac
((force && renew)) && usage_error "--force already renews the certificates; use one of them"

mkdir -p "$RUN"
chmod 700 "$RUN"

# --- --force: explicit confirmation, then move everything aside (never delete a key) ---
if ((force)); then
  echo "--force regenerates the CA, the certificates, the Redis password and the ENCRYPTION KEY."
  echo "Values stored with the old key cannot be read with the new one. The old files and Redis's"
  echo "data are moved to .run/backup-<time>/ (its .env holds the old key)."
  printf "Type 'regenerate' to go on: "
  answer=""
  read -r answer || true
  [[ "$answer" == "regenerate" ]] || { echo "aborted; nothing changed"; exit 1; }
  "$ROOT/scripts/stop-redis.sh"
  backup="$RUN/backup-$(date +%Y%m%d-%H%M%S)"
  mkdir -p "$backup/certs"
  chmod 700 "$backup"
  for f in ca.crt ca.key redis.crt redis.key client.crt client.key; do
    [[ -e "$CERTS/$f" ]] && mv "$CERTS/$f" "$backup/certs/"
  done
  if [[ -e "$ENV_FILE" ]]; then
    # Everything but the generated secrets stays (REDIS_URL, REDCLOAK_ENV, your own lines).
    mv "$ENV_FILE" "$backup/.env"
    (
      umask 077
      grep -vE '^(export +)?(REDIS_PASSWORD|REDIS_AUTH|REDIS_ENCRYPTION_KEY)=' "$backup/.env" >"$ENV_FILE" || true
    )
    for f in REDIS_PASSWORD_FILE REDIS_ENCRYPTION_KEY_FILE; do
      env_has "$ENV_FILE" "$f" && warn ".env sets $f: --force does not regenerate the file it names"
    done
  fi
  [[ -e "$RUN/redis" ]] && mv "$RUN/redis" "$backup/redis"
  [[ -e "$RUN/compose/redis-data" ]] && mv "$RUN/compose/redis-data" "$backup/compose-redis-data"
  say "moved the old certificates, .env and Redis data to ${backup#"$ROOT"/}"
  say "  to keep reading old values, add the old key after the new one: REDIS_ENCRYPTION_KEY=<new>,<old>"
fi

# --- a plaintext configuration is not ours to overwrite: the migration script handles it ---
if env_has "$ENV_FILE" REDIS_URL && [[ "$(env_get "$ENV_FILE" REDIS_URL)" != rediss://* ]] \
  || env_has "$ENV_FILE" REDIS_INSECURE_ALLOW_PLAINTEXT; then
  die ".env points at a plaintext Redis (REDIS_URL=$(url_redacted "$(env_get "$ENV_FILE" REDIS_URL)")$(env_has "$ENV_FILE" REDIS_INSECURE_ALLOW_PLAINTEXT && printf ', REDIS_INSECURE_ALLOW_PLAINTEXT')); setup never replaces existing settings" \
    "REDIS_URL=rediss://… (TLS) for redcloak; redcloak has no plaintext mode" \
    "scripts/migrate-to-secure-redis.sh (moves the plaintext settings to .run/env.insecure.bak and finishes the setup; add --copy-data to copy the data)"
fi

resolve_bin

# --- certificates (never replaced, except by --renew-certs) ---
if ((renew)); then
  "$ROOT/scripts/stop-redis.sh"
  "$ROOT/scripts/init-redis-tls.sh" --dir "$CERTS" --force --yes
else
  "$ROOT/scripts/init-redis-tls.sh" --dir "$CERTS"
fi

# --- .env (values never replaced) ---
(umask 077 && touch "$ENV_FILE")
chmod 600 "$ENV_FILE"
add() {
  env_has "$ENV_FILE" "$1" && return 0
  printf '%s=%s\n' "$1" "$(env_quote "$2")" >>"$ENV_FILE"
  say ".env: set $1${3:+ ($3)}"
}
add_unless() { # add NAME VALUE unless one of the alternative variables is set
  local name=$1 generator=$2 what=$3 alt
  shift 3
  for alt in "$name" "$@"; do
    env_has "$ENV_FILE" "$alt" && return 0
  done
  add "$name" "$($generator)" "$what"
}
new_password() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
new_key() { "$BIN" keygen; }

add REDCLOAK_ENV development
add REDIS_URL "rediss://localhost:${REDCLOAK_DEV_REDIS_PORT:-6380}"
add_unless REDIS_PASSWORD new_password "64 random hex characters" REDIS_AUTH REDIS_PASSWORD_FILE
add_unless REDIS_ENCRYPTION_KEY new_key "a new Fernet key" REDIS_ENCRYPTION_KEY_FILE
add REDIS_TLS_CA_CERT "$CERTS/ca.crt"
add REDIS_TLS_CERT "$CERTS/client.crt"
add REDIS_TLS_KEY "$CERTS/client.key"
say ".env: nothing existing was replaced"

REDIS_URL=$(env_get "$ENV_FILE" REDIS_URL)
REDIS_PORT=$(url_port "$REDIS_URL" 6379)
REDIS_HOST=$(url_host "$REDIS_URL")
if [[ -n "${REDCLOAK_DEV_REDIS_PORT:-}" && "$REDCLOAK_DEV_REDIS_PORT" != "$REDIS_PORT" ]]; then
  warn "REDCLOAK_DEV_REDIS_PORT=$REDCLOAK_DEV_REDIS_PORT is ignored: .env already says REDIS_URL=$(url_redacted "$REDIS_URL")"
fi

# check: `redcloak check` with .env — the whole chain, exactly as `make run` will see it.
check() {
  local out code=0 i
  for ((i = 0; i < 50; i++)); do
    code=0
    # shellcheck source=/dev/null
    out=$(set -a && . "$ENV_FILE" && set +a && REDCLOAK_LOG=error "$BIN" check 2>&1) || code=$?
    ((code == 69)) || break # 69: Redis not reachable (yet)
    sleep 0.2
  done
  if ((code != 0)); then
    printf '%s\n' "$out" | grep -vE '^\s*$' | sed 's/^/    /' >&2
    die "redcloak check failed (exit $code) against $(url_redacted "$REDIS_URL")" \
      "a Redis that accepts this .env: TLS with certs/ca.crt, the client certificate and REDIS_PASSWORD" \
      "read the problems above; when Redis runs with old settings: make stop && make setup"
  fi
  say "redcloak check: TLS + client certificate + AUTH + PING ok against $(url_redacted "$REDIS_URL")"
}

if ((!start)); then
  say "not starting Redis (--no-start)"
  exit 0
fi

case "$REDIS_HOST" in
  localhost|127.0.0.1|::1) ;;
  *)
    say "REDIS_URL points to $REDIS_HOST, not this machine: not starting a local Redis"
    check
    exit 0 ;;
esac

if [[ "$mode" == auto ]]; then
  recorded=$(cat "$RUN/redis.mode" 2>/dev/null || true)
  if [[ "$recorded" == local || "$recorded" == docker ]]; then
    mode=$recorded
  elif docker_engine; then
    mode=docker
  else
    mode=local
  fi
fi

password() {
  local pw
  pw=$(env_get "$ENV_FILE" REDIS_PASSWORD)
  [[ -n "$pw" ]] || pw=$(env_get "$ENV_FILE" REDIS_AUTH)
  if [[ -z "$pw" ]] && env_has "$ENV_FILE" REDIS_PASSWORD_FILE; then
    pw=$(head -n 1 "$(env_get "$ENV_FILE" REDIS_PASSWORD_FILE)")
  fi
  [[ -n "$pw" ]] || die "no Redis password in .env" "REDIS_PASSWORD (or REDIS_AUTH, REDIS_PASSWORD_FILE)" \
    "remove the empty entry from .env and re-run scripts/setup-secure-redis.sh"
  printf '%s' "$pw"
}

ensure_redis_server() {
  command -v redis-server >/dev/null 2>&1 && return 0
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing redis-server and redis-tools (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null
    # Debian starts a plaintext redis-server on 6379 where systemd runs: exactly what redcloak
    # replaces (and it would take redcloak's port). Stop the service apt just started.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
      say "stopping and disabling the plaintext redis-server service apt started on 6379"
      systemctl disable --now redis-server >/dev/null 2>&1 || true
    fi
    return 0
  fi
  local fix="sudo apt-get install -y redis-server redis-tools"
  command -v apt-get >/dev/null 2>&1 || fix="install redis-server 6.0 or newer, built with TLS, with your package manager (e.g. brew install redis)"
  die "redis-server is not installed" \
    "a local redis-server 6.0+ with TLS support (or a Docker engine, for --docker)" \
    "$fix; then re-run scripts/setup-secure-redis.sh"
}

start_local() {
  ensure_redis_server
  local pid
  if pid=$(live_pid "$RUN/redis.pid" redis-server); then
    say "redis-server already running (pid $pid) on 127.0.0.1:$REDIS_PORT (TLS only)"
    echo local >"$RUN/redis.mode"
    return 0
  fi
  if port_in_use "$REDIS_PORT"; then
    die "127.0.0.1:$REDIS_PORT is already in use by another program" \
      "a free port for the TLS-only Redis" \
      "stop that program, or change the port in .env's REDIS_URL (e.g. rediss://localhost:6390) and re-run"
  fi
  mkdir -p "$RUN/redis"
  local pw
  pw=$(password)
  q() { local s=${1//\\/\\\\}; printf '"%s"' "${s//\"/\\\"}"; }
  # The password goes into a 0600 file, never onto a command line (ps would show it).
  (
    umask 077
    cat >"$RUN/redis.conf" <<CONF
# Written by scripts/setup-secure-redis.sh from .env on every start; holds the password (0600).
port 0
bind 127.0.0.1
tls-port $REDIS_PORT
tls-cert-file $(q "$CERTS/redis.crt")
tls-key-file $(q "$CERTS/redis.key")
tls-ca-cert-file $(q "$CERTS/ca.crt")
tls-auth-clients yes
tls-protocols "TLSv1.2 TLSv1.3"
requirepass $(q "$pw")
daemonize yes
pidfile $(q "$RUN/redis.pid")
logfile $(q "$RUN/redis.log")
dir $(q "$RUN/redis")
appendonly yes
save ""
CONF
  )
  say "starting redis-server (TLS only, client certificates required) on 127.0.0.1:$REDIS_PORT"
  rm -f "$RUN/redis.pid"
  if ! redis-server "$RUN/redis.conf"; then
    tail -n 20 "$RUN/redis.log" >&2 2>/dev/null || true
    die "redis-server did not start" "a redis-server 6.0+ built with TLS" "see $RUN/redis.log"
  fi
  local i
  for ((i = 0; i < 100; i++)); do
    pid=$(live_pid "$RUN/redis.pid" redis-server) && break
    sleep 0.1
  done
  if [[ -z "${pid:-}" ]]; then
    tail -n 20 "$RUN/redis.log" >&2 2>/dev/null || true
    die "redis-server exited right after starting" "a redis-server 6.0+ built with TLS" \
      "see the log above ($RUN/redis.log)"
  fi
  echo local >"$RUN/redis.mode"
  say "redis-server started (pid $pid); log in .run/redis.log, data in .run/redis/"
}

start_docker() {
  docker_engine || die "--docker (or REDCLOAK_REDIS_MODE=docker), but no Docker engine answers" \
    "a running Docker engine with the compose plugin (docker compose version)" \
    "start Docker, or run Redis locally: scripts/setup-secure-redis.sh --local"
  local pid
  if pid=$(live_pid "$RUN/redis.pid" redis-server); then
    die "a local redis-server from an earlier setup runs (pid $pid) on 127.0.0.1:$REDIS_PORT" \
      "one Redis per checkout" "make stop, then re-run with --docker"
  fi
  mkdir -p "$RUN/compose/redis-data"
  say "starting Redis with Docker Compose (project redcloak-dev; TLS only on 127.0.0.1:$REDIS_PORT)"
  dev_compose up -d --wait redis \
    || die "the compose Redis did not become healthy" \
      "Redis running in Docker as your user ($(id -u):$(id -g)), reading certs/ and .run/compose/redis-data/" \
      "see: docker compose -p redcloak-dev logs redis; or run Redis locally: scripts/setup-secure-redis.sh --local"
  echo docker >"$RUN/redis.mode"
}

case "$mode" in
  local) start_local ;;
  docker) start_docker ;;
esac
check
say "ready: secure Redis on 127.0.0.1:$REDIS_PORT ($mode); settings in .env, certificates in certs/"
say "next: make run (redcloak on 127.0.0.1:6379), then: redis-cli SET greeting hello"
