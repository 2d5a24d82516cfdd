#!/usr/bin/env bash
# The main job, from a fresh machine: set up .venv, build the extension with Blender's tool,
# install it into a throwaway Blender user folder, and run a scripted batch generation on the
# built-in offline model. Writes out/<prompt>.glb and out/<prompt>.png.
# Extra arguments go to examples/batch_generate.py, e.g. `./scripts/main.sh --prompt "a rocket with four fins"`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
zip=$(.venv/bin/python scripts/build_extension.py --output-dir out | tail -n 1)
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--prompt "a chair with four legs")
rm -rf out/blender_user  # a fresh user folder each run, so the just-built zip is what runs
exec .venv/bin/python examples/batch_generate.py --extension "$zip" --out-dir out "${args[@]}"
