#!/usr/bin/env bash
# Application benchmark: redis-py Lock acquire+release per second (1 client, 8 client
# processes) and `limits` hits per second (fixed window, moving window, sliding window counter),
# against direct mutual-TLS Redis and through redcloak (which runs each Lua script itself), on the
# same machine, in one run, with the ratios. Workload: benches/apps_workload.py.
# Everything runs on loopback with a throwaway PKI, password and key; processes stop on exit.
#
# Usage: scripts/bench-apps.sh [-s SECONDS_PER_MEASUREMENT] [--help]
set -euo pipefail
cd "$(dirname "$0")/.."

secs=5
while (($#)); do
  case "$1" in
    -s) secs=$2; shift 2 ;;
    -h|--help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
done

# shellcheck source=lib/bench-stack.sh
. scripts/lib/bench-stack.sh

echo "apps: ${secs} s per measurement, $(nproc) cores, Redis $(redis-server --version | awk '{print $3}'), $(python3 -c 'import redis, limits; print("redis-py", redis.__version__, "limits", limits.__version__)')"
direct=$(python3 benches/apps_workload.py "$secs" 127.0.0.1 "$redis_port" 1 "$password" \
  "$work/certs/ca.crt" "$work/certs/client.crt" "$work/certs/client.key")
proxied=$(python3 benches/apps_workload.py "$secs" 127.0.0.1 "$proxy_port" 0)
printf '%-32s %14s %14s %7s\n' workload "direct (op/s)" "redcloak" ratio
join <(sort <<<"$direct") <(sort <<<"$proxied") |
  awk '{ printf "%-32s %14d %14d %7.2f\n", $1, $2, $3, $3 / $2 }'
