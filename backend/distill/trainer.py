"""The optimisation loop of score distillation: render random views, ask the guidance, step.

    field = RadianceField(); guidance = ScoreDistillation(denoiser, total_steps=steps)
    distill(field, guidance, "a ceramic mug", DistillConfig(steps=steps), callback)

Progress, previews and cancel go through the same StepCallback every pipeline uses; so does
the run's checkpoint (`checkpoint=`, what `resume=` takes back to go on exactly where it stood).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field as dataclass_field, replace
from typing import Any, Optional, Sequence

import numpy as np
import torch

from ..results import StepCallback, no_progress
from . import checkpoint as checkpoints
from .cameras import CameraConfig, sample_views, view_at
from .field import RadianceField
from .guidance.base import Guidance
from .volume import Occupancy, RenderConfig, render


@dataclass
class TransmittanceTarget:
    """DreamFields' sparsity regulariser: loss weight * -min(tau, mean transmittance of the
    renders), tau rising linearly from `start` to `end` over `anneal_steps` (as we read Jain et
    al. 2022, Sec. 4.2: 40% to 88% over the first 500 iterations). Without it CLIP is as happy
    with a fog that shows the prompt from every side as with an object. The weight is ours.
    """

    start: float = 0.4
    end: float = 0.88
    anneal_steps: int = 500
    weight: float = 0.5

    def loss(self, opacity: torch.Tensor, step: int) -> torch.Tensor:
        tau = self.start + (self.end - self.start) * min(1.0, step / max(self.anneal_steps, 1))
        return -self.weight * (1 - opacity).mean().clamp(max=tau)


@dataclass
class DistillConfig:
    """Parameters of `distill`.

    Attributes:
        steps: Optimisation steps.
        views_per_step: Renders per step (the guidance's batch).
        cameras: Where views are drawn from.
        rendering: Samples per ray, shading constants.
        lr_grid, lr_mlp: Adam's learning rates for the feature grids and the decoder (grids
            move faster, as Instant-NGP trains them).
        albedo_steps: Steps rendered with albedo only before lit shading is mixed in.
        lit_fraction: After that, the share of steps rendered lit (half of them textureless),
            DreamFusion's way of making geometry, not paint, explain the images.
        occupancy_every: Steps between refreshes of the empty-space grid.
        background: Colour behind the object, or None for a random colour each step: the field
            cannot then paint the background into fog in front of it.
        preview_every_s: Seconds between preview renders sent to the callback.
        seed: Cameras, depths, timesteps and noise.
        transmittance: DreamFields' regulariser towards see-through space (None: off).
        reference: A view the field must reproduce every step (image to 3D: the input image,
            `reference.ReferenceView`); None: none.
    """

    steps: int = 5000
    views_per_step: int = 1
    cameras: CameraConfig = dataclass_field(default_factory=CameraConfig)
    rendering: RenderConfig = dataclass_field(default_factory=RenderConfig)
    lr_grid: float = 1e-2
    lr_mlp: float = 1e-3
    albedo_steps: int = 1000
    lit_fraction: float = 0.5
    occupancy_every: int = 16
    background: Optional[tuple[float, float, float]] = None
    preview_every_s: float = 2.0
    seed: int = 0
    transmittance: Optional[TransmittanceTarget] = None
    reference: Optional[Any] = None


def distill(field: RadianceField | Sequence[RadianceField], guidance: Guidance, prompt: str,
            config: DistillConfig = DistillConfig(), callback: StepCallback = no_progress,
            negative_prompt: Optional[str] = None, on_step=None,
            resume: Optional[dict[str, Any]] = None) -> RadianceField | Sequence[RadianceField]:
    """Optimise `field` so its renders score well under `guidance`.

    Args:
        field: The radiance field, trained in place; or several, VSD's particles: each step
            renders `views_per_step` views of every one, and the guidance judges them together
            (VSD's LoRA learns from all of them), the views' order particle by particle.
        guidance: Any guidance method (SDS, VSD, ...), called with the renders of each step.
        prompt, negative_prompt: What the object is, and what it should not look like.
        config: See DistillConfig.
        callback: Progress each step ("distill", step, total, preview, checkpoint=...); raises
            JobCancelled to stop. `checkpoint()` makes the run's state after that step. The
            preview shows the particles side by side.
        on_step: Optional (step, views, loss) hook, for tests and benches that record the run.
        resume: A state `checkpoint()` made (unpacked): the run goes on from the step after it,
            exactly as if it had never stopped (same field, optimiser, guidance and draws).

    Raises:
        InputError: `resume` does not fit this field, guidance or configuration.

    Returns:
        The trained field (or fields).
    """
    fields = list(field) if isinstance(field, (list, tuple)) else [field]
    device = next(fields[0].parameters()).device
    generator = torch.Generator().manual_seed(config.seed)
    grids = [p for f in fields for p in f.grids.parameters()]
    optimiser = torch.optim.Adam([{"params": grids, "lr": config.lr_grid},
                                  {"params": [p for f in fields for p in f.mlp.parameters()], "lr": config.lr_mlp}],
                                 betas=(0.9, 0.99), eps=1e-15,
                                 fused=device.type in ("cpu", "cuda"))  # one kernel: the grids are millions
    occupancies = [Occupancy(config.rendering.occupancy_resolution, f.config.bound, device) for f in fields]
    preview_view = view_at(15.0, 30.0, sum(config.cameras.distance) / 2, sum(config.cameras.fov_y) / 2, 128)
    last_preview = -float("inf")

    names = ["field"] if len(fields) == 1 else [f"field {k}" for k in range(1, len(fields) + 1)]
    parts = {"optimiser": optimiser, **dict(zip(names, fields)),
             **{name.replace("field", "occupancy grid"): o for name, o in zip(names, occupancies)}}

    def snapshot() -> dict[str, Any]:
        return checkpoints.loop_state(step, device, generator, guidance, **parts)

    first = 1 if resume is None else checkpoints.load_loop_state(resume, config.steps, device, generator, guidance,
                                                                 **parts) + 1
    for step in range(first, config.steps + 1):
        if step % config.occupancy_every == 1 or config.occupancy_every == 1:
            for f, occupancy in zip(fields, occupancies):
                occupancy.update(f, config.rendering.occupancy_threshold, generator)
        background = config.background or tuple(torch.rand(3, generator=generator).tolist())
        views = [replace(v, background=background)
                 for v in sample_views(config.views_per_step * len(fields), config.cameras, generator)]
        shading = _shading(step, config, generator)
        renders = []
        for i, (f, occupancy) in enumerate(zip(fields, occupancies)):
            own = views[i * config.views_per_step:(i + 1) * config.views_per_step]
            light = _light(own[0], generator, device) if shading != "albedo" else None
            renders.append(render(f, own, config.rendering, occupancy, shading, light, torch.tensor(background),
                                  generator))
        output = guidance(torch.cat([r.rgb for r in renders]), views, prompt, step, negative_prompt)
        loss = output.loss
        if config.transmittance is not None:
            loss = loss + config.transmittance.loss(torch.cat([r.opacity for r in renders]), step)
        if config.reference is not None:
            for f, occupancy in zip(fields, occupancies):
                loss = loss + config.reference.loss(f, config.rendering, occupancy, generator)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if on_step is not None:
            on_step(step, views, float(output.loss.detach()))
        preview = None
        if time.monotonic() - last_preview >= config.preview_every_s or step == config.steps:
            last_preview = time.monotonic()
            preview = np.concatenate([preview_image(f, preview_view, config, occupancy)
                                      for f, occupancy in zip(fields, occupancies)], axis=1)
        callback("distill", step, config.steps, preview, checkpoint=snapshot)
    return field


@torch.no_grad()
def preview_image(field: RadianceField, view, config: DistillConfig, occupancy: Optional[Occupancy] = None) -> np.ndarray:
    """(H, W, 3) uint8 render of the field's current state, albedo shading."""
    rendered = render(field, [view], config.rendering, occupancy, "albedo",
                      background=torch.tensor(config.background or (1.0, 1.0, 1.0)),
                      generator=torch.Generator().manual_seed(0))
    return to_preview(rendered.rgb[0])


def to_preview(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) render in [0, 1] -> (H, W, 3) uint8, what a job's preview holds."""
    return (image.detach().permute(1, 2, 0).clamp(0, 1) * 255).round().byte().cpu().numpy()


def _shading(step: int, config: DistillConfig, generator: torch.Generator) -> str:
    if step <= config.albedo_steps:
        return "albedo"
    u = float(torch.rand(1, generator=generator))
    if u >= config.lit_fraction:
        return "albedo"
    return "textureless" if u < config.lit_fraction / 2 else "lambertian"


def _light(view, generator: torch.Generator, device) -> torch.Tensor:
    """A point light near the camera, as DreamFusion samples it: around the camera's direction,
    at a distance of 0.8-1.5 times the camera's."""
    eye = torch.tensor(view.camera.eye, dtype=torch.float32)
    direction = torch.nn.functional.normalize(eye + torch.randn(3, generator=generator) * 0.3 * eye.norm(), dim=0)
    return (direction * eye.norm() * (0.8 + 0.7 * torch.rand(1, generator=generator))).to(device)
