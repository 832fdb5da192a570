#!/usr/bin/env bash
# Renders and checks every Helm chart under deploy/helm with a real helm binary:
#   helm lint; helm template with default values and each ci/*-values.yaml;
#   kubernetes-validate --strict on every rendered object (Kubernetes schemas);
#   scripts/chart_check.py: restricted Pod Security on every pod spec, resources,
#   no secret outside a Secret, SQLite = 1 replica + Recreate + /data, HTTPRoute shape;
#   renders that must fail (SQLite with 2 replicas, PostgreSQL without a Secret, …);
#   the operator ClusterRole/Role equal `rune operator rbac` (and grant bench.rune.ai),
#   the chart CRD equals `rune operator crd`, and the env/flags the charts pass exist in
#   `rune operator run --help` and `rune ui --help`.
# Tools come from scripts/fetch-helm.sh (helm, kubectl) and a venv in target/tools
# (kubernetes-validate, PyYAML). RUNE_BIN: a built `rune` (default: cargo build).
# Exit 0 all passed, 1 something failed.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=${RUNE_TOOLS_DIR:-$PWD/target/tools}
bin=$(RUNE_TOOLS_DIR="$tools" scripts/fetch-helm.sh)
helm="$bin/helm"
venv="$tools/venv"
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate==1.37.0 pyyaml >&2 \
    || "$venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate pyyaml >&2
fi
py="$venv/bin/python"
check="$py scripts/chart_check.py"
k8s_version=${RUNE_K8S_VERSION:-1.30.0}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
ok() { echo "ok   $*"; }

$check selftest >/dev/null || fail "chart_check.py selftest"

# chart release namespace
charts=("rune rune rune" "rune-operator rune-operator rune-system" "rune-ui rune-ui rune")
for entry in "${charts[@]}"; do
  read -r chart release ns <<<"$entry"
  dir="deploy/helm/$chart"
  for values in "" "$dir"/ci/*-values.yaml; do
    label="$chart${values:+ ($(basename "$values"))}"
    args=(--namespace "$ns")
    [ -n "$values" ] && args+=(-f "$values")
    if ! "$helm" lint --strict "$dir" "${args[@]}" >"$out/lint.log" 2>&1; then
      cat "$out/lint.log"
      fail "helm lint $label"
      continue
    fi
    file="$out/$chart-$(basename "${values:-default}").yaml"
    if ! "$helm" template "$release" "$dir" "${args[@]}" --include-crds >"$file" 2>"$out/err.log"; then
      cat "$out/err.log"
      fail "helm template $label"
      continue
    fi
    if "$venv/bin/kubernetes-validate" --strict --quiet -k "$k8s_version" "$file" >"$out/kv.log" 2>&1 \
      && ! grep -q '^ERROR' "$out/kv.log"; then
      ok "kubernetes-validate --strict (k8s $k8s_version) $label"
    else
      cat "$out/kv.log"
      fail "kubernetes-validate $label"
    fi
    if $check pss "$file"; then ok "pod security, resources, secrets $label"; else fail "pod security $label"; fi
  done
done

# Renders that must be refused, each with a message naming the fix.
must_fail() {
  local chart=$1 needle=$2
  shift 2
  if "$helm" template x "deploy/helm/$chart" "$@" >/dev/null 2>"$out/err.log"; then
    fail "$chart $* rendered, but must be refused"
  elif grep -q -- "$needle" "$out/err.log"; then
    ok "$chart refuses $*"
  else
    cat "$out/err.log"
    fail "$chart $* refused without naming '$needle'"
  fi
}
must_fail rune "needs database.type=postgres" --set replicaCount=2
must_fail rune "needs database.type=postgres" --set autoscaling.enabled=true
must_fail rune "database.postgres.existingSecret" --set database.type=postgres
must_fail rune "backupHook.existingClaim" --set database.type=postgres --set database.postgres.existingSecret=s
must_fail rune "image/digest" --set image.digest=latest
must_fail rune "looks like a secret" --set config.RUNE_DATABASE_URL=postgres://u:p@h/db
must_fail rune "parentRefs" --set httpRoute.enabled=true
must_fail rune-operator "leaderElection" --set replicaCount=2 --set leaderElection.enabled=false

# The hook and the pinned image, in the default render of `rune`.
default="$out/rune-default.yaml"
if grep -q 'helm.sh/hook: pre-upgrade,pre-rollback' "$default" && grep -q 'args: \["db", "backup"\]' "$default"; then
  ok "rune: pre-upgrade/pre-rollback hook runs rune db backup"
else
  fail "rune: no pre-upgrade,pre-rollback backup hook"
fi
if "$helm" template rune deploy/helm/rune --set image.tag=0.0.9 | grep -q 'image: "ghcr.io/rune-bench/rune:0.0.9"'; then
  ok "rune: --set image.tag pins the image"
else
  fail "rune: --set image.tag does not pin the image"
fi

# The operator's own view of its RBAC and CRD, and the commands the charts run.
rune_bin=${RUNE_BIN:-}
if [ -z "$rune_bin" ]; then
  cargo build -q --locked --bin rune
  rune_bin=target/debug/rune
fi
op_render="$out/rune-operator-default.yaml"
if "$rune_bin" operator rbac >"$out/rbac.yaml" 2>"$out/err.log"; then
  if $check rbac "$op_render" "$out/rbac.yaml"; then ok "operator RBAC equals \`rune operator rbac\` and grants bench.rune.ai"; else fail "operator RBAC"; fi
else
  cat "$out/err.log"
  fail "\`rune operator rbac\` is not available: cannot prove the chart's RBAC matches the operator"
fi
if "$rune_bin" operator crd >"$out/crd.yaml" 2>"$out/err.log"; then
  if [ -d deploy/helm/rune-operator/crds ] && $check crd deploy/helm/rune-operator/crds "$out/crd.yaml"; then
    ok "chart CRD equals \`rune operator crd\`"
  else
    fail "chart CRD (deploy/helm/rune-operator/crds) differs from \`rune operator crd\`"
  fi
else
  cat "$out/err.log"
  fail "\`rune operator crd\` is not available"
fi
if "$rune_bin" operator run --help >"$out/op-help.txt" 2>&1; then
  if $check env "$op_render" rune-operator "$out/op-help.txt"; then ok "operator env/flags exist in \`rune operator run --help\`"; else fail "operator env/flags"; fi
else
  fail "\`rune operator run --help\` is not available"
fi
if "$rune_bin" ui --help >"$out/ui-help.txt" 2>&1; then
  if $check env "$out/rune-ui-default.yaml" rune-ui "$out/ui-help.txt"; then ok "UI flags exist in \`rune ui --help\`"; else fail "UI flags"; fi
else
  fail "\`rune ui --help\` is not available"
fi
# `rune serve` also reads the server settings of crates/rune-api (ServerConfig::from_env, auth).
if "$rune_bin" serve --help >"$out/serve-help.txt" 2>&1 \
  && grep -ohE '(lookup|var)\("RUNE_[A-Z_]+"\)' crates/rune-api/src/*.rs | sed -E 's/.*"(RUNE_[A-Z_]+)".*/[env: \1]/' >>"$out/serve-help.txt" \
  && $check env "$default" rune-api "$out/serve-help.txt"; then ok "API flags exist in \`rune serve --help\`"; else fail "API flags"; fi

if [ "$failures" -gt 0 ]; then
  echo "chart-check: $failures check(s) failed"
  exit 1
fi
echo "chart-check: all checks passed"
