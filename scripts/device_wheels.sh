#!/usr/bin/env bash
# Fetch, on a machine with PyPI, the wheels scripts/device_check.sh needs on a CUDA machine that
# has Python 3.12, torch, transformers and accelerate but no internet (the project's GPU runs).
# They land in .whl/ (git-ignored, about 6 MB): carry that folder to the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
platforms=()
for n in 2_28 2_27 2_17 2014 1; do
    case $n in 2014|1) platforms+=(--platform "manylinux${n}_x86_64") ;; *) platforms+=(--platform "manylinux_${n}_x86_64") ;; esac
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d .whl diffusers==0.42.1 trimesh==5.2.0 xatlas==0.0.11
ls -l .whl
