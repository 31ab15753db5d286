#!/usr/bin/env bash
# Builds the Evident container image from a prebuilt binary.
#
#   packaging/docker/build.sh [BINARY [TAG]]          stage a context and run docker build
#   packaging/docker/build.sh --context-only DIR [BINARY]   only stage the context in DIR
#
# BINARY defaults like the .deb/.rpm builds (target/release/evident, then
# $CARGO_TARGET_DIR/release/evident, /var/tmp/evident-target/release/evident).
# TAG defaults to evident:<version from Cargo.toml>.
set -euo pipefail
. "$(dirname "$0")/../common.sh"

CONTEXT_ONLY=""
if [ "${1:-}" = "--context-only" ]; then
  CONTEXT_ONLY="${2:?--context-only needs a directory}"
  shift 2
fi
evident_resolve_bin "${1:-}"
VERSION="$(evident_version)"
evident_check_bin_version "$VERSION"
TAG="${2:-evident:$VERSION}"

stage() {
  mkdir -p "$1"
  cp "$BIN" "$1/evident"
  cp "$PKG_DIR/docker/Dockerfile" "$PKG_DIR/docker/evident.toml" "$1/"
}

if [ -n "$CONTEXT_ONLY" ]; then
  stage "$CONTEXT_ONLY"
  echo "$CONTEXT_ONLY"
  exit 0
fi
CTX="$(mktemp -d)"
trap 'rm -rf "$CTX"' EXIT
stage "$CTX"
docker build --build-arg "VERSION=$VERSION" -t "$TAG" "$CTX"
echo "$TAG"
