# shellcheck shell=bash
# Helpers shared by redcloak's scripts. Sourced (never run) after ROOT is set to the repository.
# Errors use the project's form: what was found / what is required / how to fix it.

say() { printf '==> %s\n' "$*"; }

warn() { printf 'warning: %s\n' "$*" >&2; }

# die WHAT REQUIRED FIX [EXIT_CODE]
die() {
  printf 'error: %s\n  required: %s\n  fix: %s\n' "$1" "$2" "$3" >&2
  exit "${4:-1}"
}

usage_error() {
  printf 'error: %s (see --help)\n' "$*" >&2
  exit 64
}

# only_help_option "$@": for scripts whose only option is --help.
only_help_option() {
  case "${1:-}" in
    -h|--help) print_help "$0"; exit 0 ;;
    "") ;;
    *) usage_error "unknown option $1" ;;
  esac
}

# print_help FILE: the comment block at the top of FILE (after the shebang), without the '# '.
print_help() {
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$1"
}

# resolve_bin: sets BIN to the redcloak binary — $REDCLOAK_BIN when set, else
# target/release/redcloak, built with cargo when it is missing or older than the sources.
resolve_bin() {
  if [[ -n "${REDCLOAK_BIN:-}" ]]; then
    [[ -x "$REDCLOAK_BIN" && -f "$REDCLOAK_BIN" ]] \
      || die "REDCLOAK_BIN=$REDCLOAK_BIN is not an executable file" \
        "a built redcloak binary" \
        "unset REDCLOAK_BIN (target/release/redcloak is then built with cargo) or point it at a built binary"
    BIN=$REDCLOAK_BIN
    return
  fi
  BIN="$ROOT/target/release/redcloak"
  local stale=""
  if [[ -x "$BIN" && -d "$ROOT/crates" ]]; then
    stale=$(find "$ROOT/crates" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" \
      \( -name target -o -name fuzz \) -prune -o \
      \( -name '*.rs' -o -name '*.toml' -o -name Cargo.lock \) -newer "$BIN" -print -quit 2>/dev/null || true)
  fi
  if [[ ! -x "$BIN" || -n "$stale" ]]; then
    [[ -f "$ROOT/Cargo.toml" ]] \
      || die "no redcloak binary at $BIN and no sources to build it from" \
        "a built redcloak binary" "set REDCLOAK_BIN=/path/to/redcloak"
    command -v cargo >/dev/null 2>&1 \
      || die "cargo is not installed, and $BIN does not exist or is out of date" \
        "Rust (cargo) to build redcloak, or an already built binary" \
        "install Rust (rustup), or set REDCLOAK_BIN=/path/to/redcloak"
    say "building redcloak (cargo build --release -p redcloak; the first build takes a few minutes)"
    (cd "$ROOT" && cargo build --release --quiet -p redcloak)
  fi
}

# --- .env files: KEY=VALUE lines; values never echoed by these helpers ---

# env_get FILE NAME: prints NAME's value in FILE (the last assignment; surrounding quotes removed).
env_get() {
  [[ -f "$1" ]] || return 0
  local line value
  line=$(grep -E "^(export +)?$2=" "$1" | tail -n 1) || return 0
  value=${line#*=}
  value=${value%$'\r'}
  if [[ ${#value} -ge 2 && ( $value == \'*\' || $value == \"*\" ) ]]; then
    value=${value:1:${#value}-2}
  fi
  printf '%s' "$value"
}

# env_has FILE NAME: whether FILE assigns NAME.
env_has() { [[ -f "$1" ]] && grep -qE "^(export +)?$2=" "$1"; }

# env_quote VALUE: VALUE as it can be written in a .env read by bash and docker compose.
env_quote() {
  if [[ $1 =~ ^[A-Za-z0-9_./:@%+=,-]*$ ]]; then
    printf '%s' "$1"
  else
    printf "'%s'" "$1"
  fi
}

# url_redacted URL: URL without the user:password part.
url_redacted() { printf '%s' "$1" | sed -E 's#^([a-z]+://)[^@/]*@#\1#'; }

# url_port URL DEFAULT: the port of a redis(s):// URL.
url_port() {
  local rest=${1#*://}
  rest=${rest#*@}
  rest=${rest%%/*}
  if [[ $rest =~ :([0-9]+)$ ]]; then printf '%s' "${BASH_REMATCH[1]}"; else printf '%s' "$2"; fi
}

# url_host URL: the host of a redis(s):// URL.
url_host() {
  local rest=${1#*://}
  rest=${rest#*@}
  rest=${rest%%/*}
  rest=${rest%:*}
  rest=${rest#[}
  printf '%s' "${rest%]}"
}

# --- processes (always by PID, and only when the PID still runs the expected program) ---

# live_pid PIDFILE PATTERN: prints the PID in PIDFILE when that process is alive and its command
# line contains PATTERN (a stale file whose PID was reused by another program does not count).
live_pid() {
  local pid cmdline
  [[ -f "$1" ]] || return 1
  pid=$(tr -dc '0-9' <"$1")
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline")
  else
    cmdline=$(ps -o args= -p "$pid" 2>/dev/null || true)
  fi
  [[ "$cmdline" == *"$2"* ]] || return 1
  printf '%s' "$pid"
}

# stop_pid PID NAME [SECONDS]: SIGTERM, wait up to SECONDS (default 15), then SIGKILL.
stop_pid() {
  local pid=$1 name=$2 limit=$(( ${3:-15} * 10 )) i
  kill "$pid" 2>/dev/null || return 0
  for ((i = 0; i < limit; i++)); do
    kill -0 "$pid" 2>/dev/null || { say "stopped $name (pid $pid)"; return 0; }
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  say "killed $name (pid $pid): it did not stop within ${3:-15} s of SIGTERM"
}

# port_in_use PORT: whether something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# resp_ping PORT: whether a plaintext RESP server (redcloak) on 127.0.0.1:PORT answers PING.
resp_ping() (
  exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
  # shellcheck disable=SC2016 # a literal RESP frame
  printf '*1\r\n$4\r\nPING\r\n' >&3
  reply=""
  IFS= read -r -t 2 reply <&3 || true
  [[ "$reply" == "+PONG"* ]]
) 2>/dev/null

# free_port: a free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# docker_engine: whether a Docker engine answers and the compose plugin is installed.
docker_engine() {
  command -v docker >/dev/null 2>&1 \
    && docker info >/dev/null 2>&1 \
    && docker compose version >/dev/null 2>&1
}

# dev_compose ARGS...: docker compose for the development Redis that setup-secure-redis.sh starts
# (project redcloak-dev). Needs CERTS, RUN, ENV_FILE and REDIS_PORT.
dev_compose() {
  REDCLOAK_UID=$(id -u) REDCLOAK_GID=$(id -g) REDCLOAK_CERTS_DIR="$CERTS" \
    REDCLOAK_REDIS_DATA="$RUN/compose/redis-data" REDCLOAK_DEV_REDIS_PORT="$REDIS_PORT" \
    docker compose --project-name redcloak-dev --env-file "$ENV_FILE" \
    -f "$ROOT/deploy/docker-compose.secure.yml" -f "$ROOT/deploy/docker-compose.dev.yml" "$@"
}
