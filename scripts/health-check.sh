#!/usr/bin/env bash
# Verification after a deploy, upgrade or rollback: a thin wrapper over
# `rune health-check` taking the same flags, e.g.
#
#   ./scripts/health-check.sh --namespace rune
#   ./scripts/health-check.sh --namespace rune --api-base-url http://127.0.0.1:8080 \
#       --manifest jobs.db.bak.manifest.json --output json
#
# Uses `rune` from PATH, or RUNE_BIN. Exit codes are rune health-check's: 0 all checks
# passed, 1 a check failed, 2 the cluster or the API could not be reached (or bad input).
set -euo pipefail
rune=${RUNE_BIN:-rune}
if ! command -v "$rune" >/dev/null 2>&1; then
  echo "health-check.sh: \`$rune\` not found; install RUNE (pip install rune-bench, or cargo install --path crates/rune-cli) or set RUNE_BIN" >&2
  exit 2
fi
exec "$rune" health-check "$@"
