#!/usr/bin/env bash
# Rolls RUNE back in the reverse of the install order: UI, then API, then operator.
#
# Targets: the previous revision of each release (helm's current - 1), or --revision N,
# or the revisions recorded by upgrade.sh in --from-backup DIR. With --bundle, the
# previous bundle is verified first (fail-closed, as bootstrap.sh does) and its charts
# are re-applied in reverse order instead, which is the runbook's "re-run with the
# previous bundle".
#
# Exit codes: 0 ok · 1 error · 2 prerequisites missing · 3 verification failed (bundle
# or health check after the rollback). See docs/operations/airgap.md.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

usage() {
  cat <<'USAGE'
Usage: rollback.sh [options]

  --revision N               roll every selected release back to revision N
  --from-backup DIR          roll back to the revisions an upgrade.sh backup recorded
  --component NAME           only rune-ui, rune or rune-operator
  --bundle FILE              re-apply this (previous) bundle's charts instead of helm rollback
  --public-key FILE          public key the --bundle must be signed with
  --allow-unsigned           accept an unsigned --bundle (checksums only)
  --namespace NS             API and UI namespace (default: rune)
  --operator-namespace NS    operator namespace (default: rune-system)
  --registry HOST:PORT       with --bundle: registry to load its images into (default: localhost:5000)
  --cluster-registry HOST    with --bundle: registry the nodes pull from (default: --registry)
  --insecure-registry        with --bundle: push without TLS verification
  --values FILE              with --bundle: extra values for the rune chart
  --operator-values FILE     with --bundle: extra values for the rune-operator chart
  --ui-values FILE           with --bundle: extra values for the rune-ui chart
  --timeout DURATION         helm --timeout (default: 300s)
  --skip-health-check        do not run `rune health-check` at the end
  --log-dir DIR              where rollback-<time>.log is written (default: .)
  --dry-run                  print the plan; change nothing
  --verbose                  log every command
  -h, --help                 this help

Exit codes: 0 ok, 1 error, 2 prerequisites missing, 3 verification or health check failed.
USAGE
}

REVISION="" FROM_BACKUP="" COMPONENT="" BUNDLE="" PUBLIC_KEY="" ALLOW_UNSIGNED=false
NAMESPACE=rune OPERATOR_NAMESPACE=rune-system
REGISTRY=localhost:5000 CLUSTER_REGISTRY="" REGISTRY_INSECURE=false
VALUES="" OPERATOR_VALUES="" UI_VALUES="" TIMEOUT=300s SKIP_HEALTH=false
LOG_DIR=${LOG_DIR:-.}

while [ $# -gt 0 ]; do
  case "$1" in
    --revision) REVISION=${2:?--revision needs a number}; shift 2 ;;
    --from-backup) FROM_BACKUP=${2:?--from-backup needs a directory}; shift 2 ;;
    --component) COMPONENT=${2:?--component needs a name}; shift 2 ;;
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

if [ -n "$REVISION" ] && ! [[ "$REVISION" =~ ^[1-9][0-9]*$ ]]; then
  die "$EXIT_ERROR" "--revision $REVISION: must be a positive integer"
fi
if [ -n "$COMPONENT" ]; then
  case "$COMPONENT" in
    rune-ui | rune | rune-operator) ;;
    *) die "$EXIT_ERROR" "--component $COMPONENT: must be rune-ui, rune or rune-operator" ;;
  esac
fi
modes=0
for m in "$REVISION" "$FROM_BACKUP" "$BUNDLE"; do if [ -n "$m" ]; then modes=$((modes + 1)); fi; done
[ "$modes" -le 1 ] || die "$EXIT_ERROR" "--revision, --from-backup and --bundle exclude each other"
if [ -n "$FROM_BACKUP" ] && [ ! -d "$FROM_BACKUP" ]; then die "$EXIT_ERROR" "--from-backup $FROM_BACKUP: no such directory"; fi
for pair in "--values:$VALUES" "--operator-values:$OPERATOR_VALUES" "--ui-values:$UI_VALUES"; do
  if [ -n "${pair#*:}" ]; then require_file "${pair%%:*}" "${pair#*:}"; fi
done

start_log rollback
if [ -n "$BUNDLE" ]; then
  need tar sha256sum find comm awk
  unpack_and_verify "$BUNDLE" "$PUBLIC_KEY" "$ALLOW_UNSIGNED"
fi

if [ "$DRY_RUN" = false ]; then
  tools=(kubectl helm)
  if [ -n "$BUNDLE" ]; then tools+=(skopeo); fi
  if [ "$SKIP_HEALTH" = false ]; then tools+=(rune); fi
  need "${tools[@]}"
  kubectl cluster-info >/dev/null 2>&1 || die "$EXIT_PREREQ" "the cluster is unreachable (kubectl cluster-info failed); nothing was changed"
fi

selected=()
for ((i = ${#RELEASES_IN_ORDER[@]} - 1; i >= 0; i--)); do
  r=${RELEASES_IN_ORDER[$i]}
  if [ -z "$COMPONENT" ] || [ "$COMPONENT" = "$r" ]; then selected+=("$r"); fi
done

echo "ROLLBACK PLAN (order: ${selected[*]})"
if [ -n "$BUNDLE" ]; then
  echo "  re-apply bundle $BUNDLE_VERSION: images -> $REGISTRY, then helm upgrade ${selected[*]}"
  load_images
  for release in "${selected[@]}"; do
    helm_deploy "$release" || die "$EXIT_ERROR" "re-applying $release from bundle $BUNDLE_VERSION failed"
  done
else
  for release in "${selected[@]}"; do
    ns=$(release_namespace "$release")
    current=$(current_revision "$release" "$ns")
    if [ -z "$current" ]; then
      warn "release $release not found in $ns; skipped"
      continue
    fi
    if [ -n "$REVISION" ]; then
      target=$REVISION
    elif [ -n "$FROM_BACKUP" ]; then
      if [ ! -f "$FROM_BACKUP/$release.revision" ]; then
        warn "$FROM_BACKUP has no revision for $release; skipped"
        continue
      fi
      target=$(cat "$FROM_BACKUP/$release.revision")
    else
      target=$((current - 1))
    fi
    if [ "$target" -lt 1 ]; then
      warn "$release is at revision $current; there is no earlier revision; skipped"
      continue
    fi
    echo "  $release ($ns): revision $current -> $target"
    if [ "$VERBOSE" = true ] && [ "$DRY_RUN" = false ]; then helm history "$release" --namespace "$ns" --max 5 >&2 || true; fi
    run helm rollback "$release" "$target" --namespace "$ns" --wait --timeout "$TIMEOUT" ||
      die "$EXIT_ERROR" "helm rollback $release $target failed"
  done
fi

if [ "$SKIP_HEALTH" = false ]; then
  health_check || die "$EXIT_VERIFY" "the health check fails after the rollback; see docs/operations/airgap.md"
fi
if [ "$DRY_RUN" = true ]; then
  info "DRY RUN complete (no changes made)"
else
  info "rollback complete"
fi
exit "$EXIT_OK"
