#!/usr/bin/env bash
# Builds the `rune-bench` wheel (maturin, bin bindings: the wheel carries the release
# `rune` binary) and prints its path on stdout. Checks that the wheel's version is the
# crate's version. A full release build: several minutes on 2 cores.
#
# Usage: scripts/build-wheel.sh [OUT_DIR]   (default: target/wheels)
# Env:   RUNE_MATURIN_VENV  virtualenv holding maturin (default: target/maturin-venv;
#        created and filled from PyPI when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/wheels}
venv=${RUNE_MATURIN_VENV:-target/maturin-venv}

if [ ! -x "$venv/bin/maturin" ]; then
  echo "build-wheel.sh: installing maturin into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "maturin>=1.5,<2"
fi

version=$(sed -n '/^\[workspace.package\]/,/^\[/{s/^version *= *"\(.*\)"/\1/p}' Cargo.toml)
[ -n "$version" ] || { echo "build-wheel.sh: no [workspace.package] version in Cargo.toml" >&2; exit 1; }
# PEP 440 spelling of the crate version (0.1.0-rc.1 -> 0.1.0rc1) as maturin writes it.
pep440=$(printf '%s' "$version" | sed -e 's/-alpha\.\{0,1\}/a/' -e 's/-beta\.\{0,1\}/b/' -e 's/-rc\.\{0,1\}/rc/')

mkdir -p "$out"
rm -f "$out"/rune_bench-"$pep440"-*.whl
"$venv/bin/maturin" build --release --locked --out "$out" >&2
for wheel in "$out"/rune_bench-"$pep440"-*.whl; do
  if [ -f "$wheel" ]; then
    echo "$wheel"
    exit 0
  fi
done
echo "build-wheel.sh: maturin wrote no wheel for version $pep440 into $out" >&2
exit 1
