#!/usr/bin/env bash
# `make run`: set up the secure local Redis if needed, then run redcloak in the foreground on
# 127.0.0.1:6379 with the generated .env. Ctrl-C stops redcloak; `make stop` stops Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-secure-redis.sh
set -a
# shellcheck disable=SC1091
. ./.env
set +a
echo "==> redcloak on ${REDCLOAK_LISTEN:-127.0.0.1:6379} -> $REDIS_URL (try: redis-cli SET greeting hello)"
exec ./target/release/redcloak
