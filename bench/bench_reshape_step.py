"""What one reshape step costs besides the prior: clay renders of the edited and the unedited
mesh, the smooth-displacement solve, backward and the optimiser, on a 100,000-triangle mesh
with 2% of it selected, beside one forward of Stable Diffusion 2.1-base's UNet at its real size
with random weights (batch 2, 64² latent), measured side by side.

    .venv/bin/python bench/bench_reshape_step.py [--device cpu] [--resolution 128] [--steps 20]

Target (issue 18, as for score distillation): the engine's overhead <= 25% of the UNet forward.
DDS asks the prior twice a step (four UNet evaluations with guidance); the VAE's encoding of
the renders is the prior's work and left out of both figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from backend.distill.guidance.delta import DDSConfig, DeltaDenoisingScore  # noqa: E402
from backend.reshape.optimise import ReshapeConfig, reshape  # noqa: E402
from backend.reshape.region import region_graph  # noqa: E402
from bench_distill_step import FreeDenoiser, step_timer, unet_forward_seconds  # noqa: E402
from bench_texture_bake import parametric_torus  # noqa: E402


def engine_step_seconds(device: str, resolution: int, steps: int, border: float) -> tuple[list[float], int]:
    """Seconds per step of the real loop with a free prior, and how many vertices may move."""
    vertices, faces, _ = parametric_torus()
    centres = vertices[faces].mean(1)
    distance = np.linalg.norm(centres - np.array([1.35, 0.0, 0.0], np.float32), axis=1)
    selected = np.zeros(len(faces), bool)
    selected[np.argsort(distance)[: len(faces) // 50]] = True
    graph = region_graph(vertices, faces, selected, border=border)
    times, on_step = step_timer(device)
    guidance = DeltaDenoisingScore(FreeDenoiser(), DDSConfig(weighting="sds"), total_steps=steps)
    config = ReshapeConfig(steps=steps, resolution=resolution, preview_every_s=1e9)
    reshape(graph, guidance, "horns", config, source_prompt="a ring", device=device, on_step=on_step)
    return times[2:], len(graph.free)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--unet-runs", type=int, default=3)
    args = parser.parse_args()
    print(f"device {args.device}, {torch.get_num_threads()} threads, renders {args.resolution}²")
    times, free = engine_step_seconds(args.device, args.resolution, args.steps, border=0.05)
    engine = statistics.median(times)
    prior = statistics.median(unet_forward_seconds(args.device, args.unet_runs))
    print(f"100,000 triangles, 2% selected, {free} vertices free to move (5% band)")
    print(f"SD 2.1-base UNet forward, batch 2:  {prior * 1000:8.1f} ms")
    print(f"reshape engine per step (DDS):      {engine * 1000:8.1f} ms = {engine / prior:.1%} of it")
    print("target: <= 25%")


if __name__ == "__main__":
    main()
