#!/usr/bin/env bash
# Installs what the end-to-end tests need, idempotently, outside the clone (cached between
# runs on the same machine, installed from scratch on a fresh one):
#   - a Python venv at $EVIDENT_TEST_VENV with securesystemslib (an independent DSSE
#     verifier), rfc3161-client (an independent RFC 3161 token verifier), moto's S3 server and boto3 (a second S3 client), and MLflow (a real
#     tracking server for the AI registry tests; ~3 min and ~850 MB on first install)
#   - Chromium (Debian package) for the dashboard's browser test
#   - prometheus and prometheus-alertmanager (Debian) for the monitoring collector's test
#   - restic, borgbackup and clamav's sigtool (Debian) for the resilience and anti-malware tests
#   - Java 17 (openjdk-17-jre-headless) for Apache Spark in local mode (PyPI pyspark in the
#     venv), one of the engines of the documented SQL (tests/tests/sql.rs)
#   - s3s-fs (a second, independent S3-compatible server with real SigV4) under
#     $EVIDENT_TOOLS/bin, built from crates.io
#   - the oracles of the differential tests (openssh-server, sudo, systemd, rsyslog, auditd;
#     chrony unpacked under $EVIDENT_TOOLS/chrony)
# Under CI=true any failure here fails the run (set -e); tests never skip silently there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
VENV="${EVIDENT_TEST_VENV:-/var/tmp/evident-test-venv}"
TOOLS="${EVIDENT_TOOLS:-/var/tmp/evident-tools}"
REQS="$here/requirements.txt"

stamp="$VENV/.evident-requirements"
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && cmp -s "$REQS" "$stamp"; then
  echo "test tooling: $VENV is up to date"
else
  echo "test tooling: installing Python packages into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQS"
  cp "$REQS" "$stamp"
fi
"$VENV/bin/python" -c "import securesystemslib, moto, boto3, duckdb, trestle, rfc3161_client; print('test tooling: securesystemslib', securesystemslib.__version__, '/ moto', moto.__version__, '/ duckdb', duckdb.__version__)"
echo "test tooling: $("$VENV/bin/mlflow" --version)"

if [ -x /usr/bin/chromium ]; then
  echo "test tooling: $(/usr/bin/chromium --version 2>/dev/null || echo chromium) is installed"
else
  echo "test tooling: installing Chromium (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium > /dev/null
fi

if command -v java > /dev/null && java -version 2>&1 | grep -q 'version "17'; then
  echo "test tooling: java 17 is installed (for Spark)"
else
  echo "test tooling: installing Java 17 for Spark (Debian openjdk-17-jre-headless)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless > /dev/null
fi
"$VENV/bin/python" -c "import pyspark; print('test tooling: pyspark', pyspark.__version__)"

S3S_VERSION=0.14.1
if [ -x "$TOOLS/bin/s3s-fs" ] && [ -f "$TOOLS/.s3s-fs-$S3S_VERSION" ]; then
  echo "test tooling: s3s-fs $S3S_VERSION is installed"
else
  echo "test tooling: building s3s-fs $S3S_VERSION (a few minutes, once per machine)"
  # Its own target directory, so the project's build cache is not disturbed.
  CARGO_TARGET_DIR="$TOOLS/target" cargo install s3s-fs --version "$S3S_VERSION" --locked --features binary --root "$TOOLS" --quiet
  rm -rf "$TOOLS/target"
  touch "$TOOLS/.s3s-fs-$S3S_VERSION"
fi

# rclone (Debian package): the generic S3 copier tests/tooling/s3_drain_bench.sh measures the
# S3 sink's drain rate against, on the same s3s-fs server and the same files.
if command -v rclone > /dev/null; then
  echo "test tooling: $(rclone version 2> /dev/null | head -n 1) is installed"
else
  echo "test tooling: installing rclone (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends rclone > /dev/null
fi

# Oracles of the differential tests (tests/tests/differential.rs): sshd -T (openssh-server),
# visudo and cvtsudoers (sudo), openssl, systemd-analyze (systemd), systemd-timesyncd (its own
# package since Debian 12; it conflicts with chrony, so chrony is never installed as a package),
# unshare (util-linux).
if command -v sshd > /dev/null && command -v cvtsudoers > /dev/null && command -v openssl > /dev/null \
  && command -v systemd-analyze > /dev/null && command -v unshare > /dev/null \
  && [ -x /lib/systemd/systemd-timesyncd ]; then
  echo "test tooling: differential-test oracles are installed"
else
  echo "test tooling: installing the differential-test oracles (openssh-server, sudo, openssl, systemd, systemd-timesyncd)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends openssh-server sudo openssl systemd systemd-timesyncd util-linux > /dev/null
fi

# Oracles of the logging differential tests (tests/tests/differential_logging.rs): rsyslogd
# (rsyslog), augenrules and auditctl (auditd), installed as Debian packages. Installing them
# must not leave daemons running: policy-rc.d refuses every start during the install (there
# is no systemd PID 1 here either), and a daemon a maintainer script started anyway is
# stopped by its pid file.
if command -v rsyslogd > /dev/null && command -v auditctl > /dev/null && command -v augenrules > /dev/null; then
  echo "test tooling: rsyslogd, auditctl and augenrules are installed"
else
  echo "test tooling: installing rsyslog and auditd (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends rsyslog auditd > /dev/null
  if [ "$own_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  for pidfile in /run/rsyslogd.pid /run/auditd.pid; do
    if [ -s "$pidfile" ]; then kill "$(cat "$pidfile")" 2> /dev/null || true; fi
  done
fi
# chronyd and chronyc (Debian chrony) for the same tests. The package conflicts with
# systemd-timesyncd (the oracle of tests/tests/differential.rs; both provide time-daemon),
# so it is not installed: its files are unpacked under $TOOLS/chrony (no maintainer
# script, no daemon), its libraries installed as packages.
if [ -x "$TOOLS/chrony/usr/sbin/chronyd" ] && [ -x "$TOOLS/chrony/usr/bin/chronyc" ]; then
  echo "test tooling: chrony is unpacked under $TOOLS/chrony"
else
  echo "test tooling: unpacking chrony (Debian package) under $TOOLS/chrony"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends libcap2 libedit2 libgnutls30 libnettle8 libseccomp2 > /dev/null
  deb_dir="$(mktemp -d)"
  (cd "$deb_dir" && apt-get download -qq chrony 2> /dev/null)
  mkdir -p "$TOOLS/chrony"
  dpkg-deb -x "$deb_dir"/chrony_*.deb "$TOOLS/chrony"
  rm -rf "$deb_dir"
fi

# Monitoring servers of tests/tests/monitoring.rs (started on 127.0.0.1 by the test itself).
if [ -x /usr/bin/prometheus ] && [ -x /usr/bin/prometheus-alertmanager ]; then
  echo "test tooling: prometheus and prometheus-alertmanager are installed"
else
  echo "test tooling: installing prometheus and prometheus-alertmanager (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager > /dev/null
fi

# nft (nftables): the hardening.firewall tests load rulesets into a private network namespace
# (unshare -n), never into the machine's own.
if command -v nft > /dev/null; then
  echo "test tooling: nft is installed"
else
  echo "test tooling: installing nftables"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nftables > /dev/null
fi

# Backup tools and ClamAV's sigtool for tests/tests/resilience.rs: real restic and borg
# repositories made by the test in a temp dir, and `sigtool --info` as the oracle of the
# database-header parser (no signatures are downloaded: the test writes the headers).
if command -v restic > /dev/null && command -v borg > /dev/null && command -v sigtool > /dev/null; then
  echo "test tooling: restic, borg and sigtool are installed"
else
  echo "test tooling: installing restic, borgbackup and clamav (for sigtool)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends restic borgbackup clamav > /dev/null
fi
