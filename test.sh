#!/usr/bin/env bash
# Runs every test: formatting, lints, unit and end-to-end tests (which install and start the
# real services they need on 127.0.0.1 and stop them afterwards). Under CI=true a missing
# service is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")"
# Reuse a build cache outside the clone when there is one; a fresh machine builds from scratch.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/evident-target}"
export CARGO_TERM_COLOR=never

./tests/tooling/setup.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# Packaging: builds the .deb and .rpm from the binary cargo test just built, installs them
# into throwaway roots, checks the systemd unit and the Kubernetes manifests and Helm chart.
./tests/packaging/check.sh
