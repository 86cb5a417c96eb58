#!/usr/bin/env bash
# `make stop`: stops what `make run` started, by PID — redcloak (PID in .run/redcloak.pid, only
# if that PID still runs redcloak; SIGTERM lets it answer what it already read), then Redis
# (scripts/stop-redis.sh). Certificates, .env and Redis's data stay.
#
# Usage: scripts/stop.sh [--help]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib/common.sh
. "$ROOT/scripts/lib/common.sh"

only_help_option "$@"

if pid=$(live_pid "$ROOT/.run/redcloak.pid" redcloak); then
  stop_pid "$pid" redcloak 30 # redcloak drains for up to REDCLOAK_SHUTDOWN_GRACE (20 s)
else
  say "no redcloak started by make run is running"
fi
rm -f "$ROOT/.run/redcloak.pid"
"$ROOT/scripts/stop-redis.sh"
