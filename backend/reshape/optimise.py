"""The reshape loop: render the region from cameras aimed at it, ask the guidance, move the region.

    graph = region_graph(vertices, faces, selected, border)
    moved = reshape(graph, guidance, "a lion's head", ReshapeConfig(steps=800), source_prompt="a vase")

The guidance is any method of backend/distill/guidance: plain SDS, or DDS / PDS, which also get
the unedited mesh's renders from the same cameras and the source prompt, so that what the
prompts agree on stays as it was.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch

from ..distill import checkpoint as checkpoints
from ..distill.guidance.base import Guidance, View
from ..distill.trainer import to_preview
from ..render.camera import Camera
from ..results import StepCallback, no_progress
from .region import RegionGraph, SmoothDisplacement, region_frame
from .shading import shade


@dataclass
class ReshapeConfig:
    """Parameters of `reshape`.

    Attributes:
        steps: Optimisation steps.
        resolution: Render size in pixels (square).
        views_per_step: Renders per step (the guidance's batch).
        cone: Cameras look at the region from directions at most this many degrees off its
            mean normal.
        context: The view frames the region's bounding sphere times this (some of the rest of
            the mesh in view, so the prior judges the region in place).
        fov_y: Vertical field of view, degrees.
        lr: Adam's step on the smoothed parameters, as a fraction of the region's radius.
        final_lr: The step falls linearly to this fraction of `lr` by the last step.
        smoothness: lambda of the (I + lambda L)^-1 parametrisation (region.SmoothDisplacement).
        along_normals: Move vertices along their rest normals only (see SmoothDisplacement).
        background: RGB behind the object.
        preview_every_s: Seconds between preview renders sent to the callback.
        seed: Cameras (the guidance has its own generator).
    """

    steps: int = 500
    resolution: int = 128
    views_per_step: int = 1
    cone: float = 70.0
    context: float = 1.6
    fov_y: float = 40.0
    lr: float = 0.01
    final_lr: float = 0.05
    smoothness: float = 100.0
    along_normals: bool = True
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    preview_every_s: float = 2.0
    seed: int = 0


def reshape(graph: RegionGraph, guidance: Guidance, prompt: str, config: ReshapeConfig = ReshapeConfig(),
            callback: StepCallback = no_progress, negative_prompt: Optional[str] = None,
            source_prompt: Optional[str] = None, device: str | torch.device = "cpu",
            on_step=None, deformation: Optional[SmoothDisplacement] = None,
            resume: Optional[dict[str, Any]] = None) -> np.ndarray:
    """Move the free vertices of `graph` so that renders of the region score well under `guidance`.

    Args:
        graph: From `region.region_graph`.
        guidance: SDS, or DDS / PDS (given `source_prompt`: they then get the unedited renders too).
        prompt, negative_prompt: What the region should become, and what to avoid.
        config: See ReshapeConfig.
        callback: ("reshape", step, total, preview, checkpoint=...) each step; raises JobCancelled
            to stop. `checkpoint()` makes the run's state after that step.
        source_prompt: What the unedited mesh shows, for DDS / PDS (None: plain guidance).
        device: Where renders and the optimiser run.
        on_step: Optional (step, views, loss) hook for tests and benches.
        deformation: The displacement to optimise (default: a new one from the config), for a
            caller that reads where it stands while it runs.
        resume: A state `checkpoint()` made (unpacked): the run goes on from the step after it,
            exactly as if it had never stopped.

    Returns:
        (W, 3) float32 welded positions after the last step (fixed vertices exactly as given).
    """
    device = torch.device(device)
    if deformation is None:
        deformation = SmoothDisplacement(graph, config.smoothness, config.along_normals, device)
    faces = torch.from_numpy(graph.faces).to(device)
    centre, normal, radius = region_frame(graph)
    generator = torch.Generator().manual_seed(config.seed)
    optimiser = torch.optim.Adam([deformation.u], lr=config.lr * radius)
    # Steps keep their size near the optimum; shrinking them lets the region settle.
    decay = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda k: 1 - (1 - config.final_lr) * k / max(config.steps, 1))
    preview_view = region_view(centre, normal, radius, normal, config, 256)
    last_preview = -math.inf
    parts = {"deformation": deformation, "optimiser": optimiser, "step sizes": decay}

    def snapshot() -> dict[str, Any]:
        return checkpoints.loop_state(step, device, generator, guidance, **parts)

    first = 1 if resume is None else checkpoints.load_loop_state(resume, config.steps, device, generator, guidance,
                                                                 **parts) + 1
    for step in range(first, config.steps + 1):
        views = [region_view(centre, normal, radius, direction, config, config.resolution)
                 for direction in cone_directions(normal, config.cone, config.views_per_step, generator)]
        positions = deformation.positions()
        renders = torch.stack([shade(positions, faces, v.camera, config.background)[0] for v in views])
        extra = {}
        if source_prompt is not None:
            with torch.no_grad():
                extra = {"source_renders": torch.stack([shade(deformation.rest, faces, v.camera, config.background)[0]
                                                        for v in views]), "source_prompt": source_prompt}
        output = guidance(renders, views, prompt, step, negative_prompt, **extra)
        optimiser.zero_grad(set_to_none=True)
        output.loss.backward()
        optimiser.step()
        decay.step()
        if on_step is not None:
            on_step(step, views, float(output.loss.detach()))
        preview = None
        if time.monotonic() - last_preview >= config.preview_every_s or step == config.steps:
            last_preview = time.monotonic()
            with torch.no_grad():
                preview = to_preview(shade(deformation.positions(), faces, preview_view.camera, config.background)[0])
        callback("reshape", step, config.steps, preview, checkpoint=snapshot)
    with torch.no_grad():
        return deformation.positions().cpu().numpy()


def cone_directions(axis: np.ndarray, cone: float, count: int, generator: torch.Generator) -> list[np.ndarray]:
    """`count` unit directions uniform in solid angle within `cone` degrees of `axis`."""
    side = np.cross(axis, [0.0, 1.0, 0.0] if abs(axis[1]) < 0.9 else [1.0, 0.0, 0.0])
    side /= np.linalg.norm(side)
    other = np.cross(axis, side)
    directions = []
    for a, b in torch.rand(count, 2, generator=generator).tolist():
        cos_theta = 1 - a * (1 - math.cos(math.radians(cone)))
        sin_theta = math.sqrt(max(0.0, 1 - cos_theta**2))
        phi = 2 * math.pi * b
        directions.append(cos_theta * axis + sin_theta * (math.cos(phi) * side + math.sin(phi) * other))
    return directions


def region_view(centre: np.ndarray, normal: np.ndarray, radius: float, direction: np.ndarray,
                config: ReshapeConfig, resolution: int) -> View:
    """The view looking at the region's centre from `direction` (centre -> eye), framing it."""
    direction = np.asarray(direction, np.float64) / np.linalg.norm(direction)
    distance = config.context * radius / math.sin(math.radians(config.fov_y) / 2)
    eye = np.asarray(centre, np.float64) + distance * direction
    up = (0.0, 1.0, 0.0) if abs(direction[1]) < 0.99 else (0.0, 0.0, -1.0)
    camera = Camera(eye=tuple(eye), target=tuple(float(c) for c in centre), up=up, fov_y=config.fov_y,
                    width=resolution, height=resolution, near=distance * 0.02, far=distance * 50)
    elevation = math.degrees(math.asin(max(-1.0, min(1.0, direction[1]))))
    azimuth = math.degrees(math.atan2(direction[0], direction[2]))
    return View(elevation=elevation, azimuth=azimuth, distance=distance, fov_y=config.fov_y, camera=camera,
                background=config.background)
