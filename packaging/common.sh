# shellcheck shell=bash
# Shared by packaging/{deb,rpm,docker}/build.sh and tests/packaging/check.sh (sourced).
#   evident_resolve_bin [PATH]   -> sets BIN: the binary to package
#   evident_version              -> prints [workspace.package] version from Cargo.toml
#   evident_elf_arch             -> sets ARCH_DEB (amd64, arm64, ...) and ARCH_RPM (x86_64, ...)
#   evident_glibc_min            -> prints the newest GLIBC_x.y symbol version the binary needs
# Needs only coreutils, awk and od (objdump, when present, for the glibc version).

PKG_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$PKG_DIR/.." && pwd)"

die() { echo "packaging: $*" >&2; exit 1; }

# The binary: argument, else $EVIDENT_BIN, else target/release/evident in the repo, else
# $CARGO_TARGET_DIR/release/evident, else /var/tmp/evident-target/release/evident.
evident_resolve_bin() {
  local c
  if [ -n "${1:-}" ]; then
    BIN="$1"
    [ -f "$BIN" ] || die "binary not found: $BIN"
  else
    BIN=""
    for c in "${EVIDENT_BIN:-}" "$REPO_DIR/target/release/evident" \
             "${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR/release/evident}" \
             /var/tmp/evident-target/release/evident; do
      if [ -n "$c" ] && [ -f "$c" ]; then BIN="$c"; break; fi
    done
    [ -n "$BIN" ] || die "no binary: pass one, or build it with cargo build --release -p evident"
  fi
  BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
  [ "$(head -c 4 "$BIN" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] || die "$BIN is not an ELF binary"
}

evident_version() {
  local v
  v="$(awk '
    /^\[/ { in_section = ($0 == "[workspace.package]") ; next }
    in_section && $1 == "version" { gsub(/[" ]/, "", $3); print $3; exit }
  ' "$REPO_DIR/Cargo.toml")"
  [ -n "$v" ] || die "no version in [workspace.package] of $REPO_DIR/Cargo.toml"
  echo "$v"
}

# When the binary runs here (not a cross build), its --version must match Cargo.toml:
# packaging a stale binary under a new version number is an error.
evident_check_bin_version() {
  local want="$1" got
  if got="$("$BIN" --version 2>/dev/null)"; then
    [ "$got" = "evident $want" ] || die "$BIN says '$got', Cargo.toml says $want: rebuild it"
  else
    echo "packaging: note: $BIN does not run here (cross build?); version not cross-checked" >&2
  fi
}

# shellcheck disable=SC2034  # ARCH_DEB and ARCH_RPM are for the caller
evident_elf_arch() {
  local machine
  machine="$(od -An -tu2 -j18 -N2 "$BIN" | tr -d ' ')"
  case "$machine" in
    62)  ARCH_DEB=amd64   ARCH_RPM=x86_64 ;;
    183) ARCH_DEB=arm64   ARCH_RPM=aarch64 ;;
    243) ARCH_DEB=riscv64 ARCH_RPM=riscv64 ;;
    21)  ARCH_DEB=ppc64el ARCH_RPM=ppc64le ;;
    22)  ARCH_DEB=s390x   ARCH_RPM=s390x ;;
    *)   die "unsupported ELF machine $machine in $BIN" ;;
  esac
}

evident_glibc_min() {
  if command -v objdump >/dev/null 2>&1; then
    objdump -T "$BIN" 2>/dev/null | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1
  fi
}

# Reproducible timestamps: the last commit's time unless the caller set one.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$REPO_DIR" log -1 --format=%ct 2>/dev/null || date +%s)}"
