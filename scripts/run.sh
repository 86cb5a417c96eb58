#!/usr/bin/env bash
# `make run`: the secure setup when needed (scripts/setup-secure-redis.sh: certificates,
# password, key and a TLS-only Redis — nothing existing is replaced), then redcloak in the
# foreground on 127.0.0.1:6379 with the settings in .env. Ctrl-C stops redcloak; `make stop`
# stops redcloak and Redis (by PID).
#
# Usage: scripts/run.sh [--help]
# Environment: REDCLOAK_LISTEN and REDCLOAK_LOG override .env; REDCLOAK_BIN,
# REDCLOAK_DEV_REDIS_PORT and REDCLOAK_REDIS_MODE as in setup-secure-redis.sh --help.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib/common.sh
. "$ROOT/scripts/lib/common.sh"

only_help_option "$@"

if pid=$(live_pid "$ROOT/.run/redcloak.pid" redcloak); then
  die "redcloak from an earlier make run is still running (pid $pid)" \
    "one redcloak per checkout (it listens on ${REDCLOAK_LISTEN:-127.0.0.1:6379})" "make stop"
fi

"$ROOT/scripts/setup-secure-redis.sh"
resolve_bin

listen=${REDCLOAK_LISTEN-}
log=${REDCLOAK_LOG-}
set -a
# shellcheck disable=SC1091
. "$ROOT/.env"
set +a
[[ -n "$listen" ]] && export REDCLOAK_LISTEN="$listen"
[[ -n "$log" ]] && export REDCLOAK_LOG="$log"

echo $$ >"$ROOT/.run/redcloak.pid" # exec keeps this PID: make stop finds redcloak by it
say "redcloak on ${REDCLOAK_LISTEN:-127.0.0.1:6379} -> $(url_redacted "$REDIS_URL") (Ctrl-C stops it; make stop stops Redis too)"
say "try: redis-cli -p $(url_port "redis://${REDCLOAK_LISTEN:-127.0.0.1:6379}" 6379) SET greeting hello"
exec "$BIN"
