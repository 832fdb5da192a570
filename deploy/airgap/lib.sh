#!/usr/bin/env bash
# Shared functions of bootstrap.sh, upgrade.sh and rollback.sh (sourced, not run).
#
# Exit codes used by every script:
#   0 success
#   1 error (bad usage, a failed helm/kubectl/skopeo command)
#   2 prerequisites missing (a tool, or the cluster unreachable); nothing was changed
#   3 verification failed (checksums or signature; nothing was changed), or an upgrade
#     failed its health check and was rolled back
#
# Logs: `[UTC ISO time] [LEVEL] message` on stderr and in LOG_FILE.

# shellcheck disable=SC2034  # variables are read by the scripts that source this file
EXIT_OK=0
EXIT_ERROR=1
EXIT_PREREQ=2
EXIT_VERIFY=3

DRY_RUN=false
VERBOSE=false
LOG_FILE=""
WORK_DIR=""
BUNDLE_DIR=""
BUNDLE_VERSION=""
RELEASES_IN_ORDER=(rune-operator rune rune-ui)

ts() { date -u +%Y-%m-%dT%H:%M:%SZ; }

log() {
  local level=$1
  shift
  local line
  line="[$(ts)] [$level] $*"
  printf '%s\n' "$line" >&2
  if [ -n "$LOG_FILE" ]; then printf '%s\n' "$line" >>"$LOG_FILE"; fi
}
info() { log INFO "$@"; }
warn() { log WARN "$@"; }
debug() { if [ "$VERBOSE" = true ]; then log DEBUG "$@"; fi; }
die() {
  local code=$1
  shift
  log ERROR "$@"
  exit "$code"
}

# start_log NAME: the log file NAME-<UTC stamp>.log in $LOG_DIR (default: the current
# directory), created before anything else happens so every step is recorded.
start_log() {
  local dir=${LOG_DIR:-.}
  mkdir -p "$dir" || die "$EXIT_ERROR" "cannot create log directory $dir"
  LOG_FILE="$dir/$1-$(date -u +%Y%m%dT%H%M%SZ).log"
  : >>"$LOG_FILE" || die "$EXIT_ERROR" "cannot write log file $LOG_FILE"
  info "log file: $LOG_FILE"
}

# run CMD...: runs a command that changes something; under --dry-run only prints it.
run() {
  if [ "$DRY_RUN" = true ]; then
    printf '  [dry-run] %s\n' "$*"
    return 0
  fi
  debug "run: $*"
  "$@"
}

# need TOOL...: exits 2 naming every missing tool.
need() {
  local missing=()
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    die "$EXIT_PREREQ" "prerequisites missing: ${missing[*]} (install them on this node; nothing was changed)"
  fi
}

cleanup_work() {
  if [ -n "$WORK_DIR" ] && [ -d "$WORK_DIR" ]; then rm -rf "$WORK_DIR"; fi
}

# unpack_and_verify BUNDLE PUBLIC_KEY ALLOW_UNSIGNED: unpacks into a temporary directory
# (BUNDLE_DIR) and checks it before anything touches the cluster. Fail-closed: any
# doubt exits 3. Needs only tar, sha256sum and openssl (or a trusted `rune` on PATH).
unpack_and_verify() {
  local bundle=$1 public_key=$2 allow_unsigned=$3
  [ -f "$bundle" ] || die "$EXIT_ERROR" "--bundle $bundle: no such file"
  WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/rune-airgap.XXXXXX")
  trap cleanup_work EXIT
  info "unpacking $bundle"
  tar -xzf "$bundle" -C "$WORK_DIR" --no-same-owner --no-same-permissions ||
    die "$EXIT_VERIFY" "$bundle is not a readable tar.gz; nothing was changed"
  local tops=()
  local d
  for d in "$WORK_DIR"/*; do tops+=("$d"); done
  if [ "${#tops[@]}" -ne 1 ] || [ ! -d "${tops[0]}" ]; then
    die "$EXIT_VERIFY" "$bundle must hold exactly one top directory; nothing was changed"
  fi
  BUNDLE_DIR=${tops[0]}
  BUNDLE_VERSION=${BUNDLE_DIR##*/rune-bundle-}
  [ -f "$BUNDLE_DIR/SHA256SUMS" ] || die "$EXIT_VERIFY" "no SHA256SUMS in the bundle; nothing was changed"
  info "verifying checksums"
  if ! (cd "$BUNDLE_DIR" && sha256sum --check --strict --quiet SHA256SUMS) >&2; then
    die "$EXIT_VERIFY" "checksum verification failed (see above); the bundle was changed or damaged; nothing was changed"
  fi
  # Every file must be listed: an added script would otherwise run unverified.
  local unlisted
  unlisted=$(cd "$BUNDLE_DIR" && find . -type f ! -name SHA256SUMS ! -name SHA256SUMS.sig | sed 's|^\./||' | sort |
    comm -23 - <(awk '{print $2}' SHA256SUMS | sort))
  if [ -n "$unlisted" ]; then
    die "$EXIT_VERIFY" "files not listed in SHA256SUMS: $unlisted; nothing was changed"
  fi
  local sig="$BUNDLE_DIR/SHA256SUMS.sig"
  if [ -n "$public_key" ]; then
    [ -f "$public_key" ] || die "$EXIT_ERROR" "--public-key $public_key: no such file"
    [ -f "$sig" ] || die "$EXIT_VERIFY" "a public key was given but the bundle is not signed; nothing was changed"
    info "verifying the signature with $public_key"
    if command -v openssl >/dev/null 2>&1; then
      openssl pkeyutl -verify -pubin -inkey "$public_key" -rawin -in "$BUNDLE_DIR/SHA256SUMS" -sigfile "$sig" >/dev/null 2>&1 ||
        die "$EXIT_VERIFY" "signature verification FAILED: the bundle was not signed by this key; nothing was changed"
    elif command -v rune >/dev/null 2>&1; then
      rune airgap verify --bundle "$bundle" --public-key "$public_key" >&2 ||
        die "$EXIT_VERIFY" "signature verification FAILED; nothing was changed"
    else
      die "$EXIT_PREREQ" "openssl (or rune) is needed to verify the signature; nothing was changed"
    fi
    info "signature valid"
  elif [ "$allow_unsigned" = true ]; then
    warn "signature NOT checked (--allow-unsigned); checksums only"
  elif [ -f "$sig" ]; then
    die "$EXIT_VERIFY" "the bundle is signed: pass --public-key FILE (or --allow-unsigned to skip); nothing was changed"
  else
    die "$EXIT_VERIFY" "the bundle is unsigned: pass --allow-unsigned to accept it; nothing was changed"
  fi
  info "bundle $BUNDLE_VERSION verified"
}

# chart_file NAME: the packaged chart NAME-<version>.tgz in the bundle (empty if none).
chart_file() {
  local f
  for f in "$BUNDLE_DIR"/charts/"$1"-[0-9]*.tgz; do
    if [ -f "$f" ]; then
      printf '%s\n' "$f"
      return 0
    fi
  done
}

# release_namespace NAME: where a release lives.
release_namespace() {
  if [ "$1" = rune-operator ]; then printf '%s\n' "$OPERATOR_NAMESPACE"; else printf '%s\n' "$NAMESPACE"; fi
}

# repo_path REPOSITORY: the repository without its registry host (ghcr.io/a/b -> a/b).
repo_path() {
  local first=${1%%/*}
  case "$first" in
    *.* | *:* | localhost) printf '%s\n' "${1#*/}" ;;
    *) printf '%s\n' "$1" ;;
  esac
}

# load_images: copies every image archive of the bundle into $REGISTRY, keeping the
# repository path, the tag and all architectures (skopeo copy --all).
load_images() {
  local archive rel repo tag
  local tls=()
  if [ "$REGISTRY_INSECURE" = true ]; then tls=(--dest-tls-verify=false); fi
  while IFS= read -r archive; do
    rel=${archive#"$BUNDLE_DIR"/images/}
    repo=$(dirname "$rel")
    tag=$(basename "$rel" .tar)
    info "image $repo:$tag -> $REGISTRY/$(repo_path "$repo"):$tag"
    run skopeo copy --all --quiet "${tls[@]}" "oci-archive:$archive:$tag" \
      "docker://$REGISTRY/$(repo_path "$repo"):$tag" || die "$EXIT_ERROR" "loading $repo:$tag into $REGISTRY failed"
  done < <(find "$BUNDLE_DIR/images" -type f -name '*.tar' | sort)
}

# image_repository: where the cluster pulls the rune image from.
image_repository() {
  printf '%s/rune-bench/rune\n' "${CLUSTER_REGISTRY:-$REGISTRY}"
}

# apply_crds: CRDs before the operator (helm does not upgrade CRDs in crds/).
apply_crds() {
  local f
  for f in "$BUNDLE_DIR"/crds/*.yaml; do
    [ -f "$f" ] || continue
    run kubectl apply --server-side --force-conflicts -f "$f" || die "$EXIT_ERROR" "applying $(basename "$f") failed"
  done
}

# values_for RELEASE: the --values flag for a release, if one was given for it.
values_args() {
  case "$1" in
    rune-operator) if [ -n "$OPERATOR_VALUES" ]; then printf '%s\n' --values "$OPERATOR_VALUES"; fi ;;
    rune) if [ -n "$VALUES" ]; then printf '%s\n' --values "$VALUES"; fi ;;
    rune-ui) if [ -n "$UI_VALUES" ]; then printf '%s\n' --values "$UI_VALUES"; fi ;;
  esac
}

# helm_deploy RELEASE: helm upgrade --install from the bundle's chart. Returns helm's
# status (the caller decides between exiting and rolling back).
helm_deploy() {
  local release=$1 chart ns
  chart=$(chart_file "$release")
  ns=$(release_namespace "$release")
  if [ -z "$chart" ]; then
    warn "no $release chart in the bundle; skipped"
    return 0
  fi
  local extra=()
  mapfile -t extra < <(values_args "$release")
  info "helm: $release ($(basename "$chart")) in namespace $ns"
  run helm upgrade --install "$release" "$chart" --namespace "$ns" \
    --set "image.repository=$(image_repository)" --set "image.tag=$BUNDLE_VERSION" \
    "${extra[@]}" --wait --timeout "$TIMEOUT"
}

# current_revision RELEASE NAMESPACE: the deployed revision number, or empty.
current_revision() {
  helm list --namespace "$2" --filter "^$1\$" --output json 2>/dev/null |
    sed -n 's/.*"revision":"\{0,1\}\([0-9][0-9]*\)"\{0,1\}.*/\1/p' | head -n 1
}

# health_check: `rune health-check` (exit 0 ok, 1 a check failed, 2 unreachable).
health_check() {
  if [ "$DRY_RUN" = true ]; then
    printf '  [dry-run] rune health-check --namespace %s --operator-namespace %s\n' "$NAMESPACE" "$OPERATOR_NAMESPACE"
    return 0
  fi
  info "health check"
  rune health-check --namespace "$NAMESPACE" --operator-namespace "$OPERATOR_NAMESPACE"
}

# require_file FLAG PATH: a --values file must exist.
require_file() {
  [ -f "$2" ] || die "$EXIT_ERROR" "$1 $2: no such file"
}
