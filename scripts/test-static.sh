#!/usr/bin/env bash
# Tests the static (musl) release binary that the container image ships: it is static,
# `rune --version` names the schema version, and `rune serve` starts on an empty data
# directory (as in the image: RUNE_HOME=/data, sqlite:///…/jobs.db), answers /healthz and
# /readyz with 200, backs its database up online, and stops cleanly on SIGTERM.
#
# Usage: scripts/test-static.sh [BINARY]   (default: build it with scripts/build-static.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-$(scripts/build-static.sh)}
fail() { echo "test-static.sh: FAIL $*" >&2; exit 1; }

kind=$(file -b "$bin")
case "$kind" in
  *"statically linked"* | *"static-pie linked"*) echo "ok   static binary: $kind" ;;
  *) fail "$bin is not static: $kind" ;;
esac

version=$("$bin" --version)
[[ "$version" =~ ^rune\ [0-9]+\.[0-9]+\.[0-9]+.*\(schema\ version\ [0-9]+\) ]] || fail "unexpected --version: $version"
echo "ok   $version"

data=$(mktemp -d)
log="$data/serve.log"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RUNE_HOME="$data" RUNE_DATABASE_URL="sqlite://$data/jobs.db" "$bin" serve --host 127.0.0.1 --port "$port" >"$log" 2>&1 &
pid=$!
probe() {
  python3 - "$1" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        print(r.status, r.read().decode())
except Exception as e:
    print("ERR", e)
PY
}
for _ in $(seq 1 100); do
  out=$(probe "http://127.0.0.1:$port/healthz")
  [[ "$out" == 200* ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; fail "rune serve exited"; }
  sleep 0.1
done
[[ "$out" == 200* ]] || { cat "$log"; fail "/healthz did not answer 200: $out"; }
echo "ok   /healthz: $out"
out=$(probe "http://127.0.0.1:$port/readyz")
[[ "$out" == 200* ]] || { cat "$log"; fail "/readyz did not answer 200: $out"; }
echo "ok   /readyz: $out"
RUNE_HOME="$data" RUNE_DATABASE_URL="sqlite://$data/jobs.db" "$bin" db backup --output "$data/jobs.db.bak" >/dev/null \
  || fail "online backup beside the running server failed"
[ -s "$data/jobs.db.bak.manifest.json" ] || fail "no manifest written"
echo "ok   rune db backup while serving"
kill -TERM "$pid"
wait "$pid" && rc=0 || rc=$?
pid=""
[ "$rc" = 0 ] || { cat "$log"; fail "rune serve exited $rc after SIGTERM"; }
echo "ok   rune serve stopped cleanly on SIGTERM"
echo "test-static.sh: all checks passed"
