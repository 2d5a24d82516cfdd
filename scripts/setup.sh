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
# PyPI's Linux torch wheels come with CUDA (gigabytes of nvidia-* packages), pinned or not. Without
# an NVIDIA GPU the CPU build comes first from PyTorch's own index (as the add-on's installer does);
# where that index is unreachable, pip takes the same pin from its configured sources below.
torch_pin=$(grep -E '^torch==' backend/requirements.txt | cut -d' ' -f1)
if [ "$(uname -s)" = Linux ] && ! command -v nvidia-smi >/dev/null && ! .venv/bin/python -c 'import torch' 2>/dev/null; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --timeout 15 --retries 1 "$torch_pin" \
    --index-url https://download.pytorch.org/whl/cpu 2>/dev/null \
    || echo "PyTorch's CPU index is unreachable: $torch_pin comes from the configured package index" >&2
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
