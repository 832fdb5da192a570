#!/usr/bin/env bash
# Cross-builds the static (musl) `rune` for another Linux architecture with
# cargo-zigbuild, Zig acting as the C cross compiler for the bundled SQLite and ring.
# Both tools come from PyPI (packages `ziglang` and `cargo-zigbuild`), so no toolchain
# download site is needed besides rustup's target. Prints the binary's path on stdout.
#
# Usage: scripts/build-cross.sh [TARGET]   (default: aarch64-unknown-linux-musl)
# Env:   RUNE_CROSS_TARGET_DIR (default target/cross): a target directory of its own, so
#        this long release build never holds the lock of the everyday debug builds.
#        RUNE_ZIG_VENV (default target/zig-venv): virtualenv for ziglang + cargo-zigbuild.
#
# The x86_64 static binary is built natively by scripts/build-static.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-aarch64-unknown-linux-musl}
target_dir=${RUNE_CROSS_TARGET_DIR:-target/cross}
venv=${RUNE_ZIG_VENV:-target/zig-venv}

case "$target" in
  *-linux-musl) ;;
  *) echo "build-cross.sh: $target is not a Linux musl target (e.g. aarch64-unknown-linux-musl)" >&2; exit 2 ;;
esac

if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  echo "build-cross.sh: adding Rust target $target" >&2
  rustup target add "$target" >&2
fi
if [ ! -x "$venv/bin/cargo-zigbuild" ]; then
  echo "build-cross.sh: installing ziglang and cargo-zigbuild into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check ziglang cargo-zigbuild
fi
# cargo-zigbuild finds Zig through the ziglang package of the Python on PATH.
export PATH="$PWD/$venv/bin:$PATH"
CARGO_TARGET_DIR="$target_dir" cargo zigbuild --release --locked --target "$target" --bin rune >&2
bin="$target_dir/$target/release/rune"
[ -x "$bin" ] || { echo "build-cross.sh: $bin was not produced" >&2; exit 1; }
echo "$bin"
