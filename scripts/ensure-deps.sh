#!/usr/bin/env bash
# Installs what redcloak's build, tests and `make run` need, when it is missing:
#   redis-server + redis-tools (redis-cli, redis-benchmark)  via apt-get
#   Python `cryptography`, `redis` (interop, client and migration tests), `rq` (the job-queue
#   test), PyYAML (the deploy file tests) and the applications of tests/apps (django, limits,
#   celery, huey)  via pip
#   Node.js + node-redis for the client test (tests/clients/node)  via apt-get / npm ci
#   BullMQ + ioredis for the job-queue test (tests/apps/bullmq)  via npm ci
# Usage: scripts/ensure-deps.sh [--help]
set -euo pipefail

if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
  exit 0
fi

say() { printf '==> %s\n' "$*"; }

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v redis-benchmark >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)

if ((${#need_apt[@]})); then
  mapfile -t need_apt < <(printf '%s\n' "${need_apt[@]}" | sort -u)
  if [[ $(id -u) -ne 0 ]]; then
    echo "error: missing ${need_apt[*]}" >&2
    echo "  required: redis-server and redis-tools (redis-cli, redis-benchmark) for make run / make test" >&2
    echo "  fix: sudo apt-get install -y ${need_apt[*]}" >&2
    exit 1
  fi
  say "installing ${need_apt[*]} (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  # Debian starts a plaintext redis-server on 6379 where systemd runs. That is exactly what
  # redcloak replaces (and it would take redcloak's port): stop the service we just installed.
  if [[ " ${need_apt[*]} " == *" redis-server "* ]] && command -v systemctl >/dev/null 2>&1 \
     && systemctl is-active --quiet redis-server 2>/dev/null; then
    say "stopping and disabling the plaintext redis-server service apt started on 6379"
    systemctl disable --now redis-server >/dev/null 2>&1 || true
  fi
fi

for spec in cryptography:cryptography redis:redis rq:rq yaml:pyyaml django:django \
  limits:limits celery:celery huey:huey; do
  module=${spec%%:*} package=${spec#*:}
  if ! python3 -c "import $module" >/dev/null 2>&1; then
    say "installing Python $package (pip)"
    python3 -m pip install -q "$package" 2>/dev/null \
      || python3 -m pip install -q --break-system-packages "$package"
  fi
done

node_dir="$(dirname "$0")/../tests/clients/node"
if [[ ! -d "$node_dir/node_modules/redis" ]]; then
  say "installing node-redis for the client test (npm ci in tests/clients/node)"
  npm ci --prefix "$node_dir" --no-audit --no-fund --silent
fi

bullmq_dir="$(dirname "$0")/../tests/apps/bullmq"
if [[ ! -d "$bullmq_dir/node_modules/bullmq" || ! -d "$bullmq_dir/node_modules/ioredis" ]]; then
  say "installing BullMQ for the job-queue test (npm ci in tests/apps/bullmq)"
  npm ci --prefix "$bullmq_dir" --no-audit --no-fund --silent
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  say "cargo-nextest is not installed; make test will use cargo test"
fi
