#!/usr/bin/env bash
# Load and soak: `rune serve` under sustained mixed load (submits with idempotent
# replays, list pages, SSE run traces followed to the end, cancels) on SQLite, then on
# PostgreSQL with two replicas sharing one queue. Checks no unexpected status, no lost or
# duplicated job, every job claimed and ended once, memory flat (bench/soak/soak.py).
#
#   bench/soak.sh [--quick] [--rune PATH] [--write]
#
#   --quick   15 s per configuration (what CI runs) instead of SOAK_DURATION (default 120 s)
#   --rune    binary to test (default: builds target/release/rune)
#   --write   also write bench/results/soak.md
# PostgreSQL: RUNE_TEST_POSTGRES_URL if set (a fresh database is created on it), else a
# throwaway server from the Debian packages (skipped when they are missing).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

duration=${SOAK_DURATION:-120}
workers=${SOAK_WORKERS:-8}
write=0
rune=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) duration=15 ;;
    --write) write=1 ;;
    --rune) rune=$2; shift ;;
    *) echo "soak.sh: unknown argument '$1' (expected --quick, --rune PATH, --write)" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$rune" ]; then
  cargo build --release --locked --bin rune >&2
  rune=$PWD/target/release/rune
fi

work=$(mktemp -d /tmp/rune-soak.XXXXXX)
chmod 755 "$work"
pids=()
pg_data=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$pg_data" ] && [ -f "$pg_data/postmaster.pid" ]; then as_pg "$pg_bin/pg_ctl" -D "$pg_data" -m immediate stop >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
TOKEN=soak-token-0123456789abcdef0123456789abcd

started_ports=()
started_pids=()
start_serve() { # HOME URL
  local port
  port=$(free_port)
  RUNE_HOME=$1 RUNE_DATABASE_URL=$2 RUNE_API_TOKENS="soak:$TOKEN" RUNE_RATE_LIMIT_RPS=0 RUNE_LOG=warn \
    "$rune" serve --port "$port" >>"$1/serve-$port.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ] && break
    sleep 0.1
  done
  started_ports+=("$port")
  started_pids+=("$pid")
}

run() { # LABEL
  local ports pids_csv
  ports=$(IFS=,; echo "${started_ports[*]}")
  pids_csv=$(IFS=,; echo "${started_pids[*]}")
  echo "=== $1: ${#started_ports[@]} replica(s), ${duration}s, $workers workers" >&2
  local status=0
  python3 bench/soak/soak.py --ports "$ports" --pids "$pids_csv" --token "$TOKEN" --duration "$duration" \
    --workers "$workers" >"$work/$1.json" || status=$?
  cat "$work/$1.json"
  for p in "${started_pids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
  started_ports=()
  started_pids=()
  return "$status"
}

failed=0
mkdir -p "$work/sqlite"
start_serve "$work/sqlite" "sqlite://$work/sqlite/jobs.db"
run sqlite || failed=1

pg_url=""
if [ -n "${RUNE_TEST_POSTGRES_URL:-}" ]; then
  db="rune_soak_$$"
  psql "$RUNE_TEST_POSTGRES_URL" -qc "CREATE DATABASE $db" >/dev/null
  pg_url="${RUNE_TEST_POSTGRES_URL%/*}/$db"
else
  pg_bin=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$pg_bin" ]; then
    mkdir -p "$work/pg" && chmod 777 "$work/pg"
    pg_data=$work/pg/data
    pg_port=$(free_port)
    as_pg "$pg_bin/initdb" -A trust -U postgres -D "$pg_data" >/dev/null
    as_pg "$pg_bin/pg_ctl" -D "$pg_data" -l "$work/pg/log" -w -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $work/pg" start >/dev/null
    pg_url="postgres://postgres@127.0.0.1:$pg_port/postgres"
  fi
fi
if [ -n "$pg_url" ]; then
  mkdir -p "$work/pg-a" "$work/pg-b"
  # The first replica migrates; the second starts on the migrated schema.
  start_serve "$work/pg-a" "$pg_url"
  start_serve "$work/pg-b" "$pg_url"
  run postgres-2-replicas || failed=1
else
  echo "soak.sh: no PostgreSQL available; the two-replica run was skipped" >&2
  [ "${CI:-}" = true ] && failed=1
fi

if [ "$write" = 1 ]; then
  {
    echo "# Load and soak results"
    echo
    echo "Command: \`bench/soak.sh --write\` (SOAK_DURATION=$duration, SOAK_WORKERS=$workers) on $(date -u +%Y-%m-%d), $(nproc) cores, $("$rune" --version | head -1)."
    echo
    for f in "$work"/*.json; do
      echo "## $(basename "$f" .json)"
      echo
      echo '```json'
      cat "$f"
      echo '```'
      echo
    done
  } >bench/results/soak.md
fi
exit "$failed"
