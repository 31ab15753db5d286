#!/usr/bin/env bash
# Builds evident_<version>-<release>_<arch>.deb with dpkg-deb (no cargo-deb, no debhelper).
#
#   packaging/deb/build.sh [BINARY [OUTDIR]]
#
# BINARY  the evident binary to package. Default: $EVIDENT_BIN, target/release/evident,
#         $CARGO_TARGET_DIR/release/evident, /var/tmp/evident-target/release/evident.
# OUTDIR  where the .deb goes (default: target/packages in the repo). Prints its path.
# Env:    PKG_RELEASE (Debian revision, default 1), DEB_COMPRESSION (xz, gzip, zstd, none;
#         default xz).
# Needs:  dpkg-deb (dpkg), coreutils, awk, gzip; objdump (binutils) for the libc6 version.
set -euo pipefail
. "$(dirname "$0")/../common.sh"

evident_resolve_bin "${1:-}"
OUT="${2:-$REPO_DIR/target/packages}"
VERSION="$(evident_version)"
RELEASE="${PKG_RELEASE:-1}"
evident_check_bin_version "$VERSION"
evident_elf_arch
command -v dpkg-deb >/dev/null || die "dpkg-deb not found (apt-get install dpkg)"

GLIBC="$(evident_glibc_min)"
DEPENDS="libc6${GLIBC:+ (>= $GLIBC)}, libgcc-s1"

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
ROOT="$STAGE/root"

install -D -m 0755 "$BIN"                              "$ROOT/usr/bin/evident"
install -D -m 0644 "$PKG_DIR/systemd/evident.service"  "$ROOT/lib/systemd/system/evident.service"
install -D -m 0644 "$PKG_DIR/etc/evident.toml"         "$ROOT/etc/evident/evident.toml"
install -D -m 0644 "$PKG_DIR/systemd/evident.sysusers" "$ROOT/usr/lib/sysusers.d/evident.conf"
install -D -m 0644 "$PKG_DIR/systemd/evident.tmpfiles" "$ROOT/usr/lib/tmpfiles.d/evident.conf"
DOC="$ROOT/usr/share/doc/evident"
install -D -m 0644 "$REPO_DIR/README.md"               "$DOC/README.md"
install -D -m 0644 "$PKG_DIR/README.md"                "$DOC/README.packaging.md"
install -D -m 0644 "$PKG_DIR/deb/copyright"            "$DOC/copyright"
# /var/lib/evident is deliberately not in the package: postinst creates it, and nothing
# the package manager does on remove or purge can then touch the evidence in it.

mkdir -p "$ROOT/DEBIAN"
install -m 0755 "$PKG_DIR/deb/scripts/postinst" "$PKG_DIR/deb/scripts/prerm" \
  "$PKG_DIR/deb/scripts/postrm" "$ROOT/DEBIAN/"
echo /etc/evident/evident.toml > "$ROOT/DEBIAN/conffiles"
SIZE_KB="$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)"
cat > "$ROOT/DEBIAN/control" <<CONTROL
Package: evident
Version: $VERSION-$RELEASE
Architecture: $ARCH_DEB
Maintainer: Evident maintainers <maintainers@evident.invalid>
Installed-Size: $SIZE_KB
Depends: $DEPENDS
Section: admin
Priority: optional
Description: continuous compliance-evidence agent (ISO/IEC 27001, 42001)
 Evident snapshots access controls, encryption settings, logging status and AI
 model-registry entries on a schedule, maps each snapshot to ISO/IEC 27001:2022
 and ISO/IEC 42001:2023 Annex A controls, signs it (DSSE, in-toto Statement v1),
 hash-chains it, keeps it in a crash-safe spool and ships it to a store that
 auditors verify offline with "evident verify".
 .
 This package installs the agent as a hardened systemd service running as the
 "evident" system user. State and evidence live in /var/lib/evident, which is
 never removed by the package, not even on purge.
CONTROL
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z \
  | xargs -0 md5sum) > "$ROOT/DEBIAN/md5sums"

# Reproducible: every file's mtime is SOURCE_DATE_EPOCH (dpkg-deb uses it for the archive).
find "$ROOT" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

DEB="$OUT/evident_${VERSION}-${RELEASE}_${ARCH_DEB}.deb"
dpkg-deb --root-owner-group -Z"${DEB_COMPRESSION:-xz}" --build "$ROOT" "$DEB" >/dev/null
echo "$DEB"
