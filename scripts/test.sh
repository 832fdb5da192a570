#!/usr/bin/env bash
# Runs every RUNE test. This is the README's test command; .ci/run calls it too.
#
# The store suite runs each case against SQLite and a real PostgreSQL server. If
# RUNE_TEST_POSTGRES_URL is not set, this script starts a throwaway PostgreSQL (initdb -A
# trust on a temp dir, 127.0.0.1 and a free port, as the `postgres` user when run as
# root) and stops it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_tmp=""
cleanup() {
  if [ -n "$pg_tmp" ] && [ -f "$pg_tmp/data/postmaster.pid" ]; then
    run_pg "$pg_bin/pg_ctl" -D "$pg_tmp/data" -m fast stop >/dev/null 2>&1 || true
  fi
  [ -n "$pg_tmp" ] && rm -rf "$pg_tmp"
}
trap cleanup EXIT

run_pg() {
  if [ "$(id -u)" = 0 ]; then
    local cmd
    printf -v cmd '%q ' "$@"
    su postgres -s /bin/sh -c "$cmd"
  else
    "$@"
  fi
}

if [ -z "${RUNE_TEST_POSTGRES_URL:-}" ]; then
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ]; then
    pg_tmp=$(mktemp -d /tmp/rune-pg.XXXXXX)
    chmod 755 "$pg_tmp"
    [ "$(id -u)" = 0 ] && chown postgres "$pg_tmp"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    run_pg "$pg_bin/initdb" -A trust -U postgres -D "$pg_tmp/data" >/dev/null
    run_pg "$pg_bin/pg_ctl" -D "$pg_tmp/data" -l "$pg_tmp/log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $pg_tmp -c max_connections=300 -c fsync=off" start >/dev/null
    export RUNE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    echo "test.sh: PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
  elif [ "${CI:-}" = "true" ]; then
    echo "test.sh: PostgreSQL is not installed; CI needs it (apt-get install postgresql)" >&2
    exit 1
  else
    echo "test.sh: PostgreSQL not found; the PostgreSQL half of the store suite will be skipped" >&2
  fi
fi

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  cargo test --workspace --locked --no-fail-fast "$@"
fi
# nextest does not run doc tests.
cargo test --workspace --locked --doc --quiet
