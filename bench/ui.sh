#!/usr/bin/env bash
# UI render benchmark: a real API on a SQLite database with 100 000 finished benchmark
# jobs, the web UI in front of it, and the time each page takes (median and p95 of
# sequential requests), next to the API calls the pages are built from (the baseline,
# measured in the same run).
#
#   bench/ui.sh
#   BENCH_JOBS=20000 BENCH_RUNS=30 bench/ui.sh
#
# Writes bench/results/ui.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_JOBS=${BENCH_JOBS:-100000}
export BENCH_RUNS=${BENCH_RUNS:-50}
while read -r var; do unset "$var"; done < <(compgen -e | grep '^RUNE_' || true)
cargo build --release --locked -p rune-ui --example ui_bench >&2
echo "ui.sh: storing $BENCH_JOBS jobs, then timing the pages" >&2
target/release/examples/ui_bench | tee bench/results/ui.md
