#!/usr/bin/env bash
# Installs RUNE on an air-gapped cluster from a bundle made by `rune airgap bundle`.
#
# Order: verify the bundle (checksums, signature) BEFORE any cluster command; check
# prerequisites; create the namespaces; load the images into the in-cluster registry
# (names, tags and every architecture kept); apply the CRDs; install the operator, then
# the API, then the UI with helm; run `rune health-check`.
#
# Exit codes: 0 ok · 1 error · 2 prerequisites missing · 3 verification failed (bundle, or
# `rune health-check` after the install).
# See docs/operations/airgap.md.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: bootstrap.sh --bundle FILE [options]

  --bundle FILE              rune-bundle-VERSION.tar.gz (required)
  --public-key FILE          ed25519 public key (PEM) the bundle must be signed with
  --allow-unsigned           accept a bundle without checking a signature (checksums only)
  --namespace NS             API and UI namespace (default: rune)
  --operator-namespace NS    operator namespace (default: rune-system)
  --registry HOST:PORT       registry the images are pushed to from this node (default: localhost:5000)
  --cluster-registry HOST    registry address the nodes pull from (default: --registry)
  --insecure-registry        push over plain HTTP / without TLS verification
  --values FILE              extra values for the rune (API) chart
  --operator-values FILE     extra values for the rune-operator chart
  --ui-values FILE           extra values for the rune-ui chart
  --timeout DURATION         helm --timeout (default: 300s)
  --skip-health-check        do not run `rune health-check` at the end
  --log-dir DIR              where bootstrap-<time>.log is written (default: .)
  --dry-run                  verify the bundle and print the plan; change nothing
  --verbose                  log every command
  -h, --help                 this help

Exit codes: 0 ok, 1 error, 2 prerequisites missing, 3 verification or health check failed.
USAGE
}

BUNDLE="" PUBLIC_KEY="" ALLOW_UNSIGNED=false
NAMESPACE=rune OPERATOR_NAMESPACE=rune-system
REGISTRY=localhost:5000 CLUSTER_REGISTRY="" REGISTRY_INSECURE=false
VALUES="" OPERATOR_VALUES="" UI_VALUES="" TIMEOUT=300s SKIP_HEALTH=false
LOG_DIR=${LOG_DIR:-.}

while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) BUNDLE=${2:?--bundle needs a file}; shift 2 ;;
    --public-key) PUBLIC_KEY=${2:?--public-key needs a file}; shift 2 ;;
    --allow-unsigned) ALLOW_UNSIGNED=true; shift ;;
    --namespace) NAMESPACE=${2:?--namespace needs a name}; shift 2 ;;
    --operator-namespace) OPERATOR_NAMESPACE=${2:?--operator-namespace needs a name}; shift 2 ;;
    --registry) REGISTRY=${2:?--registry needs HOST:PORT}; shift 2 ;;
    --cluster-registry) CLUSTER_REGISTRY=${2:?--cluster-registry needs HOST:PORT}; shift 2 ;;
    --insecure-registry) REGISTRY_INSECURE=true; shift ;;
    --values) VALUES=${2:?--values needs a file}; shift 2 ;;
    --operator-values) OPERATOR_VALUES=${2:?--operator-values needs a file}; shift 2 ;;
    --ui-values) UI_VALUES=${2:?--ui-values needs a file}; shift 2 ;;
    --timeout) TIMEOUT=${2:?--timeout needs a duration}; shift 2 ;;
    --skip-health-check) SKIP_HEALTH=true; shift ;;
    --log-dir) LOG_DIR=${2:?--log-dir needs a directory}; shift 2 ;;
    --dry-run) DRY_RUN=true; shift ;;
    --verbose) VERBOSE=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "$EXIT_ERROR" "unknown option: $1" ;;
  esac
done

[ -n "$BUNDLE" ] || { usage >&2; die "$EXIT_ERROR" "--bundle is required"; }
for pair in "--values:$VALUES" "--operator-values:$OPERATOR_VALUES" "--ui-values:$UI_VALUES"; do
  if [ -n "${pair#*:}" ]; then require_file "${pair%%:*}" "${pair#*:}"; fi
done

start_log bootstrap
need tar sha256sum find comm awk

# 1. Verify: no cluster command may run before this passes.
unpack_and_verify "$BUNDLE" "$PUBLIC_KEY" "$ALLOW_UNSIGNED"

# 2. Prerequisites.
if [ "$DRY_RUN" = true ]; then
  for t in kubectl helm skopeo rune; do
    command -v "$t" >/dev/null 2>&1 || warn "dry run: $t is not on PATH (a real run exits 2)"
  done
else
  tools=(kubectl helm skopeo)
  if [ "$SKIP_HEALTH" = false ]; then tools+=(rune); fi
  need "${tools[@]}"
  kubectl cluster-info >/dev/null 2>&1 || die "$EXIT_PREREQ" "the cluster is unreachable (kubectl cluster-info failed); nothing was changed"
fi

# 3. Plan.
cat <<PLAN
DEPLOYMENT PLAN (bundle $BUNDLE_VERSION)
  1. namespaces $OPERATOR_NAMESPACE, $NAMESPACE (pod-security: restricted)
  2. images -> $REGISTRY (pulled by the cluster as $(image_repository):$BUNDLE_VERSION)
  3. CRDs from the bundle
  4. helm: rune-operator ($OPERATOR_NAMESPACE) -> rune ($NAMESPACE) -> rune-ui ($NAMESPACE)
  5. rune health-check$([ "$SKIP_HEALTH" = true ] && printf ' (skipped)')
PLAN

# 4. Namespaces.
for ns in "$OPERATOR_NAMESPACE" "$NAMESPACE"; do
  if [ "$DRY_RUN" = true ] || ! kubectl get namespace "$ns" >/dev/null 2>&1; then
    run kubectl create namespace "$ns" || die "$EXIT_ERROR" "creating namespace $ns failed"
  fi
  run kubectl label namespace "$ns" --overwrite pod-security.kubernetes.io/enforce=restricted \
    pod-security.kubernetes.io/warn=restricted app.kubernetes.io/part-of=rune ||
    die "$EXIT_ERROR" "labelling namespace $ns failed"
done

# 5. Images, CRDs, charts (operator -> API -> UI).
load_images
apply_crds
for release in "${RELEASES_IN_ORDER[@]}"; do
  helm_deploy "$release" || die "$EXIT_ERROR" "helm install of $release failed; see the log ($LOG_FILE)"
done

# 6. Health.
if [ "$SKIP_HEALTH" = false ]; then
  health_check || die "$EXIT_VERIFY" "the health check failed after the install; inspect with kubectl, then re-run"
fi

if [ "$DRY_RUN" = true ]; then
  info "DRY RUN complete (no changes made)"
else
  info "RUNE $BUNDLE_VERSION installed (namespace $NAMESPACE, operator $OPERATOR_NAMESPACE, registry $REGISTRY)"
fi
exit "$EXIT_OK"
