"""Magic3D's fine stage: a textured triangle mesh, rasterized at high resolution, refined by score
distillation (Lin et al. 2023, "Magic3D").

The coarse radiance field's surface becomes a mesh (marching cubes), and the field itself stays
as the mesh's texture: each pixel's colour is the field's albedo at the surface point it shows.
Rasterizing instead of marching rays makes 512² renders affordable, and the prior judges them
in its latent space (Magic3D encodes them with the VAE; t in [0.02, 0.5], so fine detail, not
the overall shape, is what moves). Gradients reach the vertex positions through the
perspective-correct barycentrics and the normals (the shape moves by the smooth (I + lambda L)^-1
displacement of backend/reshape, every vertex free), and the texture through the field.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field as dataclass_field, replace
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..render.rasterize import interpolate, rasterize
from ..reshape.region import SmoothDisplacement, region_graph
from ..reshape.shading import light_direction, vertex_normals
from ..results import StepCallback, no_progress
from . import checkpoint as checkpoints
from .cameras import CameraConfig, sample_views, view_at
from .field import RadianceField
from .guidance.base import Guidance, View
from .trainer import to_preview

AMBIENT = 0.25  # lit shadings: light every surface gets besides the diffuse term


@dataclass
class MeshStageConfig:
    """Parameters of `refine_mesh`.

    Attributes:
        steps: Optimisation steps.
        cameras: Where views are drawn from; Magic3D renders the fine stage at 512².
        lr_shape: Adam's step on the smooth shape parameters, as a fraction of the mesh's radius.
        lr_grid, lr_mlp: Adam's steps on the texture field's grids and decoder.
        final_lr: Every step size falls linearly to this fraction of its own by the last step.
        smoothness: lambda of the (I + lambda L)^-1 shape parametrisation.
        along_normals: Vertices move along their rest normals only (never fold); else in 3D.
        lit_fraction: Share of steps rendered lit (half of them textureless), as in the coarse stage.
        background: Colour behind the object, or None for a random one each step.
        preview_every_s: Seconds between preview renders sent to the callback.
        seed: Cameras, shading choices and backgrounds.
    """

    steps: int = 2000
    cameras: CameraConfig = dataclass_field(default_factory=lambda: CameraConfig(resolution=512))
    lr_shape: float = 0.002
    lr_grid: float = 1e-2
    lr_mlp: float = 1e-3
    final_lr: float = 0.1
    smoothness: float = 100.0
    along_normals: bool = True
    lit_fraction: float = 0.5
    background: Optional[tuple[float, float, float]] = None
    preview_every_s: float = 2.0
    seed: int = 0


class TexturedMesh(torch.nn.Module):
    """A mesh whose vertices move smoothly and whose colour is a field's albedo.

    Args:
        vertices: (V, 3) in the field's frame; faces: (F, 3).
        texture: The field whose albedo colours the surface (the coarse stage's, so the fine
            stage starts from its colours).
        smoothness, along_normals: Of the shape parametrisation (reshape.region.SmoothDisplacement).
        device: Where it lives.
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, texture: RadianceField, smoothness: float = 100.0,
                 along_normals: bool = True, device: str | torch.device = "cpu"):
        super().__init__()
        graph = region_graph(vertices, faces, np.ones(len(faces), bool), border=0.0)
        self.shape = SmoothDisplacement(graph, smoothness, along_normals, device)
        self.texture = texture
        self.faces = torch.from_numpy(graph.faces).to(device)

    def positions(self) -> torch.Tensor:
        """(W, 3) vertex positions now (vertices split at seams are one here)."""
        return self.shape.positions()

    def render(self, view: View, shading: str, background: torch.Tensor, albedo=None) -> tuple[torch.Tensor, torch.Tensor]:
        """One view: ((3, H, W) in [0, 1], (H, W) bool mask).

        Args:
            shading: "albedo", "lambertian" (albedo lit by a light fixed to the camera, as
                reshape.shading places it) or "textureless" (white, lit).
            background: (3,) RGB behind the object.
            albedo: Colour at surface points (N, 3) -> (N, 3); default the texture field's.
        """
        positions = self.positions()
        return render_mesh(positions, self.faces, view, shading, background,
                           albedo or (lambda points: self.texture(points)[1]))


def render_mesh(vertices: torch.Tensor, faces: torch.Tensor, view: View, shading: str, background: torch.Tensor,
                albedo) -> tuple[torch.Tensor, torch.Tensor]:
    """A rasterized render with colour from `albedo` (points -> RGB), lit as `shading` says.
    Shared by the mesh stage and the oracles that render their target the same way."""
    fragments = rasterize(vertices, faces, view.camera)
    mask = fragments.mask
    height, width = mask.shape
    image = background.to(vertices).view(1, 1, 3).expand(height, width, 3)
    if not bool(mask.any()):
        return image.permute(2, 0, 1), mask
    points = interpolate(vertices, fragments, faces)[mask]  # (N, 3)
    colour = torch.ones_like(points) if shading == "textureless" else albedo(points)
    if shading != "albedo":
        normal = F.normalize(interpolate(vertex_normals(vertices, faces), fragments, faces)[mask], dim=-1)
        eye = torch.tensor(view.camera.eye, dtype=points.dtype, device=points.device)
        normal = torch.where(((normal * (eye - points)).sum(-1, keepdim=True) < 0), -normal, normal)
        lit = (normal * light_direction(view.camera, points.device)).sum(-1, keepdim=True).clamp(min=0)
        colour = colour * (AMBIENT + (1 - AMBIENT) * lit)
    image = image.clone()
    image[mask] = colour.to(image.dtype)
    return image.permute(2, 0, 1), mask


def refine_mesh(mesh: TexturedMesh, guidance: Guidance, prompt: str, config: MeshStageConfig = MeshStageConfig(),
                callback: StepCallback = no_progress, negative_prompt: Optional[str] = None,
                on_step=None, resume: Optional[dict[str, Any]] = None) -> TexturedMesh:
    """Optimise the mesh's shape and texture so its renders score well under `guidance`.

    Args:
        mesh: The textured mesh, trained in place.
        guidance: Any guidance (Magic3D: SDS on the VAE's latents, t in [0.02, 0.5]).
        prompt, negative_prompt: What the object is, and what it should not look like.
        config: See MeshStageConfig.
        callback: ("refine", step, total, preview, checkpoint=...) each step; raises JobCancelled
            to stop. `checkpoint()` makes the run's state after that step.
        on_step: Optional (step, views, loss) hook for tests and benches.
        resume: A state `checkpoint()` made (unpacked): the run goes on from the step after it,
            exactly as if it had never stopped.

    Raises:
        InputError: `resume` does not fit this mesh, guidance or configuration.

    Returns:
        The mesh.
    """
    device = mesh.faces.device
    generator = torch.Generator().manual_seed(config.seed)
    radius = float(mesh.shape.rest.norm(dim=1).max())
    texture = mesh.texture
    optimiser = torch.optim.Adam([
        {"params": [mesh.shape.u], "lr": config.lr_shape * radius},
        {"params": list(texture.grids.parameters()), "lr": config.lr_grid},
        {"params": list(texture.mlp.parameters()), "lr": config.lr_mlp},
    ], betas=(0.9, 0.99), eps=1e-15, fused=device.type in ("cpu", "cuda"))  # one kernel for the grids
    # Shrinking steps let the surface settle: at a constant step the shape keeps overshooting
    # and the texture keeps chasing it.
    decay = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda k: 1 - (1 - config.final_lr) * k / max(config.steps, 1))
    preview_view = view_at(15.0, 30.0, sum(config.cameras.distance) / 2, sum(config.cameras.fov_y) / 2, 256)
    last_preview = -math.inf

    parts = {"mesh": mesh, "optimiser": optimiser, "step sizes": decay}

    def snapshot() -> dict[str, Any]:
        return checkpoints.loop_state(step, device, generator, guidance, **parts)

    first = 1 if resume is None else checkpoints.load_loop_state(resume, config.steps, device, generator, guidance,
                                                                 **parts) + 1
    for step in range(first, config.steps + 1):
        background = config.background or tuple(torch.rand(3, generator=generator).tolist())
        shading = _shading(config, generator)
        views = [replace(v, background=background, shading=shading) for v in sample_views(1, config.cameras, generator)]
        renders = torch.stack([mesh.render(v, shading, torch.tensor(background))[0] for v in views])
        output = guidance(renders, views, prompt, step, negative_prompt)
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
                preview = to_preview(mesh.render(preview_view, "albedo", torch.ones(3, device=device))[0])
        callback("refine", step, config.steps, preview, checkpoint=snapshot)
    return mesh


def _shading(config: MeshStageConfig, generator: torch.Generator) -> str:
    u = float(torch.rand(1, generator=generator))
    if u >= config.lit_fraction:
        return "albedo"
    return "textureless" if u < config.lit_fraction / 2 else "lambertian"
