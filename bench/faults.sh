#!/usr/bin/env bash
# Fault suite: injures a running `rune serve` and checks what RUNE promises afterwards
# (docs/reliability.md): every acknowledged job (a 202 with a job id) is still there and
# ends in a terminal state, `rune db verify` passes, and no child process is left a zombie.
#
#   bench/faults.sh [--quick] [--rune PATH] [--write]
#
#   --quick   fewer jobs and shorter phases (what CI runs)
#   --rune    the binary to test (default: builds and uses target/release/rune)
#   --write   also write the table to bench/results/faults.md
#
# Scenarios (each prints PASS/FAIL with its figures; SKIP when this host cannot do it):
#   backend-faults   a model server answering 500s, stalling, sending garbage, and
#                    closing connections mid-answer (rune sim-llm fault injection)
#   kill-running     SIGKILL of `rune serve` while jobs run; restart; jobs finish
#   postgres-restart PostgreSQL restarted (pg_ctl restart -m fast) under a submit load
#   disk-full        the SQLite database on a 4 MiB tmpfs that fills up (root only)
# SIGKILL during a migration, a backup and a restore is covered by the test suite
# (crates/rune-cli/tests/cli/crash.rs), which runs in every CI build.
#
# Exit 0 when every scenario that ran passed, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

quick=0
write=0
rune=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --write) write=1 ;;
    --rune) rune=$2; shift ;;
    *) echo "faults.sh: unknown argument '$1' (expected --quick, --rune PATH, --write)" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$rune" ]; then
  cargo build --release --locked --bin rune >&2
  rune=$PWD/target/release/rune
fi
[ -x "$rune" ] || { echo "faults.sh: $rune is not an executable" >&2; exit 2; }
for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "faults.sh: needs $tool" >&2; exit 2; }
done

jobs_n=$((quick ? 12 : 40))
work=$(mktemp -d /tmp/rune-faults.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  if [ -n "${pg_data:-}" ] && [ -f "$pg_data/postmaster.pid" ]; then as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m immediate stop >/dev/null 2>&1 || true; fi
  if mountpoint -q "$work/tmpfs" 2>/dev/null; then umount "$work/tmpfs" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

results=()
failures=0
record() { # scenario verdict figures
  results+=("| $1 | $2 | $3 |")
  printf '%-18s %-5s %s\n' "$1" "$2" "$3"
  [ "$2" = FAIL ] && failures=$((failures + 1))
  return 0
}

TOKEN=faults-token-0123456789abcdef0123456789
api() { # METHOD PATH [BODY] -> "STATUS BODY"
  local method=$1 path=$2 body=${3:-} code
  code=$(curl -s -m 10 -o "$work/resp" -w '%{http_code}' -X "$method" "http://127.0.0.1:$port$path" \
    -H "Authorization: Bearer $TOKEN" -H 'X-Tenant-ID: faults' ${body:+-H 'Content-Type: application/json' -d "$body"}) || code=000
  echo "$code"
}

# start_serve HOME DATABASE_URL [ENV=VAL...]: runs `rune serve` on $port in the background.
start_serve() {
  local home=$1 url=$2
  shift 2
  env RUNE_HOME="$home" RUNE_DATABASE_URL="$url" RUNE_API_TOKENS="faults:$TOKEN" RUNE_RATE_LIMIT_RPS=0 \
    RUNE_SHUTDOWN_GRACE_SECONDS=1 RUNE_JOB_LEASE_SECONDS=2 "$@" \
    "$rune" serve --port "$port" >>"$home/serve.log" 2>&1 &
  serve_pid=$!
  pids+=("$serve_pid")
  for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")" = 200 ] && return 0
    sleep 0.1
  done
  echo "rune serve did not start; log:" >&2
  tail -20 "$home/serve.log" >&2
  return 1
}

# submit KIND BODY: prints the job id when acknowledged (202), nothing otherwise.
submit() {
  local status
  status=$(api POST "/v1/jobs/$1" "$2")
  [ "$status" = 202 ] && jq -r .job_id <"$work/resp"
  return 0
}

# settle IDS_FILE SECONDS: waits until every id is terminal; prints "missing nonterminal
# succeeded failed cancelled".
settle() {
  local ids=$1 deadline=$((SECONDS + $2)) missing nonterminal ok failed cancelled status
  while :; do
    missing=0 nonterminal=0 ok=0 failed=0 cancelled=0
    while read -r id; do
      [ -n "$id" ] || continue
      if [ "$(api GET "/v1/jobs/$id")" != 200 ]; then missing=$((missing + 1)); continue; fi
      status=$(jq -r .status <"$work/resp")
      case $status in
        succeeded) ok=$((ok + 1)) ;;
        failed) failed=$((failed + 1)) ;;
        cancelled) cancelled=$((cancelled + 1)) ;;
        *) nonterminal=$((nonterminal + 1)) ;;
      esac
    done <"$ids"
    if [ "$nonterminal" = 0 ] || [ "$SECONDS" -ge "$deadline" ]; then break; fi
    sleep 0.5
  done
  echo "$missing $nonterminal $ok $failed $cancelled"
}

zombies() { # children of PID in state Z
  # shellcheck disable=SC2009 # pgrep cannot select by parent and state together
  ps -o stat= --ppid "$1" 2>/dev/null | grep -c '^Z' || true
}

verify_db() { # HOME URL -> 0 when `rune db verify` passes
  RUNE_HOME=$1 RUNE_DATABASE_URL=$2 "$rune" db verify >"$1/verify.log" 2>&1
}

sim_port=$(free_port)

# --- backend-faults ---------------------------------------------------------------------
scenario_backend_faults() {
  local home=$work/backend && mkdir -p "$home"
  port=$(free_port)
  "$rune" sim-llm --port "$sim_port" --ttft-ms 5 --itl-ms 2 --output-tokens 24 --seed 7 \
    --fail-rate 0.15 --stall-rate 0.15 --stall-ms 1500 --malformed-rate 0.15 --drop-rate 0.15 \
    >"$home/sim.log" 2>&1 &
  local sim=$!
  pids+=("$sim")
  start_serve "$home" "sqlite://$home/jobs.db" RUNE_BACKEND_TIMEOUT=10s
  local body
  body=$(jq -nc --arg u "http://127.0.0.1:$sim_port" \
    '{backend_url: $u, backend_type: "openai", agent: "llm", model: "sim-llama", question: "Why is the pod pending?", backend_warmup: false}')
  : >"$home/ids"
  for _ in $(seq "$jobs_n"); do submit agentic-agent "$body" >>"$home/ids"; done
  local acked
  acked=$(grep -c . "$home/ids" || true)
  read -r missing nonterminal ok failed cancelled < <(settle "$home/ids" 120)
  local z
  z=$(zombies "$serve_pid")
  local errors_named=yes
  if [ "$failed" -gt 0 ]; then
    # Every failure carries a reason, not an empty error.
    while read -r id; do
      api GET "/v1/jobs/$id" >/dev/null
      if [ "$(jq -r .status <"$work/resp")" = failed ] && [ -z "$(jq -r '.error // empty' <"$work/resp")" ]; then
        errors_named=no
      fi
    done <"$home/ids"
  fi
  kill "$serve_pid" "$sim"
  wait "$serve_pid" 2>/dev/null || true
  local verdict=PASS
  verify_db "$home" "sqlite://$home/jobs.db" || verdict=FAIL
  if [ "$acked" != "$jobs_n" ] || [ "$missing" != 0 ] || [ "$nonterminal" != 0 ] || [ "$z" != 0 ] \
    || [ "$errors_named" != yes ] || [ "$ok" = 0 ] || [ "$failed" = 0 ]; then
    verdict=FAIL
  fi
  record backend-faults "$verdict" "$acked acknowledged: $ok succeeded, $failed failed with a reason (injected 500/stall/garbage/drop), $missing missing, $nonterminal stuck, $z zombies, db verify $( [ "$verdict" = PASS ] && echo ok || echo see log)"
}

# --- kill-running -------------------------------------------------------------------------
scenario_kill_running() {
  local home=$work/kill && mkdir -p "$home"
  port=$(free_port)
  "$rune" sim-llm --port "$sim_port" --ttft-ms 300 --itl-ms 20 --output-tokens 16 >"$home/sim.log" 2>&1 &
  local sim=$!
  pids+=("$sim")
  start_serve "$home" "sqlite://$home/jobs.db" RUNE_MAX_CONCURRENT_JOBS=4
  local body
  body=$(jq -nc --arg u "http://127.0.0.1:$sim_port" \
    '{backend_url: $u, backend_type: "openai", agent: "llm", model: "sim-llama", question: "What failed?", backend_warmup: false}')
  : >"$home/ids"
  for _ in $(seq "$jobs_n"); do submit agentic-agent "$body" >>"$home/ids"; done
  local acked running
  acked=$(grep -c . "$home/ids" || true)
  sleep 0.5
  running=$( (api GET '/v1/jobs?status=running&limit=500' >/dev/null; jq '.jobs | length' <"$work/resp") || echo 0)
  kill -9 "$serve_pid"
  wait "$serve_pid" 2>/dev/null || true
  start_serve "$home" "sqlite://$home/jobs.db" RUNE_MAX_CONCURRENT_JOBS=4
  read -r missing nonterminal ok failed cancelled < <(settle "$home/ids" 120)
  local z
  z=$(zombies "$serve_pid")
  kill "$serve_pid" "$sim"
  wait "$serve_pid" 2>/dev/null || true
  local verdict=PASS
  verify_db "$home" "sqlite://$home/jobs.db" || verdict=FAIL
  if [ "$acked" != "$jobs_n" ] || [ "$missing" != 0 ] || [ "$nonterminal" != 0 ] || [ "$z" != 0 ] || [ "$running" = 0 ]; then
    verdict=FAIL
  fi
  record kill-running "$verdict" "$acked acknowledged, $running running at SIGKILL; after restart: $ok succeeded, $failed failed, $cancelled cancelled, $missing missing, $nonterminal stuck, $z zombies"
}

# --- postgres-restart ---------------------------------------------------------------------

scenario_postgres_restart() {
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$pg_bin" ] || { [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; }; then
    record postgres-restart SKIP "PostgreSQL server binaries not installed"
    return
  fi
  local home=$work/pg && mkdir -p "$home"
  local pg_dir=$work/pgdata-root
  mkdir -p "$pg_dir" && chmod 777 "$pg_dir"
  pg_data=$pg_dir/data
  local pg_port
  pg_port=$(free_port)
  as_pg "$pg_bin/initdb" -A trust -U postgres -D "$pg_data" >/dev/null
  as_pg "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_dir/log" -w -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir" start >/dev/null
  local url="postgres://postgres@127.0.0.1:$pg_port/postgres"
  port=$(free_port)
  start_serve "$home" "$url"
  local body='{"vastai": true, "min_dph": 1.0, "max_dph": 2.0, "estimated_duration_seconds": 600}'
  : >"$home/ids"
  local phase=$((quick ? 4 : 10)) refused=0 t0=$SECONDS restarted=0 id restart_pid=""
  while [ $((SECONDS - t0)) -lt "$phase" ]; do
    id=$(submit cost-estimate "$body")
    if [ -n "$id" ]; then echo "$id" >>"$home/ids"; else refused=$((refused + 1)); fi
    if [ "$restarted" = 0 ] && [ $((SECONDS - t0)) -ge $((phase / 3)) ]; then
      as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w restart -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir" >/dev/null &
      restart_pid=$!
      restarted=1
    fi
  done
  [ -n "$restart_pid" ] && wait "$restart_pid"
  local acked
  acked=$(grep -c . "$home/ids" || true)
  read -r missing nonterminal ok failed cancelled < <(settle "$home/ids" 60)
  local ready
  ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")
  kill "$serve_pid"
  wait "$serve_pid" 2>/dev/null || true
  local verdict=PASS
  verify_db "$home" "$url" || verdict=FAIL
  if [ "$acked" = 0 ] || [ "$missing" != 0 ] || [ "$nonterminal" != 0 ] || [ "$ready" != 200 ] || [ "$failed" != 0 ]; then
    verdict=FAIL
  fi
  record postgres-restart "$verdict" "$acked acknowledged over ${phase}s with a restart; $refused refused while it was down (not acknowledged); $ok succeeded, $missing missing, $nonterminal stuck; /readyz $ready after"
  as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m fast stop >/dev/null 2>&1 || true
}

# --- disk-full ----------------------------------------------------------------------------
scenario_disk_full() {
  if [ "$(id -u)" != 0 ]; then
    record disk-full SKIP "needs root to mount a tmpfs"
    return
  fi
  local home=$work/tmpfs
  mkdir -p "$home"
  if ! mount -t tmpfs -o size=4m tmpfs "$home" 2>/dev/null; then
    record disk-full SKIP "cannot mount a tmpfs here"
    return
  fi
  port=$(free_port)
  start_serve "$home" "sqlite://$home/jobs.db"
  # Large-but-valid requests fill 4 MiB quickly.
  local question
  question=$(head -c 30000 /dev/zero | tr '\0' 'x')
  local body
  body=$(jq -nc --arg q "$question" '{backend_url: "http://127.0.0.1:9", question: $q, model: "m", backend_warmup: false}')
  : >"$work/full-ids"
  local refused=0 statuses="" status
  for _ in $(seq 400); do
    status=$(api POST /v1/jobs/agentic-agent "$body")
    if [ "$status" = 202 ]; then
      jq -r .job_id <"$work/resp" >>"$work/full-ids"
      refused=0
    else
      refused=$((refused + 1))
      [ "$refused" = 1 ] && cp "$work/resp" "$work/full-refusal.json"
      case " $statuses " in *" $status "*) ;; *) statuses="$statuses $status" ;; esac
      [ "$refused" -ge 5 ] && break
    fi
  done
  local acked health
  acked=$(grep -c . "$work/full-ids" || true)
  health=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")
  local alive=yes
  kill -0 "$serve_pid" 2>/dev/null || alive=no
  # Make room, then the same server must take work again and finish what it acknowledged.
  mount -o remount,size=64m "$home"
  local after
  after=$(submit cost-estimate '{"vastai": true, "min_dph": 1.0, "max_dph": 2.0}')
  [ -n "$after" ] && echo "$after" >>"$work/full-ids"
  read -r missing nonterminal ok failed cancelled < <(settle "$work/full-ids" 60)
  kill "$serve_pid"
  wait "$serve_pid" 2>/dev/null || true
  local verdict=PASS
  verify_db "$work" "sqlite://$home/jobs.db" || verdict=FAIL
  if [ "$refused" -lt 5 ] || [ "$alive" != yes ] || [ -z "$after" ] || [ "$missing" != 0 ] || [ "$nonterminal" != 0 ]; then
    verdict=FAIL
  fi
  # A full disk is the operator's to fix: 507 storage_full, never a bare 500.
  case "$statuses" in *507*) ;; *) verdict=FAIL ;; esac
  case "$statuses" in *500*) verdict=FAIL ;; esac
  local said
  said=$(jq -r '.error // empty' "$work/full-refusal.json" 2>/dev/null | cut -c1-120)
  record disk-full "$verdict" "$acked acknowledged before the disk filled; then refused with HTTP${statuses} (\"$said\") (healthz $health, process alive: $alive); after freeing space a new job was accepted; $missing missing, $nonterminal stuck"
}

scenario_backend_faults
scenario_kill_running
scenario_postgres_restart
scenario_disk_full

table="| scenario | verdict | figures |
|---|---|---|
$(printf '%s\n' "${results[@]}")"
if [ "$write" = 1 ]; then
  {
    echo "# Fault suite results"
    echo
    echo "Command: \`bench/faults.sh$( [ "$quick" = 1 ] && echo ' --quick') --write\` on $(date -u +%Y-%m-%d), $(nproc) cores, rune $("$rune" --version | head -1 | awk '{print $2}')."
    echo
    echo "$table"
  } >bench/results/faults.md
fi
echo
echo "$table"
[ "$failures" = 0 ]
