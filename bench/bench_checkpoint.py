"""What a score-distillation checkpoint costs: its size, the time to make and write it, and the
time to read it back and load it, for the default radiance field with Adam's moments, beside
the time of one optimisation step of the same field (the engine alone, a free guidance) so the
figures read as "a checkpoint costs k steps".

    .venv/bin/python bench/bench_checkpoint.py [--device cpu] [--steps 5]

A job writes one when it stops and every 10 minutes (job_run.AUTOSAVE_S); against 10 minutes
of steps a checkpoint costing a few steps is noise.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from backend.distill import checkpoint as checkpoints  # noqa: E402
from backend.distill.cameras import CameraConfig  # noqa: E402
from backend.distill.field import RadianceField  # noqa: E402
from backend.distill.guidance.base import GuidanceOutput  # noqa: E402
from backend.distill.trainer import DistillConfig, distill  # noqa: E402


def free_guidance(renders, views, prompt, step, negative_prompt=None):
    """No prior: the loss pulls the renders to grey, so the step is the engine's cost alone."""
    return GuidanceOutput(((renders - 0.5) ** 2).mean(), torch.zeros(len(renders), dtype=torch.long))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    config = DistillConfig(steps=args.steps, cameras=CameraConfig(resolution=64), albedo_steps=0, seed=0)
    made = {}

    def callback(phase, step, total, preview=None, within=0.0, state=None, checkpoint=None):
        made["last"] = time.perf_counter()
        if step == total:
            made["checkpoint"] = checkpoint

    field = RadianceField().to(device)
    start = time.perf_counter()
    distill(field, free_guidance, "x", config, callback)
    step_s = (made["last"] - start) / args.steps

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "checkpoint.safetensors"
        t0 = time.perf_counter()
        data = checkpoints.pack(made["checkpoint"]())
        path.write_bytes(data)
        save_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        state = checkpoints.unpack(path.read_bytes())
        resumed = RadianceField().to(device)
        distill(resumed, free_guidance, "x", DistillConfig(**{**config.__dict__, "steps": args.steps}), resume=state)
        load_s = time.perf_counter() - t0
    parameters = sum(p.numel() for p in field.parameters())
    print(f"device {device}, default field: {parameters / 1e6:.1f} M parameters ({parameters * 4 / 2**20:.0f} MB)")
    print(f"checkpoint: {len(data) / 2**20:.0f} MB (field + Adam's two moments + random state)")
    print(f"one step of the engine (64² render, free guidance): {step_s:.3f} s")
    print(f"make + write a checkpoint: {save_s:.3f} s = {save_s / step_s:.1f} steps")
    print(f"read + load it (resume): {load_s:.3f} s = {load_s / step_s:.1f} steps")


if __name__ == "__main__":
    main()
