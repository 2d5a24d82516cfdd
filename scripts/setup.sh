#!/usr/bin/env bash
# Creates (or updates) .venv with the backend, Blender as a Python module (bpy) and the test
# tools. Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-}
if [ -z "$python" ]; then
  # bpy 5.0 wheels exist for Python 3.11 only.
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      python=$candidate; break
    fi
  done
fi
[ -n "$python" ] || { echo "Python 3.11 is required (bpy 5.0 is built for it); set PYTHON=/path/to/python3.11" >&2; exit 1; }

[ -x .venv/bin/python ] || "$python" -m venv .venv
# torch is pinned in backend/requirements.txt: an unpinned torch would pull a CUDA build of several GB.
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
