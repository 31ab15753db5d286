#!/usr/bin/env bash
# Installs what the end-to-end tests need, idempotently:
#   - a Python venv with securesystemslib (an independent DSSE verifier) at $EVIDENT_TEST_VENV
# Under CI=true any failure here fails the run (set -e); tests never skip silently there.
set -euo pipefail
VENV="${EVIDENT_TEST_VENV:-/var/tmp/evident-test-venv}"
REQS="$(dirname "$0")/requirements.txt"
stamp="$VENV/.evident-requirements"
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && cmp -s "$REQS" "$stamp"; then
  echo "test tooling: $VENV is up to date"
  exit 0
fi
echo "test tooling: installing Python packages into $VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQS"
cp "$REQS" "$stamp"
"$VENV/bin/python" -c "import securesystemslib, cryptography; print('test tooling: securesystemslib', securesystemslib.__version__)"
