#!/usr/bin/env bash
# Load benchmark: redis-benchmark against direct mutual-TLS Redis and against redcloak (which adds
# value encryption and its own mTLS hop) on the same machine, interleaved (A B A B…, the order
# alternating per round), medians of BENCH_ROUNDS rounds; ratios are medians of per-round ratios.
#   throughput: SET and GET, 100 B and 1 KiB values, -P 1 and -P 16, -c 50
#   latency:    p50 / p99 at -c 1 -P 1 (100 B)
#   CPU:        per request and per process (/proc/<pid>/stat utime+stime deltas; the client's
#               own CPU from bash's `time`), and all processes together
#   memory:     redcloak's RSS idle, with BENCH_IDLE_CLIENTS silent clients, and after each of
#               them sent one GET; Redis's connected clients then (= upstream TLS connections)
#   references: haproxy and stunnel (TLS relays, no value encryption) when installed
# Writes a markdown report (machine, date, commit, exact commands) between the bench markers of
# docs/performance.md (BENCH_WRITE_DOC=0: only to stdout and target/bench/last.md).
# Environment: BENCH_QUICK=1 (a few minutes: fewer requests), BENCH_ROUNDS (3), BENCH_REQUESTS,
# BENCH_IDLE_CLIENTS (1000), BENCH_MEMBERS=1 (also SADD/SISMEMBER/ZADD/ZRANGE),
# BENCH_BASELINE=/path/to/another/redcloak (run as a third target, e.g. the previous commit's
# build, to measure one change), BENCH_BIN (the redcloak to measure instead of building
# target/release/redcloak), BENCH_ENV="VAR=value …" (extra environment for redcloak only;
# BENCH_BASELINE_ENV for the baseline, default BENCH_ENV), e.g. TOKIO_WORKER_THREADS=1.
# Usage: scripts/bench.sh [--help]
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
(($# == 0)) || { echo "error: no arguments (see --help; settings are environment variables)" >&2; exit 64; }

quick=${BENCH_QUICK:-0}
rounds=${BENCH_ROUNDS:-3}
if [[ $quick == 1 ]]; then n_default=20000; else n_default=100000; fi
n=${BENCH_REQUESTS:-$n_default}
n_lat=$((n / 5))
idle_clients=${BENCH_IDLE_CLIENTS:-1000}
write_doc=${BENCH_WRITE_DOC:-1}
baseline=${BENCH_BASELINE:-}
read -ra extra_env <<<"${BENCH_ENV:-}"
read -ra baseline_env <<<"${BENCH_BASELINE_ENV:-${BENCH_ENV:-}}"

./scripts/ensure-deps.sh >/dev/null
if [[ -n ${BENCH_BIN:-} ]]; then
  bin=$BENCH_BIN
else
  cargo build --release --quiet -p redcloak
  bin=target/release/redcloak
fi
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do redis-cli -p "$1" PING >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }

"$bin" certs --dir "$work/certs" >/dev/null
cat "$work/certs/client.crt" "$work/certs/client.key" >"$work/client.pem"
password=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
key=$("$bin" keygen)
redis_port=$(free_port)
printf 'requirepass %s\nmaxclients 20000\n' "$password" >"$work/redis.conf"
redis-server "$work/redis.conf" --port 0 --bind 127.0.0.1 --tls-port "$redis_port" \
  --tls-cert-file "$work/certs/redis.crt" --tls-key-file "$work/certs/redis.key" \
  --tls-ca-cert-file "$work/certs/ca.crt" --tls-auth-clients yes --save '' --appendonly no \
  --logfile "$work/redis.log" --dir "$work" &
redis_pid=$!
pids+=("$redis_pid")
cli=(redis-cli --tls --cacert "$work/certs/ca.crt" --cert "$work/certs/client.crt"
     --key "$work/certs/client.key" -p "$redis_port" -a "$password" --no-auth-warning)
for _ in $(seq 1 100); do "${cli[@]}" PING >/dev/null 2>&1 && break; sleep 0.1; done

# start_redcloak NAME BINARY [VAR=value…]: a redcloak in front of the same Redis; sets port_NAME
# and pid_NAME.
start_redcloak() {
  local name=$1 binary=$2 port
  shift 2
  port=$(free_port)
  env REDIS_URL="rediss://127.0.0.1:$redis_port" REDIS_PASSWORD="$password" \
    REDIS_ENCRYPTION_KEY="$key" REDIS_TLS_CA_CERT="$work/certs/ca.crt" \
    REDIS_TLS_CERT="$work/certs/client.crt" REDIS_TLS_KEY="$work/certs/client.key" \
    REDCLOAK_LISTEN="127.0.0.1:$port" REDCLOAK_LOG=warn "$@" \
    "$binary" 2>"$work/$name.log" &
  pids+=($!)
  printf -v "pid_$name" %s $!
  printf -v "port_$name" %s "$port"
  wait_port "$port" || { echo "error: $name did not start:" >&2; cat "$work/$name.log" >&2; exit 1; }
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
start_redcloak redcloak "$bin" "${extra_env[@]}"
sleep 1
idle_rss=$(rss_kib "$pid_redcloak")

targets=(direct redcloak)
declare -A label=([direct]="direct mTLS" [redcloak]="redcloak${BENCH_ENV:+ ($BENCH_ENV)}")
declare -A pid_of=([direct]=0 [redcloak]=$pid_redcloak)
declare -A port_of=([redcloak]=$port_redcloak)
declare -A target_args
target_args[direct]="-h 127.0.0.1 -p $redis_port --tls --cacert $work/certs/ca.crt --cert $work/certs/client.crt --key $work/certs/client.key -a $password --dbnum 1"
target_args[redcloak]="-h 127.0.0.1 -p $port_redcloak"
if [[ -n $baseline ]]; then
  start_redcloak baseline "$baseline" "${baseline_env[@]}"
  targets+=(baseline)
  label[baseline]="baseline ($(basename "$baseline")${baseline_env[*]:+ ${baseline_env[*]}})"
  pid_of[baseline]=$pid_baseline
  target_args[baseline]="-h 127.0.0.1 -p $port_baseline"
fi
# References: TLS relays that encrypt no values (the client sends the password itself).
if command -v haproxy >/dev/null 2>&1; then
  hp=$(free_port)
  cat >"$work/haproxy.cfg" <<EOF
global
  maxconn $(( $(ulimit -n) / 2 - 50 ))
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
frontend f
  bind 127.0.0.1:$hp
  default_backend b
backend b
  server r 127.0.0.1:$redis_port ssl verify required ca-file $work/certs/ca.crt crt $work/client.pem
EOF
  haproxy -f "$work/haproxy.cfg" -db >/dev/null 2>&1 &
  pids+=($!)
  targets+=(haproxy)
  label[haproxy]=haproxy
  pid_of[haproxy]=$!
  target_args[haproxy]="-h 127.0.0.1 -p $hp -a $password --dbnum 2"
fi
stunnel_bin=$(command -v stunnel4 || command -v stunnel || true)
if [[ -n $stunnel_bin ]]; then
  sp=$(free_port)
  cat >"$work/stunnel.conf" <<EOF
foreground = yes
pid =
[redis]
client = yes
accept = 127.0.0.1:$sp
connect = 127.0.0.1:$redis_port
CAfile = $work/certs/ca.crt
verifyChain = yes
cert = $work/certs/client.crt
key = $work/certs/client.key
EOF
  "$stunnel_bin" "$work/stunnel.conf" >/dev/null 2>&1 &
  pids+=($!)
  targets+=(stunnel)
  label[stunnel]=stunnel
  pid_of[stunnel]=$!
  target_args[stunnel]="-h 127.0.0.1 -p $sp -a $password --dbnum 3"
fi
# A reference that does not answer is left out with a warning (it would hang the runs).
for t in haproxy stunnel; do
  [[ -n ${target_args[$t]:-} ]] || continue
  # redis-benchmark's arguments without its --dbnum, which redis-cli does not take.
  read -ra a <<<"${target_args[$t]% --dbnum *}"
  up=0
  for _ in $(seq 1 50); do
    redis-cli "${a[@]}" --no-auth-warning PING 2>/dev/null | grep -q PONG && { up=1; break; }
    sleep 0.1
  done
  if [[ $up == 0 ]]; then
    echo "warning: $t did not start or does not answer; left out of the runs" >&2
    kept=()
    for x in "${targets[@]}"; do [[ $x == "$t" ]] || kept+=("$x"); done
    targets=("${kept[@]}")
  fi
done

hz=$(getconf CLK_TCK)
ticks() { # utime + stime of a process, in clock ticks (0 for pid 0)
  if [[ $1 == 0 ]]; then echo 0; else sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; fi
}

# bench TARGET ARGS… : one redis-benchmark run; prints "rps p50_ms p99_ms cpu_client cpu_redis
# cpu_proxy" (CPU in seconds).
bench() {
  local t=$1; shift
  local a r0 p0 r1 p1 out timing
  read -ra a <<<"${target_args[$t]}"
  r0=$(ticks "$redis_pid"); p0=$(ticks "${pid_of[$t]}")
  timing=$( { TIMEFORMAT='%U %S'; time redis-benchmark "${a[@]}" "$@" --csv >"$work/out.csv" 2>/dev/null; } 2>&1 )
  r1=$(ticks "$redis_pid"); p1=$(ticks "${pid_of[$t]}")
  out=$(awk -F, 'NR == 2 { gsub(/"/, ""); print $2, $5, $7 }' "$work/out.csv")
  awk -v o="$out" -v t="$timing" -v r=$((r1 - r0)) -v p=$((p1 - p0)) -v hz="$hz" \
    'BEGIN { split(t, c, " "); printf "%s %.3f %.3f %.3f\n", o, c[1] + c[2], r / hz, p / hz }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Memory and upstream connections, before any load (afterwards the shadow cache holds up to its
# bound): silent clients, then the same clients after one GET each.
upstream() { "${cli[@]}" CLIENT LIST | grep -vc 'cmd=client' || true; }
before=$(upstream)
python3 - "$port_redcloak" "$idle_clients" "$pid_redcloak" >"$work/idle" <<'EOF' &
import socket, sys, time
port, count, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def rss():
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
time.sleep(1)
print("silent", rss(), flush=True)
for s in socks:
    s.sendall(b"*2\r\n$3\r\nGET\r\n$10\r\nbench:idle\r\n")
for s in socks:
    buf = b""
    while not buf.endswith(b"\r\n"):
        buf += s.recv(64)
time.sleep(1)
print("after_get", rss(), flush=True)
time.sleep(30)  # hold the connections while the caller counts Redis's clients
EOF
holder=$!
pids+=("$holder")
for _ in $(seq 1 600); do grep -q after_get "$work/idle" 2>/dev/null && break; sleep 0.1; done
during=$(upstream)
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
silent_rss=$(awk '$1 == "silent" { print $2 }' "$work/idle")
get_rss=$(awk '$1 == "after_get" { print $2 }' "$work/idle")

echo "redis-benchmark ×$rounds rounds, $n requests per run, $(nproc) cores, Redis $(redis-server --version | awk '{print $3}'), targets: ${targets[*]}" >&2
res=$work/results
: >"$res"
configs=()
for p in 1 16; do for d in 100 1024; do for c in set get; do configs+=("$p $d $c"); done; done; done
for ((round = 1; round <= rounds; round++)); do
  order=("${targets[@]}")
  if ((round % 2 == 0)); then mapfile -t order < <(printf '%s\n' "${targets[@]}" | tac); fi
  for cfg in "${configs[@]}"; do
    read -r p d c <<<"$cfg"
    for t in "${order[@]}"; do
      line=$(bench "$t" -t "$c" -n "$n" -c 50 -d "$d" -r 100000 -P "$p")
      echo "tput $round $t $p $d $c $line" >>"$res"
    done
  done
  for c in set get; do
    for t in "${order[@]}"; do
      line=$(bench "$t" -t "$c" -n "$n_lat" -c 1 -d 100 -r 100000 -P 1)
      echo "lat $round $t 1 100 $c $line" >>"$res"
    done
  done
  echo "round $round/$rounds done" >&2
done

# field KIND TARGET P D CMD COLUMN: the values of one column over the rounds (columns: 7 rps,
# 8 p50, 9 p99, 10 client CPU, 11 Redis CPU, 12 proxy CPU).
field() { awk -v k="$1" -v t="$2" -v p="$3" -v d="$4" -v c="$5" -v col="$6" \
  '$1 == k && $3 == t && $4 == p && $5 == d && $6 == c { print $col }' "$res"; }
# ratio KIND TARGET P D CMD COLUMN: per-round TARGET/direct of a column, median.
ratio() { join <(field "$1" "$2" "$3" "$4" "$5" "$6" | nl) <(field "$1" direct "$3" "$4" "$5" "$6" | nl) |
  awk '$3 > 0 { print $2 / $3 }' | median; }
# cpu_us KIND TARGET P D CMD: median over rounds of µs per request, "client redis proxy total".
cpu_us() { awk -v k="$1" -v t="$2" -v p="$3" -v d="$4" -v c="$5" -v n="$6" \
  '$1 == k && $3 == t && $4 == p && $5 == d && $6 == c { print $10 * 1e6 / n, $11 * 1e6 / n, $12 * 1e6 / n, ($10 + $11 + $12) * 1e6 / n }' "$res"; }
col_median() { awk -v i="$1" '{ print $i }' | median; }
fmt() { awk -v v="$1" -v f="$2" 'BEGIN { if (v == "n/a") print v; else printf f, v }'; }

report=$work/report.md
others=("${targets[@]:1}")
{
  echo "Machine: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(uname -sr), load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates scripts 2>/dev/null || echo ' (with uncommitted changes)'); Redis $(redis-server --version | awk '{print $3}'), TLS 1.3."
  echo "Command: \`$(env | grep -E '^BENCH_' | sort | tr '\n' ' ')scripts/bench.sh\` — each run is \`redis-benchmark <target> -t <set|get> -n $n -c 50 -d <100|1024> -r 100000 -P <1|16> --csv\`, latency \`… -n $n_lat -c 1 -d 100 -P 1\`; direct is \`-h 127.0.0.1 -p <redis> --tls --cacert … --cert … --key … -a <password> --dbnum 1\`, redcloak \`-h 127.0.0.1 -p <redcloak>\`. $rounds rounds, interleaved; medians; ratios are medians of per-round ratios to direct."
  echo
  printf '| -P | value | command | direct mTLS (req/s) |'
  for t in "${others[@]}"; do printf ' %s (req/s) | ratio |' "${label[$t]}"; done
  echo
  printf '|---|---|---|---:|'
  for _ in "${others[@]}"; do printf -- '---:|---:|'; done
  echo
  for cfg in "${configs[@]}"; do
    read -r p d c <<<"$cfg"
    printf '| %s | %s B | %s | %s |' "$p" "$d" "${c^^}" "$(fmt "$(field tput direct "$p" "$d" "$c" 7 | median)" '%.0f')"
    for t in "${others[@]}"; do
      printf ' %s | %s |' "$(fmt "$(field tput "$t" "$p" "$d" "$c" 7 | median)" '%.0f')" "$(fmt "$(ratio tput "$t" "$p" "$d" "$c" 7)" '%.2f')"
    done
    echo
  done
  echo
  echo "Latency at -c 1 -P 1, 100 B (redis-benchmark's percentiles, ms; ratio to direct):"
  echo
  printf '| command | direct p50 / p99 |'
  for t in "${others[@]}"; do printf ' %s p50 / p99 | ratio p50 / p99 |' "${label[$t]}"; done
  echo
  printf '|---|---:|'
  for _ in "${others[@]}"; do printf -- '---:|---:|'; done
  echo
  for c in set get; do
    printf '| %s | %s / %s |' "${c^^}" "$(field lat direct 1 100 "$c" 8 | median)" "$(field lat direct 1 100 "$c" 9 | median)"
    for t in "${others[@]}"; do
      printf ' %s / %s | %s / %s |' "$(field lat "$t" 1 100 "$c" 8 | median)" "$(field lat "$t" 1 100 "$c" 9 | median)" \
        "$(fmt "$(ratio lat "$t" 1 100 "$c" 8)" '%.2f')" "$(fmt "$(ratio lat "$t" 1 100 "$c" 9)" '%.2f')"
    done
    echo
  done
  echo
  echo "CPU per request (µs, medians over rounds, -c 50): client (redis-benchmark) + Redis + proxy = total; ratio of totals to direct:"
  echo
  printf '| -P | value | command | direct: client + Redis = total |'
  for t in "${others[@]}"; do printf ' %s: client + Redis + proxy = total | ratio |' "${label[$t]}"; done
  echo
  printf '|---|---|---|---:|'
  for _ in "${others[@]}"; do printf -- '---:|---:|'; done
  echo
  for cfg in "${configs[@]}"; do
    read -r p d c <<<"$cfg"
    rows=$(cpu_us tput direct "$p" "$d" "$c" "$n")
    printf '| %s | %s B | %s | %.1f + %.1f = %.1f |' "$p" "$d" "${c^^}" \
      "$(col_median 1 <<<"$rows")" "$(col_median 2 <<<"$rows")" "$(col_median 4 <<<"$rows")"
    for t in "${others[@]}"; do
      rows=$(cpu_us tput "$t" "$p" "$d" "$c" "$n")
      tr=$(join <(awk '{ print $4 }' <<<"$rows" | nl) <(cpu_us tput direct "$p" "$d" "$c" "$n" | awk '{ print $4 }' | nl) |
        awk '$3 > 0 { print $2 / $3 }' | median)
      printf ' %.1f + %.1f + %.1f = %.1f | %s |' "$(col_median 1 <<<"$rows")" "$(col_median 2 <<<"$rows")" \
        "$(col_median 3 <<<"$rows")" "$(col_median 4 <<<"$rows")" "$(fmt "$tr" '%.2f')"
    done
    echo
  done
} >"$report"

{
  echo
  echo "Memory and upstream connections (redcloak, measured before the load): RSS idle after start $((idle_rss / 1024)) MiB;" \
    "with $idle_clients silent clients $((silent_rss / 1024)) MiB; after each sent one GET $((get_rss / 1024)) MiB." \
    "Redis's clients (CLIENT LIST from a direct connection, excluding it): $before before," \
    "$during while $idle_clients clients that each sent a GET are connected (the warm pool and the health probe included)."
} >>"$report"

if [[ ${BENCH_MEMBERS:-0} == 1 ]]; then
  members=("SADD bench:set m:__rand_int__" "SISMEMBER bench:set m:__rand_int__"
           "ZADD bench:zset __rand_int__ m:__rand_int__" "ZRANGE bench:zset 0 9")
  {
    echo
    echo "| -P | command | direct mTLS (req/s) | redcloak (req/s) | ratio |"
    echo "|---|---|---:|---:|---:|"
    for p in 1 16; do
      for line in "${members[@]}"; do
        read -ra cmd <<<"$line"
        dr=$(bench direct -n "$n" -c 50 -r 100000 -P "$p" "${cmd[@]}" | awk '{ print $1 }')
        rr=$(bench redcloak -n "$n" -c 50 -r 100000 -P "$p" "${cmd[@]}" | awk '{ print $1 }')
        printf '| %s | %s | %.0f | %.0f | %.2f |\n' "$p" "${cmd[0]}" "$dr" "$rr" "$(awk -v a="$rr" -v b="$dr" 'BEGIN { print a / b }')"
      done
    done
  } >>"$report"
fi

if grep -q ERROR "$work"/redcloak.log; then
  echo "redcloak logged errors:" >&2; grep ERROR "$work"/redcloak.log | head >&2
fi
mkdir -p target/bench
cp "$report" target/bench/last.md
cat "$report"
if [[ $write_doc == 1 ]]; then
  python3 - docs/performance.md "$report" <<'EOF'
import sys
doc, report = sys.argv[1], open(sys.argv[2]).read()
text = open(doc).read()
begin, end = "<!-- bench.sh:begin -->", "<!-- bench.sh:end -->"
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(doc, "w").write(head + begin + "\n" + report + end + tail)
EOF
  echo "wrote docs/performance.md" >&2
fi
