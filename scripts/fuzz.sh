#!/usr/bin/env bash
# Fuzzes every parser RUNE exposes to untrusted input (cargo-fuzz + libFuzzer, nightly).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     default: 20 s each, all targets
#
# The targets are listed by `cargo fuzz list` (fuzz/fuzz_targets/); their logic lives in
# crates/rune-fuzz. Each starts from its committed corpus in fuzz/corpus/<target>/; new
# interesting inputs are added there (commit the ones worth keeping). A crash is saved in
# fuzz/artifacts/<target>/ and makes this script exit 1: copy the file into the corpus,
# fix the parser, and the ordinary test run (crates/rune-fuzz/tests/corpus.rs) keeps it
# fixed on stable.
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`). Exit 2
# when either is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-20}
shift || true
case $seconds in
  '' | *[!0-9]*) echo "fuzz.sh: SECONDS_PER_TARGET must be a whole number, got '$seconds'" >&2; exit 2 ;;
esac

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz.sh: no nightly toolchain (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-fuzz is not installed (cargo install cargo-fuzz --locked)" >&2
  exit 2
fi

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

# Build every target once (sanitizer build of the whole dependency tree), then run them.
cargo +nightly fuzz build --release
failed=()
for t in "${targets[@]}"; do
  echo "=== fuzz $t (${seconds}s)"
  log=$(mktemp)
  status=0
  cargo +nightly fuzz run --release "$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E '^(stat::number_of_executed_units|stat::new_units_added)|^SUMMARY|panicked' "$log" || true
  if [ "$status" != 0 ]; then
    tail -n 40 "$log" >&2
    failed+=("$t")
  fi
  rm -f "$log"
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: ${#targets[@]} targets, ${seconds}s each, no crash"
