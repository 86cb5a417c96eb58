#!/usr/bin/env bash
# From an application on a plaintext Redis (REDIS_URL=redis://…) to redcloak:
#   1. the plaintext settings in .env (REDIS_URL=redis://…, the REDIS_PASSWORD, REDIS_AUTH,
#      REDIS_PASSWORD_FILE and REDIS_USERNAME that went with it, REDIS_INSECURE_ALLOW_PLAINTEXT)
#      move to .run/env.insecure.bak (0600), so nothing points at the plaintext Redis any more;
#   2. scripts/setup-secure-redis.sh writes the secure configuration (certificates, a new strong
#      password, a Fernet key) and starts a TLS-only Redis; nothing existing is replaced;
#   3. with --copy-data, every key of the plaintext Redis is copied into the secure one *through*
#      redcloak, so every value and member is stored encrypted: SCAN, then per type — strings
#      (SET … PX), hashes (HSET), lists (RPUSH), streams (XADD, same IDs), sets (SADD), sorted
#      sets and GEO (ZADD, same scores) — each in one MULTI/EXEC with its remaining TTL
#      (PEXPIRE). HyperLogLogs and module types are skipped, each with the reason. A progress
#      line every N keys, then a summary of what was copied and what was skipped, and why.
# The plaintext Redis is only read, never changed. Stop the application's writers first (writes
# made during the copy may be missed). Then point the application at redcloak
# (redis://127.0.0.1:6379, `make run`); docs/migration.md says what else changes.
#
# Usage: scripts/migrate-to-secure-redis.sh [options]
#   --from URL          the plaintext Redis (default: REDIS_URL in the environment when it is
#                       redis://…, else in .env, else in .run/env.insecure.bak). A password in URL
#                       shows in `ps`: prefer REDIS_URL=… in the environment or in .env.
#   --copy-data         copy the data too (without it: steps 1 and 2 only)
#   --via URL           copy through this running redcloak (e.g. redis://127.0.0.1:6379) and
#                       leave .env and Redis alone (steps 1 and 2 are skipped); default: a
#                       temporary redcloak started from .env on a free loopback port
#   --replace           overwrite keys that already exist in the secure Redis (default: skip
#                       them, so a re-run copies only what is missing)
#   --dry-run           report what would be copied and skipped; change nothing anywhere
#   --match PATTERN     only keys matching this SCAN pattern (default *)
#   --progress-every N  a progress line every N keys (default 1000; 0: none)
#   --report FILE       write every skipped or failed key with its reason to FILE (TSV)
#   -h, --help          this text
#
# Environment: MIGRATE_FROM_PASSWORD (the plaintext Redis's password when its URL has none);
# REDCLOAK_BIN, REDCLOAK_DEV_REDIS_PORT, REDCLOAK_REDIS_MODE as in setup-secure-redis.sh --help.
# Exit status: 0 when every key was copied or skipped for a stated reason, 1 when a key failed
# to copy (or a step failed), 2 when a Redis could not be reached, 64 for a usage error.
set -euo pipefail

caller_pwd=$(pwd)
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib/common.sh
. "$ROOT/scripts/lib/common.sh"
ENV_FILE="$ROOT/.env"
BACKUP="$ROOT/.run/env.insecure.bak"

from="" via="" copy=0 dry=0
py_args=()
while (($#)); do
  case "$1" in
    --from) [[ $# -ge 2 ]] || usage_error "--from needs a URL"; from=$2; shift 2 ;;
    --via) [[ $# -ge 2 ]] || usage_error "--via needs a URL"; via=$2; shift 2 ;;
    --copy-data) copy=1; shift ;;
    --replace) py_args+=(--replace); shift ;;
    --dry-run) dry=1; copy=1; py_args+=(--dry-run); shift ;;
    --match) [[ $# -ge 2 ]] || usage_error "--match needs a pattern"; py_args+=(--match "$2"); shift 2 ;;
    --progress-every)
      [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || usage_error "--progress-every needs a number"
      py_args+=(--progress-every "$2"); shift 2 ;;
    --report)
      [[ $# -ge 2 ]] || usage_error "--report needs a file"
      report=$2
      [[ "$report" == /* ]] || report="$caller_pwd/$report"
      py_args+=(--report "$report"); shift 2 ;;
    -h|--help) print_help "$0"; exit 0 ;;
    *) usage_error "unknown option $1" ;;
  esac
done
[[ -n "$via" && $copy -eq 0 ]] && usage_error "--via is for --copy-data"

plaintext() { [[ -n "$1" && "$1" != rediss://* ]]; }

# --- where the plaintext Redis is, and its password ---
from_password=${MIGRATE_FROM_PASSWORD:-}
from_source="--from"
if [[ -z "$from" ]]; then
  if plaintext "${REDIS_URL:-}"; then
    from=$REDIS_URL from_source="REDIS_URL in the environment"
    from_password=${from_password:-${REDIS_PASSWORD:-${REDIS_AUTH:-}}}
  else
    for file in "$ENV_FILE" "$BACKUP"; do
      url=$(env_get "$file" REDIS_URL)
      if plaintext "$url"; then
        from=$url from_source="REDIS_URL in ${file#"$ROOT"/}"
        [[ -n "$from_password" ]] || from_password=$(env_get "$file" REDIS_PASSWORD)
        [[ -n "$from_password" ]] || from_password=$(env_get "$file" REDIS_AUTH)
        break
      fi
    done
  fi
fi
if ((copy)) && [[ -z "$from" ]]; then
  die "no plaintext Redis to copy from" \
    "its URL: --from redis://host:port/db, or REDIS_URL=redis://… in the environment or .env" \
    "scripts/migrate-to-secure-redis.sh --copy-data --from redis://127.0.0.1:6379/0"
fi
[[ -n "$from" ]] && say "plaintext Redis: $(url_redacted "$from") (from $from_source)"

# --- 1 and 2: the secure configuration (not with --via or --dry-run) ---
if [[ -n "$via" || $dry -eq 1 ]]; then
  say "$([[ $dry -eq 1 ]] && echo "--dry-run" || echo "--via"): .env and Redis are left as they are"
else
  if env_has "$ENV_FILE" REDIS_INSECURE_ALLOW_PLAINTEXT || plaintext "$(env_get "$ENV_FILE" REDIS_URL)"; then
    mkdir -p "$ROOT/.run"
    chmod 700 "$ROOT/.run"
    target=$BACKUP
    [[ -e "$target" ]] && target="$BACKUP.$(date +%Y%m%d-%H%M%S)"
    pattern='^(export +)?(REDIS_URL|REDIS_PASSWORD|REDIS_AUTH|REDIS_PASSWORD_FILE|REDIS_USERNAME|REDIS_INSECURE_ALLOW_PLAINTEXT)='
    moved=$(grep -E "$pattern" "$ENV_FILE" | sed -E 's/^(export +)?([A-Z_]+)=.*/\2/' | sort -u | tr '\n' ' ')
    (
      umask 077
      grep -E "$pattern" "$ENV_FILE" >"$target"
      grep -vE "$pattern" "$ENV_FILE" >"$ENV_FILE.tmp" || true
    )
    mv "$ENV_FILE.tmp" "$ENV_FILE"
    chmod 600 "$ENV_FILE"
    say "step 1: moved ${moved% } from .env to ${target#"$ROOT"/} (0600)"
  else
    say "step 1: .env has no plaintext Redis settings"
  fi
  say "step 2: the secure configuration (scripts/setup-secure-redis.sh)"
  "$ROOT/scripts/setup-secure-redis.sh"
fi

if ((!copy)); then
  say "done. Copy the data with: scripts/migrate-to-secure-redis.sh --copy-data (add --dry-run to see what would be copied)"
  say "then point the application at redcloak (redis://127.0.0.1:6379): docs/migration.md"
  exit 0
fi

# --- 3: the data, through redcloak ---
if ! { command -v python3 >/dev/null 2>&1 && python3 -c 'import redis' 2>/dev/null; }; then
  die "python3 with the redis package is missing" \
    "python3 and redis-py to copy the data (binary-safe)" \
    "python3 -m pip install redis (or apt-get install python3-redis), or run scripts/ensure-deps.sh"
fi

proxy_pid=""
cleanup() {
  if [[ -n "$proxy_pid" ]] && kill -0 "$proxy_pid" 2>/dev/null; then
    kill "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

if [[ -z "$via" && $dry -eq 0 ]]; then
  resolve_bin
  mkdir -p "$ROOT/.run"
  port=$(free_port)
  log="$ROOT/.run/migrate-redcloak.log"
  (
    set -a
    # shellcheck source=/dev/null
    . "$ENV_FILE"
    set +a
    export REDCLOAK_LISTEN="127.0.0.1:$port" REDCLOAK_LOG="${REDCLOAK_LOG:-warn}"
    exec "$BIN"
  ) >"$log" 2>&1 &
  proxy_pid=$!
  for ((i = 0; i < 300; i++)); do
    resp_ping "$port" && break
    if ! kill -0 "$proxy_pid" 2>/dev/null; then
      sed 's/^/    /' "$log" >&2
      die "the temporary redcloak exited (log above, in .run/migrate-redcloak.log)" \
        "redcloak running with .env against the secure Redis" "fix what the log says, then re-run"
    fi
    sleep 0.1
  done
  resp_ping "$port" || die "the temporary redcloak does not answer on 127.0.0.1:$port" \
    "redcloak answering PING" "see .run/migrate-redcloak.log"
  via="redis://127.0.0.1:$port"
  say "step 3: copying through a temporary redcloak on 127.0.0.1:$port (pid $proxy_pid)"
elif [[ -n "$via" ]]; then
  [[ "$(url_redacted "$via")" != "$(url_redacted "$from")" ]] \
    || die "--via and the source are the same address ($(url_redacted "$via"))" \
      "--via names redcloak, the source names the plaintext Redis" "check --from and --via"
  say "step 3: copying through redcloak at $(url_redacted "$via")"
fi

code=0
MIGRATE_FROM_URL=$from MIGRATE_FROM_PASSWORD=$from_password MIGRATE_VIA_URL=$via \
  python3 "$ROOT/scripts/lib/migrate_copy.py" ${py_args[@]+"${py_args[@]}"} || code=$?
cleanup
proxy_pid=""
if ((code == 0 && dry == 0)); then
  say "done. Next: point the application at redcloak (redis://127.0.0.1:6379, make run); what changes: docs/migration.md"
fi
exit "$code"
