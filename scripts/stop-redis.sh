#!/usr/bin/env bash
# Stops the redis-server that scripts/setup-secure-redis.sh started (by its PID file).
set -euo pipefail
cd "$(dirname "$0")/.."
pidfile=.run/redis.pid
if [[ -f $pidfile ]] && kill -0 "$(cat $pidfile)" 2>/dev/null; then
  pid=$(cat $pidfile)
  kill "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  echo "==> stopped redis-server (pid $pid)"
else
  echo "==> no redis-server from make run is running"
fi
