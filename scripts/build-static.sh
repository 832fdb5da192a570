#!/usr/bin/env bash
# Builds the static (musl) release binary of `rune` and prints its path on stdout.
#
# This is the binary the container image (Dockerfile) and the packaging use. It installs
# what the build needs when it is missing: the Rust target x86_64-unknown-linux-musl
# (rustup) and a musl C compiler (apt package musl-tools, for SQLite and ring).
#
# Env: RUNE_STATIC_TARGET_DIR (default target/static): a target directory of its own,
# so this long release build never holds the lock of the everyday debug builds.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
target_dir=${RUNE_STATIC_TARGET_DIR:-target/static}

if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  echo "build-static.sh: adding Rust target $target" >&2
  rustup target add "$target" >&2
fi
if ! command -v musl-gcc >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "build-static.sh: installing musl-tools" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools >/dev/null
  else
    echo "build-static.sh: musl-gcc not found; install musl-tools (apt-get install musl-tools)" >&2
    exit 1
  fi
fi

# The C parts (bundled SQLite, ring) are compiled with musl-gcc; Rust links statically
# by default on musl.
export CC_x86_64_unknown_linux_musl=musl-gcc
CARGO_TARGET_DIR="$target_dir" cargo build --release --locked --target "$target" --bin rune >&2
bin="$target_dir/$target/release/rune"
if file "$bin" 2>/dev/null | grep -q 'dynamically linked'; then
  echo "build-static.sh: $bin is dynamically linked; expected a static binary" >&2
  exit 1
fi
echo "$bin"
