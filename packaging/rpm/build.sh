#!/usr/bin/env bash
# Builds evident-<version>-<release>.<arch>.rpm with rpmbuild from packaging/rpm/evident.spec.
#
#   packaging/rpm/build.sh [BINARY [OUTDIR]]
#
# BINARY  the evident binary to package. Default: $EVIDENT_BIN, target/release/evident,
#         $CARGO_TARGET_DIR/release/evident, /var/tmp/evident-target/release/evident.
# OUTDIR  where the .rpm goes (default: target/packages in the repo). Prints its path.
# Env:    PKG_RELEASE (RPM release, default 1), RPM_PAYLOAD (rpm's _binary_payload, default
#         w6.xzdio; the check script uses w1.gzdio for speed).
# Needs:  rpmbuild (Debian: apt-get install rpm; Fedora/RHEL: dnf install rpm-build).
set -euo pipefail
. "$(dirname "$0")/../common.sh"

evident_resolve_bin "${1:-}"
OUT="${2:-$REPO_DIR/target/packages}"
VERSION="$(evident_version)"
RELEASE="${PKG_RELEASE:-1}"
evident_check_bin_version "$VERSION"
evident_elf_arch
command -v rpmbuild >/dev/null || die "rpmbuild not found (apt-get install rpm / dnf install rpm-build)"

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
TOP="$(mktemp -d)"
trap 'rm -rf "$TOP"' EXIT
mkdir -p "$TOP"/{SOURCES,SPECS,BUILD,BUILDROOT,RPMS,SRPMS}
cp "$BIN"                              "$TOP/SOURCES/evident"
cp "$PKG_DIR/systemd/evident.service"  "$TOP/SOURCES/"
cp "$PKG_DIR/etc/evident.toml"         "$TOP/SOURCES/"
cp "$PKG_DIR/systemd/evident.sysusers" "$TOP/SOURCES/"
cp "$PKG_DIR/systemd/evident.tmpfiles" "$TOP/SOURCES/"
cp "$REPO_DIR/README.md"               "$TOP/SOURCES/README.md"
cp "$PKG_DIR/README.md"                "$TOP/SOURCES/README.packaging.md"

# HOME points into the temp dir so that no ~/.rpmmacros of the caller changes the result.
HOME="$TOP" rpmbuild -bb --quiet \
  --target "$ARCH_RPM-linux" \
  --define "_topdir $TOP" \
  --define "evident_version $VERSION" \
  --define "evident_release $RELEASE" \
  --define "_binary_payload ${RPM_PAYLOAD:-w6.xzdio}" \
  --define "use_source_date_epoch_as_buildtime 1" \
  --define "clamp_mtime_to_source_date_epoch 1" \
  "$PKG_DIR/rpm/evident.spec" >"$TOP/rpmbuild.log" 2>&1 || { cat "$TOP/rpmbuild.log" >&2; die "rpmbuild failed"; }

RPM="$(find "$TOP/RPMS" -name 'evident-*.rpm' | head -n 1)"
[ -n "$RPM" ] || { cat "$TOP/rpmbuild.log" >&2; die "rpmbuild made no package"; }
cp "$RPM" "$OUT/"
echo "$OUT/$(basename "$RPM")"
