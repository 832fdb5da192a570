#!/usr/bin/env bash
# Store benchmark: insert rate, get-by-id and list-page latency at 1M jobs, and the
# time of `rune db backup` against `sqlite3 .backup` on the same ~1 GB database in the
# same run (medians of several runs, alternating, so machine noise hits both).
#
#   bench/store.sh                 # 1M jobs, ~1 GB (needs ~4 GB free in $BENCH_DIR)
#   BENCH_JOBS=100000 bench/store.sh
#
# Writes bench/results/store.md and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_JOBS=${BENCH_JOBS:-1000000}
export BENCH_BACKUP_RUNS=${BENCH_BACKUP_RUNS:-3}
work=${BENCH_DIR:-$(mktemp -d /tmp/rune-store-bench.XXXXXX)}
export BENCH_DIR=$work
trap 'rm -rf "$work"' EXIT
command -v sqlite3 >/dev/null || { echo "needs the sqlite3 CLI (apt-get install sqlite3)" >&2; exit 2; }

cargo build --release --locked -p rune-store --example store_bench >/dev/null
echo "store.sh: building a $BENCH_JOBS-job database in $work (this takes a while)" >&2
json=$(target/release/examples/store_bench)

# Baseline: sqlite3's own online backup of the same file, same number of runs.
base=()
for i in $(seq 1 "$BENCH_BACKUP_RUNS"); do
  base+=("$(python3 -c 'import subprocess, sys, time; t = time.monotonic(); subprocess.run(sys.argv[1:], check=True); print(time.monotonic() - t)' \
    sqlite3 "$work/jobs.db" ".backup '$work/sqlite3-$i.db'")")
  rm -f "$work/sqlite3-$i.db"
done
sqlite_median=$(printf '%s\n' "${base[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')

python3 - "$json" "$sqlite_median" "$(sqlite3 --version | cut -d' ' -f1)" <<'PY' | tee bench/results/store.md
import json, sys, platform, os
r = json.loads(sys.argv[1]); base = float(sys.argv[2]); sqlite_version = sys.argv[3]
copy, full = r["backup_copy_s_median"], r["backup_full_s_median"]
print("# Store benchmark\n")
print(f"Machine: {os.cpu_count()} cores, {platform.machine()}; SQLite CLI {sqlite_version}; "
      f"{r['jobs']:,} jobs, database {r['db_bytes']/1e9:.2f} GB; backups: median of {r['backup_runs']} runs.\n")
print("| measure | result | target |")
print("|---|---|---|")
print(f"| single-job insert, one submitter (durable commit each) | {r['insert_sequential_per_s']:,.0f} jobs/s | |")
print(f"| single-job insert, 16 concurrent submitters (group commit) | {r['insert_concurrent16_per_s']:,.0f} jobs/s | |")
print(f"| get by id, p50 / p99 | {r['get_by_id_ms']['p50']:.3f} / {r['get_by_id_ms']['p99']:.3f} ms | |")
print(f"| list page (50 rows, tenant + status), first page p50 / p99 | {r['list_page_first_ms']['p50']:.3f} / {r['list_page_first_ms']['p99']:.3f} ms | < 5 ms |")
print(f"| list page, 21st page via cursor, p50 / p99 | {r['list_page_deep_ms']['p50']:.3f} / {r['list_page_deep_ms']['p99']:.3f} ms | < 5 ms |")
print(f"| `sqlite3 .backup` (baseline) | {base:.2f} s | |")
print(f"| RUNE online copy (backup API, one snapshot) | {copy:.2f} s = {copy/base:.2f}x baseline | <= 1.5x |")
print(f"| `rune db backup` in full (copy, then quick_check + per-job manifest + SHA-256 of the copy, fsync) | {full:.2f} s = {full/base:.2f}x baseline | |")
PY
