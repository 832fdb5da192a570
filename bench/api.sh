#!/usr/bin/env bash
# API server benchmark: RUNE's Rust server against the original Python server (PyPI
# rune-bench), both running during one run of this script on free ports of 127.0.0.1:
# job submissions/s, GET /v1/jobs/{id} req/s and GET /healthz req/s at 16 connections
# with wrk, their p99 latency, and the servers' RSS (idle, peak, after load). Each
# measurement is repeated and the median reported.
#
#   bench/api.sh
#   BENCH_DURATION=10 BENCH_WARMUP=2 BENCH_CONNECTIONS=16 BENCH_THREADS=2 BENCH_REPEATS=3 bench/api.sh
#
# Optional: BENCH_ORIG_VERSION (rune-bench version, default 0.0.0a5), BENCH_ORIG_VENV (an
# existing venv with it, instead of a fresh one), BENCH_DRAIN_TIMEOUT (s to wait for
# RUNE's job queue to empty after a submission run, default 600), BENCH_OUT (report
# file, default bench/results/api.md), BENCH_KEEP=1 (keep the work directory: wrk
# outputs, server logs, databases).
#
# Needs: wrk (apt-get install wrk), python3 with venv, cargo. Writes the report to
# bench/results/api.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-16}
THREADS=${BENCH_THREADS:-2}
REPEATS=${BENCH_REPEATS:-3}
ORIG_VERSION=${BENCH_ORIG_VERSION:-0.0.0a5}
DRAIN_TIMEOUT=${BENCH_DRAIN_TIMEOUT:-600}
OUT=${BENCH_OUT:-bench/results/api.md}
BODY='{"vastai": true, "min_dph": 1.0, "max_dph": 2.0}'
LUA=bench/api/wrk.lua
helper=(python3 bench/api/helper.py)

for tool in wrk python3 cargo; do
  command -v "$tool" >/dev/null || { echo "api.sh: needs $tool (wrk: apt-get install wrk)" >&2; exit 2; }
done

# The servers see only what this script sets.
while read -r var; do unset "$var"; done < <(compgen -e | grep '^RUNE_' || true)

work=$(mktemp -d /tmp/rune-api-bench.XXXXXX)
mkdir -p "$work/logs" "$work/rune" "$work/orig"
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then echo "api.sh: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
log() { echo "api.sh: $*" >&2; }

# --- build and install -----------------------------------------------------------
log "building RUNE (cargo build --release --locked -p rune-cli)"
cargo build --release --locked -p rune-cli >&2
rune_bin=$PWD/target/release/rune

venv=${BENCH_ORIG_VENV:-$work/venv}
if [[ ! -x $venv/bin/rune ]]; then
  log "installing rune-bench==$ORIG_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "rune-bench==$ORIG_VERSION" >&2
fi
orig_installed=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("rune-bench"))')

BENCH_TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
export BENCH_TOKEN

# --- start both servers ----------------------------------------------------------
rune_port=$("${helper[@]}" free-port)
orig_port=$("${helper[@]}" free-port)
while [[ $orig_port == "$rune_port" ]]; do orig_port=$("${helper[@]}" free-port); done

(
  cd "$work/rune"
  exec env RUNE_HOME="$work/rune" RUNE_API_TOKENS="bench:$BENCH_TOKEN" RUNE_RATE_LIMIT_RPS=0 RUNE_LOG=warn \
    "$rune_bin" serve --host 127.0.0.1 --port "$rune_port" --database-url "sqlite://$work/rune/jobs.db" 2>"$work/logs/rune-server.log"
) &
rune_pid=$!
pids+=("$rune_pid")
(
  cd "$work/orig"
  exec env RUNE_API_HOST=127.0.0.1 RUNE_API_PORT="$orig_port" RUNE_API_DB_PATH="$work/orig/jobs.db" \
    RUNE_API_TOKENS="bench:$BENCH_TOKEN" "$venv/bin/rune" serve >"$work/logs/orig-server.log" 2>&1
) &
orig_pid=$!
pids+=("$orig_pid")

"${helper[@]}" wait-ready "$rune_port" "$rune_pid" || { cat "$work/logs/rune-server.log" >&2; exit 1; }
"${helper[@]}" wait-ready "$orig_port" "$orig_pid" || { cat "$work/logs/orig-server.log" >&2; exit 1; }
sleep 2
read -r rune_idle _ < <("${helper[@]}" rss "$rune_pid")
read -r orig_idle _ < <("${helper[@]}" rss "$orig_pid")
log "RUNE on 127.0.0.1:$rune_port (pid $rune_pid, idle VmRSS $rune_idle kB); original on 127.0.0.1:$orig_port (pid $orig_pid, idle VmRSS $orig_idle kB)"

rune_url=http://127.0.0.1:$rune_port
orig_url=http://127.0.0.1:$orig_port
declare -A submit_path=([rune]=/v1/jobs/cost-estimate [orig]=/v1/jobs/benchmark)
declare -A base=([rune]=$rune_url [orig]=$orig_url)
declare -A pid=([rune]=$rune_pid [orig]=$orig_pid)

# The original has no cost-estimate job route: record its answer for the report.
orig_cost_estimate=$("${helper[@]}" request POST "$orig_url/v1/jobs/cost-estimate" "$BODY")
log "original, POST /v1/jobs/cost-estimate: $orig_cost_estimate"

declare -A job_id
for srv in rune orig; do
  job_id[$srv]=$("${helper[@]}" submit "${base[$srv]}${submit_path[$srv]}" "$BODY")
done
sleep 1
for srv in rune orig; do
  read -r code _ < <("${helper[@]}" request GET "${base[$srv]}/v1/jobs/${job_id[$srv]}")
  [[ $code == 200 ]] || { log "$srv: GET /v1/jobs/${job_id[$srv]} answered $code"; exit 1; }
done

url_of() { # server endpoint
  case $2 in
    post) echo "${base[$1]}${submit_path[$1]}" ;;
    get) echo "${base[$1]}/v1/jobs/${job_id[$1]}" ;;
    health) echo "${base[$1]}/healthz" ;;
  esac
}

# wrk command line (without the duration) for a server and an endpoint, in "$cmd[@]".
wrk_cmd() { # server endpoint
  cmd=(wrk "-t$THREADS" "-c$CONNECTIONS" -H "X-Tenant-ID: bench" -H "Authorization: Bearer $BENCH_TOKEN" -s "$LUA" "$(url_of "$1" "$2")")
  if [[ $2 == post ]]; then cmd+=(-- post "$BODY"); fi
}

# Exact commands, for the report (token and ports shown as variables).
: >"$work/commands.txt"
for srv in rune orig; do
  for ep in post get health; do
    wrk_cmd "$srv" "$ep"
    for word in "${cmd[0]}" "${cmd[1]}" "${cmd[2]}" "-d${DURATION}s" --latency "${cmd[@]:3}"; do
      if [[ $word =~ ^[A-Za-z0-9_./:=%-]+$ ]]; then printf '%s ' "$word"; else printf "'%s' " "$word"; fi
    done | sed -e "s/$BENCH_TOKEN/\$TOKEN/" -e "s/:$rune_port\//:\$PORT\//" -e "s/:$orig_port\//:\$PORT\//" \
            -e "s/${job_id[$srv]}/<job id>/" >>"$work/commands.txt"
    echo "   # $( [[ $srv == rune ]] && echo RUNE || echo original), $ep" >>"$work/commands.txt"
  done
done

measure() { # server endpoint repeat
  local srv=$1 ep=$2 rep=$3 out=$work/logs/$1-$2-$3.txt result rss overflows load
  wrk_cmd "$srv" "$ep"
  "${cmd[0]}" "${cmd[1]}" "${cmd[2]}" "-d${WARMUP}s" "${cmd[@]:3}" >"$work/logs/$srv-$ep-$rep-warmup.txt"
  overflows=$("${helper[@]}" listen-overflows)
  load=$(cut -d' ' -f1 /proc/loadavg)
  "${cmd[0]}" "${cmd[1]}" "${cmd[2]}" "-d${DURATION}s" --latency "${cmd[@]:3}" >"$out"
  overflows=$(($("${helper[@]}" listen-overflows) - overflows))
  result=$(sed -n 's/^BENCH_RESULT //p' "$out")
  [[ -n $result ]] || { log "no result from wrk:"; cat "$out" >&2; exit 1; }
  read -r rss _ < <("${helper[@]}" rss "${pid[$srv]}")
  echo "{\"server\": \"$srv\", \"endpoint\": \"$ep\", \"rep\": $rep, \"rss_kb\": $rss, \"listen_overflows\": $overflows, \"load1\": $load, ${result#\{}" >>"$work/runs.jsonl"
  log "$srv $ep #$rep: $(grep -E '^Requests/sec|Non-2xx|Socket errors' "$out" | tr -s ' \n' ' ')p99 $(awk '$1 == "99%" {print $2}' "$out")"
  if [[ $srv == rune && $ep == post ]]; then drain "$rep"; fi
}

# Waits until RUNE has run every job it accepted, and records how long that took.
drain() { # repeat
  local backlog start now left timed_out=false
  backlog=$("${helper[@]}" rune-queue "$rune_port")
  start=$(date +%s.%N)
  left=$backlog
  while ((left > 0)); do
    now=$(date +%s.%N)
    if awk -v a="$now" -v b="$start" -v t="$DRAIN_TIMEOUT" 'BEGIN {exit !(a - b > t)}'; then timed_out=true; break; fi
    sleep 0.5
    left=$("${helper[@]}" rune-queue "$rune_port")
  done
  now=$(date +%s.%N)
  local secs
  secs=$(awk -v a="$now" -v b="$start" 'BEGIN {printf "%.2f", a - b}')
  echo "{\"rep\": $1, \"backlog\": $backlog, \"seconds\": $secs, \"timed_out\": $timed_out, \"left\": $left}" >>"$work/drains.jsonl"
  log "RUNE drained $backlog queued/running jobs in $secs s (timed out: $timed_out)"
}

loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq 1 "$REPEATS"); do
  if ((rep % 2)); then order=(rune orig); else order=(orig rune); fi
  for ep in post get health; do
    for srv in "${order[@]}"; do measure "$srv" "$ep" "$rep"; done
  done
done

read -r rune_after rune_peak < <("${helper[@]}" rss "$rune_pid")
read -r orig_after orig_peak < <("${helper[@]}" rss "$orig_pid")
rune_jobs=$("${helper[@]}" rune-jobs "$rune_port")
orig_jobs=$("${helper[@]}" orig-jobs "$work/orig/jobs.db")
rune_log_lines=$(grep -cv 'listening on' "$work/logs/rune-server.log" || true)
rune_log_first=$(grep -v 'listening on' "$work/logs/rune-server.log" | head -1 | cut -c1-300 || true)

dirty=""
if [[ -n $(git status --porcelain 2>/dev/null) ]]; then dirty=" (work tree with uncommitted changes)"; fi
cat >"$work/meta.txt" <<EOF
date=$(date -u '+%Y-%m-%d %H:%M UTC')
nproc=$(nproc)
cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
mem=$(awk '/MemTotal/ {printf "%.0f GiB RAM", $2 / 1048576}' /proc/meminfo)
kernel=$(uname -r)
loadavg=$loadavg_before
rune_version=$("$rune_bin" --version)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$dirty
rustc=$(rustc --version)
orig_version=$orig_installed
python=$("$venv/bin/python" --version)
wrk=$(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)
threads=$THREADS
connections=$CONNECTIONS
warmup=$WARMUP
duration=$DURATION
repeats=$REPEATS
orig_cost_estimate=$orig_cost_estimate
rune_jobs=$rune_jobs
orig_jobs=$orig_jobs
rune_log_lines=$rune_log_lines
rune_log_first=$rune_log_first
rune_rss_idle=$rune_idle
rune_rss_peak=$rune_peak
rune_rss_after=$rune_after
orig_rss_idle=$orig_idle
orig_rss_peak=$orig_peak
orig_rss_after=$orig_after
EOF

mkdir -p "$(dirname "$OUT")"
"${helper[@]}" report "$work" | tee "$OUT"
