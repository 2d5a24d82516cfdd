#!/usr/bin/env bash
# Sets up .venv if needed, then runs the whole test suite (backend, built-in model, Blender).
# Extra arguments go to pytest, e.g. `./scripts/test.sh tests/backend -k server`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# Everything is installed now: a package missing after all fails the run (tests/test_environment.py)
# instead of skipping the tests that need it.
DIFFUSION3D_REQUIRE_ALL=1 exec .venv/bin/python -m pytest "$@"
