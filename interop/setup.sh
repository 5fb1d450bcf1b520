#!/usr/bin/env bash
# Installs the early-form Python peer, PyPI `aauth` 0.1.0 and what it
# imports, into interop/.venv, every file checked against the hashes in
# requirements.txt. Python 3.10+ with venv comes from the OS packages when
# it is missing (apt). Does nothing when the environment is already current.
set -euo pipefail
cd "$(dirname "$0")"

say() { printf 'interop: %s\n' "$*"; }
fail() { printf 'interop: error: %s\n' "$*" >&2; exit 1; }

PYTHON=${PYTHON:-python3}
usable() {
  command -v "$PYTHON" >/dev/null 2>&1 &&
    "$PYTHON" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' 2>/dev/null
}
if ! usable; then
  ../scripts/os-packages.sh interop "the Python peer (Python 3.10+ with venv)" python3 python3-venv
  PYTHON=python3
  usable || fail "python3 from the OS packages is older than 3.10 or has no venv"
fi

stamp=".venv/requirements.sha256"
wanted=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
  say "the Python peer is installed ($(.venv/bin/python -c 'import aauth; print("aauth", aauth.__version__)'))"
  exit 0
fi

say "creating interop/.venv with $("$PYTHON" --version)"
rm -rf .venv
"$PYTHON" -m venv .venv
say "installing aauth 0.1.0 from PyPI (pinned, hashes checked)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-input \
  --require-hashes --no-deps --only-binary=:all: -r requirements.txt
.venv/bin/python -c 'import aauth; assert aauth.__version__ == "0.1.0", aauth.__version__'
echo "$wanted" >"$stamp"
say "the Python peer is installed (aauth 0.1.0)"
