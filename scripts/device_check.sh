#!/usr/bin/env bash
# The texture work's GPU checks in one command, on a CUDA machine without internet (wheels from
# scripts/device_wheels.sh in .whl/). Prints the CUDA tests' results and the VRAM of one 512²
# view per route, memory setting and texture size (bench/bench_texture_memory.py), then the
# estimate made without a GPU (bench/estimate_texture_vram.py) to set beside it; the log also
# goes to $OUT when that is set. About 5 minutes on an H200.
set -uo pipefail
cd "$(dirname "$0")/.."
log=${OUT:-/tmp}/device_check.log
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit
export PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c "import torch, diffusers, transformers; print('torch', torch.__version__, 'diffusers', diffusers.__version__, 'transformers', transformers.__version__)"
    python3 -c "import nvdiffrast.torch" 2>/dev/null && echo "nvdiffrast: installed" || echo "nvdiffrast: not installed (the torch rasterizer serves CUDA)"
    python3 -m pytest -q -p no:cacheprovider tests/backend/test_render.py tests/backend/test_jobs.py -k "cuda or device or offload"
    python3 bench/bench_texture_memory.py --steps 3
    python3 bench/estimate_texture_vram.py
} 2>&1 | tee "$log"
