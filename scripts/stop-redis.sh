#!/usr/bin/env bash
# Stops the Redis that scripts/setup-secure-redis.sh started: the local redis-server by the PID
# in .run/redis.pid (only if that PID still runs redis-server), or the compose service of the
# redcloak-dev project. Data stays (in .run/redis/ or .run/compose/redis-data/).
#
# Usage: scripts/stop-redis.sh [--help]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib/common.sh
. "$ROOT/scripts/lib/common.sh"
RUN="$ROOT/.run"
ENV_FILE="$ROOT/.env"
# shellcheck disable=SC2034 # CERTS and REDIS_PORT are read by dev_compose (lib/common.sh)
CERTS="$ROOT/certs"

case "${1:-}" in
  -h|--help) print_help "$0"; exit 0 ;;
  "") ;;
  *) usage_error "unknown option $1" ;;
esac

stopped=0
if pid=$(live_pid "$RUN/redis.pid" redis-server); then
  stop_pid "$pid" redis-server 20
  stopped=1
fi
rm -f "$RUN/redis.pid"
if [[ "$(cat "$RUN/redis.mode" 2>/dev/null || true)" == docker ]] && docker_engine; then
  # shellcheck disable=SC2034
  REDIS_PORT=$(url_port "$(env_get "$ENV_FILE" REDIS_URL)" 6380)
  if [[ -n "$(dev_compose ps -q redis 2>/dev/null)" ]]; then
    dev_compose stop redis
    say "stopped the compose Redis (project redcloak-dev)"
    stopped=1
  fi
fi
((stopped)) || say "no Redis started by setup-secure-redis.sh is running"
