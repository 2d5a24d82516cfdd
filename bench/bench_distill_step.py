"""What one score-distillation step costs besides the prior: the engine's overhead per step
(render, the guidance's bookkeeping, backward through the render, the optimiser) beside one
forward of Stable Diffusion 2.1-base's UNet at its real size with random weights (batch 2 for
classifier-free guidance, 64² latent), measured side by side on the same machine.

    .venv/bin/python bench/bench_distill_step.py [--device cpu] [--resolution 64] [--steps 20]

Target (issue 16): the engine's overhead <= 25% of the UNet forward. The VAE's encoding of
the renders (a latent prior's input) is the prior's work and left out of both.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from backend.distill.cameras import CameraConfig  # noqa: E402
from backend.distill.field import RadianceField  # noqa: E402
from backend.distill.guidance.oracle import ddpm_alphas_cumprod  # noqa: E402
from backend.distill.guidance.sds import ScoreDistillation, SDSConfig  # noqa: E402
from backend.distill.trainer import DistillConfig, distill  # noqa: E402
from backend.distill.volume import RenderConfig  # noqa: E402
from bench_texture_memory import unet  # noqa: E402


class FreeDenoiser:
    """A prior that costs nothing: the engine's own time is what is left."""

    alphas_cumprod = ddpm_alphas_cumprod()

    def encode(self, prompts):
        return prompts

    def predict_noise(self, x_t, t, condition, views):
        return torch.zeros_like(x_t)


def step_timer(device: str):
    """(times, on_step): an `on_step` hook that appends each step's seconds to `times`."""
    times, last = [], [time.perf_counter()]

    def on_step(step, views, loss):
        if device == "cuda":
            torch.cuda.synchronize()
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    return times, on_step


def engine_step_seconds(device: str, resolution: int, steps: int, skip_empty: bool = True) -> list[float]:
    """Seconds per step of the real loop (default field and renderer) with a free prior;
    skip_empty=False evaluates every sample (the cost before the occupancy grid has learnt
    where the object is)."""
    times, on_step = step_timer(device)
    field = RadianceField().to(device)
    rendering = RenderConfig() if skip_empty else RenderConfig(occupancy_threshold=-1.0)
    config = DistillConfig(steps=steps, cameras=CameraConfig(resolution=resolution), rendering=rendering,
                           preview_every_s=1e9)
    guidance = ScoreDistillation(FreeDenoiser(), SDSConfig(), total_steps=steps)
    distill(field, guidance, "a chair", config, on_step=on_step)
    return times[3:]  # the first steps measure the occupancy grid's first fill and warm-up


def unet_forward_seconds(device: str, runs: int) -> list[float]:
    model = unet(4, 1024, (5, 10, 20, 20), True).to(device).eval()  # SD 2.1-base's layout
    latents, text = torch.randn(2, 4, 64, 64, device=device), torch.randn(2, 77, 1024, device=device)
    times = []
    with torch.no_grad():
        for _ in range(runs + 1):
            start = time.perf_counter()
            model(latents, torch.tensor([500, 500], device=device), encoder_hidden_states=text)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--resolution", type=int, default=64, help="render size (Magic3D's coarse stage: 64)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--unet-runs", type=int, default=3)
    args = parser.parse_args()
    print(f"device {args.device}, {torch.get_num_threads()} threads, renders {args.resolution}²")
    engine = statistics.median(engine_step_seconds(args.device, args.resolution, args.steps))
    every_sample = statistics.median(engine_step_seconds(args.device, args.resolution, args.steps, skip_empty=False))
    prior = statistics.median(unet_forward_seconds(args.device, args.unet_runs))
    print(f"SD 2.1-base UNet forward, batch 2:        {prior * 1000:8.1f} ms")
    print(f"engine per step, empty space skipped:     {engine * 1000:8.1f} ms = {engine / prior:.1%} of it")
    print(f"engine per step, every sample evaluated:  {every_sample * 1000:8.1f} ms = {every_sample / prior:.1%} of it")
    print("target: <= 25%")


if __name__ == "__main__":
    main()
