#!/usr/bin/env bash
# Upgrades an air-gapped RUNE installation to a new bundle, and rolls it back
# automatically when the upgrade or the health check after it fails.
#
# Order: verify the bundle (before any cluster command); check prerequisites; take a
# persistent backup (helm values, revisions, `rune db backup` in the API pod) under
# --backup-dir, which is never deleted by this script; load the images; apply the CRDs;
# helm upgrade operator -> API -> UI; `rune health-check`; on failure, roll back
# UI -> API -> operator to the revisions in the backup and exit 3.
#
# Exit codes: 0 ok · 1 error · 2 prerequisites missing · 3 verification failed or
# rollback triggered. See docs/operations/airgap.md.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: upgrade.sh --bundle FILE [options]

  --bundle FILE              rune-bundle-VERSION.tar.gz (required)
  --public-key FILE          ed25519 public key (PEM) the bundle must be signed with
  --allow-unsigned           accept a bundle without checking a signature (checksums only)
  --namespace NS             API and UI namespace (default: rune)
  --operator-namespace NS    operator namespace (default: rune-system)
  --registry HOST:PORT       registry the images are pushed to (default: localhost:5000)
  --cluster-registry HOST    registry address the nodes pull from (default: --registry)
  --insecure-registry        push over plain HTTP / without TLS verification
  --values FILE              extra values for the rune (API) chart
  --operator-values FILE     extra values for the rune-operator chart
  --ui-values FILE           extra values for the rune-ui chart
  --backup-dir DIR           where backups are kept (default: /var/backups/rune)
  --api-deployment NAME      API Deployment for `rune db backup` (default: rune-api)
  --timeout DURATION         helm --timeout (default: 300s)
  --log-dir DIR              where upgrade-<time>.log is written (default: .)
  --dry-run                  verify the bundle and print the plan; change nothing
  --verbose                  log every command
  -h, --help                 this help

Exit codes: 0 ok, 1 error, 2 prerequisites missing, 3 verification failed or rollback triggered.
USAGE
}

BUNDLE="" PUBLIC_KEY="" ALLOW_UNSIGNED=false
NAMESPACE=rune OPERATOR_NAMESPACE=rune-system
REGISTRY=localhost:5000 CLUSTER_REGISTRY="" REGISTRY_INSECURE=false
VALUES="" OPERATOR_VALUES="" UI_VALUES="" TIMEOUT=300s
BACKUP_ROOT=${RUNE_BACKUP_ROOT:-/var/backups/rune} API_DEPLOYMENT=rune-api
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
    --backup-dir) BACKUP_ROOT=${2:?--backup-dir needs a directory}; shift 2 ;;
    --api-deployment) API_DEPLOYMENT=${2:?--api-deployment needs a name}; shift 2 ;;
    --timeout) TIMEOUT=${2:?--timeout needs a duration}; shift 2 ;;
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

start_log upgrade
need tar sha256sum find comm awk

# 1. Verify before any cluster command.
unpack_and_verify "$BUNDLE" "$PUBLIC_KEY" "$ALLOW_UNSIGNED"

# 2. Prerequisites (the health check decides on rollback, so `rune` is required).
if [ "$DRY_RUN" = true ]; then
  for t in kubectl helm skopeo rune; do
    command -v "$t" >/dev/null 2>&1 || warn "dry run: $t is not on PATH (a real run exits 2)"
  done
else
  need kubectl helm skopeo rune
  kubectl cluster-info >/dev/null 2>&1 || die "$EXIT_PREREQ" "the cluster is unreachable (kubectl cluster-info failed); nothing was changed"
fi

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
# A unique name: two upgrades in the same second must not share (and overwrite) a backup.
BACKUP_DIR="$BACKUP_ROOT/upgrade-$STAMP-XXXXXX"
DB_BACKUP_IN_POD="/data/backups/pre-upgrade-$BUNDLE_VERSION-$STAMP.db"

cat <<PLAN
UPGRADE PLAN (to bundle $BUNDLE_VERSION)
  1. backup -> $BACKUP_DIR (helm values and revisions; rune db backup in deploy/$API_DEPLOYMENT -> $DB_BACKUP_IN_POD)
  2. images -> $REGISTRY
  3. CRDs from the bundle
  4. helm upgrade: rune-operator ($OPERATOR_NAMESPACE) -> rune ($NAMESPACE) -> rune-ui ($NAMESPACE)
  5. rune health-check; on failure roll back rune-ui -> rune -> rune-operator and exit 3
PLAN

# 3. Backup. Kept outside any temporary directory: it must outlive this script.
backup() {
  if [ "$DRY_RUN" = true ]; then
    printf '  [dry-run] mkdir -p %s; helm get values / revisions; kubectl exec deploy/%s -- rune db backup\n' \
      "$BACKUP_DIR" "$API_DEPLOYMENT"
    return 0
  fi
  mkdir -p "$BACKUP_ROOT" || die "$EXIT_ERROR" "cannot create backup directory $BACKUP_ROOT"
  BACKUP_DIR=$(mktemp -d "$BACKUP_DIR") || die "$EXIT_ERROR" "cannot create a backup directory in $BACKUP_ROOT"
  local release ns rev
  for release in "${RELEASES_IN_ORDER[@]}"; do
    ns=$(release_namespace "$release")
    rev=$(current_revision "$release" "$ns")
    if [ -z "$rev" ]; then
      warn "release $release not found in $ns; nothing to back up for it"
      continue
    fi
    printf '%s\n' "$rev" >"$BACKUP_DIR/$release.revision"
    helm get values "$release" --namespace "$ns" --output yaml >"$BACKUP_DIR/$release.values.yaml" ||
      die "$EXIT_ERROR" "helm get values $release failed; nothing was changed"
    helm get values "$release" --namespace "$ns" --all --output yaml >"$BACKUP_DIR/$release.values-all.yaml" ||
      die "$EXIT_ERROR" "helm get values --all $release failed; nothing was changed"
    info "backed up $release (revision $rev)"
  done
  if [ -f "$BACKUP_DIR/rune.revision" ]; then
    kubectl exec --namespace "$NAMESPACE" "deploy/$API_DEPLOYMENT" -- \
      rune db backup --output "$DB_BACKUP_IN_POD" --json >"$BACKUP_DIR/db-backup.json" ||
      die "$EXIT_ERROR" "rune db backup in deploy/$API_DEPLOYMENT failed; nothing was changed"
    info "database backed up in the pod's data volume: $DB_BACKUP_IN_POD"
  fi
  printf 'from-bundle=%s\nstarted=%s\n' "$BUNDLE_VERSION" "$STAMP" >"$BACKUP_DIR/upgrade.info"
  info "backup kept in $BACKUP_DIR"
}

# Reverse order, to the revisions recorded in the backup.
rollback_to_backup() {
  local release ns rev failed=0
  for ((i = ${#RELEASES_IN_ORDER[@]} - 1; i >= 0; i--)); do
    release=${RELEASES_IN_ORDER[$i]}
    ns=$(release_namespace "$release")
    if [ ! -f "$BACKUP_DIR/$release.revision" ]; then
      warn "no recorded revision for $release (it was new); uninstalling it"
      helm uninstall "$release" --namespace "$ns" --wait || failed=1
      continue
    fi
    rev=$(cat "$BACKUP_DIR/$release.revision")
    warn "rolling back $release to revision $rev"
    helm rollback "$release" "$rev" --namespace "$ns" --wait --timeout "$TIMEOUT" || failed=1
  done
  return "$failed"
}

fail_and_roll_back() {
  log ERROR "$1; rolling back automatically (backup: $BACKUP_DIR)"
  printf 'result=rolled-back\nreason=%s\n' "$1" >>"$BACKUP_DIR/upgrade.info"
  if rollback_to_backup; then
    health_check || warn "the health check still fails after the rollback; see docs/operations/airgap.md"
    die "$EXIT_VERIFY" "upgrade to $BUNDLE_VERSION rolled back; the backup is kept in $BACKUP_DIR"
  fi
  die "$EXIT_ERROR" "ROLLBACK FAILED: restore by hand from $BACKUP_DIR (docs/operations/airgap.md)"
}

backup
load_images
apply_crds
for release in "${RELEASES_IN_ORDER[@]}"; do
  helm_deploy "$release" || {
    if [ "$DRY_RUN" = true ]; then exit "$EXIT_ERROR"; fi
    fail_and_roll_back "helm upgrade of $release failed"
  }
done
if ! health_check; then
  fail_and_roll_back "the health check failed after the upgrade"
fi

if [ "$DRY_RUN" = true ]; then
  info "DRY RUN complete (no changes made)"
else
  printf 'result=upgraded\n' >>"$BACKUP_DIR/upgrade.info"
  info "upgraded to $BUNDLE_VERSION; backup kept in $BACKUP_DIR"
fi
exit "$EXIT_OK"
