#!/usr/bin/env bash
# Sets up .venv if needed, then runs the whole test suite (backend, built-in model, Blender).
# Extra arguments go to pytest, e.g. `./scripts/test.sh tests/backend -k server`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
