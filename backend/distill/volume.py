"""Volume rendering of a RadianceField in plain PyTorch, with empty-space skipping.

Each pixel's ray is cut to the field's cube and sampled at stratified depths; samples that fall
in cells an occupancy grid marks empty skip the network (nerfacc's trick, without its CUDA
kernels), and the rest are alpha-composited front to back (NeRF's quadrature). DreamFusion's
shading: albedo only, Lambertian under a point light, or textureless (white albedo, lit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from .field import RadianceField
from .guidance.base import View

SHADINGS = ("albedo", "lambertian", "textureless")


@dataclass
class RenderConfig:
    """Parameters of `render`.

    Attributes:
        samples: Depths per ray, stratified between the ray's entry into and exit from the cube.
        occupancy_resolution: Side of the occupancy grid used to skip empty space.
        occupancy_threshold: Density below which a cell counts as empty (its opacity over one
            cell is about density x cell size; 0.01 is invisible).
        ambient: Light every surface gets in the lit shadings (DreamFusion: 0.1).
        normal_step: Finite-difference step for normals, in units of the field's bound.
    """

    samples: int = 64
    occupancy_resolution: int = 32
    occupancy_threshold: float = 0.01
    ambient: float = 0.1
    normal_step: float = 5e-3


@dataclass
class Rendered:
    """Renders of B views, each (B, C, H, W): colour (3), opacity (1) and expected depth (1)."""

    rgb: torch.Tensor
    opacity: torch.Tensor
    depth: torch.Tensor


class Occupancy:
    """A coarse grid of cells where the field has density, refreshed during training.

    Args:
        resolution: Cells per side over the field's cube.
        bound: The cube's half-size.
        device: Where the grid lives.
    """

    def __init__(self, resolution: int, bound: float, device="cpu"):
        self.resolution, self.bound = resolution, bound
        self.grid = torch.ones(resolution, resolution, resolution, dtype=torch.bool, device=device)  # all, until measured

    @torch.no_grad()
    def update(self, field: RadianceField, threshold: float, generator: Optional[torch.Generator] = None) -> float:
        """Mark the cells whose density, at a random point in each, exceeds `threshold`.

        Returns:
            The fraction of cells occupied.
        """
        r, device = self.resolution, self.grid.device
        index = torch.stack(torch.meshgrid(*(torch.arange(r, device=device),) * 3, indexing="ij"), -1).view(-1, 3)
        jitter = torch.rand(index.shape, generator=generator, device="cpu").to(device)
        points = ((index + jitter) / r * 2 - 1) * self.bound
        density = torch.cat([field.density(chunk) for chunk in points.split(65536)])
        # A cell is kept if it or a neighbour has density: a point sample can miss a thin surface.
        occupied = (density > threshold).view(1, 1, r, r, r).float()
        self.grid = torch.nn.functional.max_pool3d(occupied, 3, stride=1, padding=1).view(r, r, r) > 0
        return float(self.grid.float().mean())

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"grid": self.grid}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        grid = state["grid"]
        if grid.shape != self.grid.shape or grid.dtype != torch.bool:
            raise ValueError(f"an occupancy grid of {tuple(grid.shape)} {grid.dtype}, not {tuple(self.grid.shape)}")
        self.grid = grid.to(self.grid.device)

    def contains(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 3) points → (N,) whether their cell is occupied (False outside the cube)."""
        cell = ((points / self.bound + 1) / 2 * self.resolution).floor().long()
        inside = ((cell >= 0) & (cell < self.resolution)).all(-1)
        cell = cell.clamp(0, self.resolution - 1)
        return inside & self.grid[cell[:, 0], cell[:, 1], cell[:, 2]]


def camera_rays(view: View, device="cpu", dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """(H*W, 3) origins and unit directions of a view's pixel centres, row 0 at the top."""
    camera = view.camera
    to_world = camera.view_matrix(device=device, dtype=dtype)[:3, :3].t()  # camera to world rotation
    focal = 0.5 * camera.height / math.tan(math.radians(camera.fov_y) / 2)
    rows, cols = torch.meshgrid(torch.arange(camera.height, device=device, dtype=dtype),
                                torch.arange(camera.width, device=device, dtype=dtype), indexing="ij")
    local = torch.stack([(cols + 0.5 - camera.width / 2) / focal, -(rows + 0.5 - camera.height / 2) / focal,
                         -torch.ones_like(rows)], -1).view(-1, 3)
    directions = torch.nn.functional.normalize(local @ to_world.t(), dim=-1)
    origins = torch.tensor(camera.eye, dtype=dtype, device=device).expand_as(directions)
    return origins, directions


def _cube_span(origins: torch.Tensor, directions: torch.Tensor, bound: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each ray enters and leaves [-bound, bound]³ (slab method); near >= far for a miss."""
    inverse = 1.0 / torch.where(directions.abs() < 1e-9, torch.full_like(directions, 1e-9), directions)
    t0, t1 = (-bound - origins) * inverse, (bound - origins) * inverse
    near = torch.minimum(t0, t1).amax(-1).clamp(min=0.0)
    far = torch.maximum(t0, t1).amin(-1)
    return near, far


def render(field: RadianceField, views: Sequence[View], config: RenderConfig = RenderConfig(),
           occupancy: Optional[Occupancy] = None, shading: str = "albedo",
           light: Optional[torch.Tensor] = None, background: Optional[torch.Tensor] = None,
           generator: Optional[torch.Generator] = None) -> Rendered:
    """Render `field` from each view.

    Args:
        field: The radiance field.
        views: B views of the same resolution.
        config: Samples per ray and shading constants.
        occupancy: Cells known empty are skipped; None evaluates every sample.
        shading: "albedo", "lambertian" or "textureless".
        light: (3,) point light position for the lit shadings (default: above the first camera).
        background: (3,) colour behind the object (default white).
        generator: Draws the stratified depths (deterministic renders when given).

    Returns:
        Rendered images (B, C, H, W).
    """
    if shading not in SHADINGS:
        raise ValueError(f"shading must be one of {', '.join(SHADINGS)}, got {shading!r}")
    parameter = next(field.parameters())
    device, dtype = parameter.device, parameter.dtype
    bound, n = field.config.bound, config.samples
    rays = [camera_rays(v, device, dtype) for v in views]
    origins, directions = torch.cat([o for o, _ in rays]), torch.cat([d for _, d in rays])  # (R, 3)
    near, far = _cube_span(origins, directions, bound)
    hit = far > near
    # Stratified depths: one uniform draw in each of n equal bins between near and far.
    u = torch.rand(len(origins), n, generator=generator, device="cpu").to(device, dtype)
    bins = (torch.arange(n, device=device) + u) / n  # (R, n)
    depths = near[:, None] + bins * (far - near).clamp(min=0)[:, None]
    points = origins[:, None] + directions[:, None] * depths[..., None]  # (R, n, 3)

    flat = points.view(-1, 3)
    keep = hit[:, None].expand(-1, n).reshape(-1)
    if occupancy is not None:
        keep = keep & occupancy.contains(flat)
    density = torch.zeros(len(flat), device=device, dtype=dtype)
    colour = torch.zeros(len(flat), 3, device=device, dtype=dtype)
    if keep.any():
        chosen = flat[keep]
        sigma, albedo = field(chosen)
        if shading != "albedo":
            albedo = _shade(field, chosen, albedo, shading, config, light, views, device)
        density = density.index_put((keep.nonzero()[:, 0],), sigma)
        colour = colour.index_put((keep.nonzero()[:, 0],), albedo)
    density, colour = density.view(-1, n), colour.view(-1, n, 3)

    # NeRF's quadrature: alpha from each interval's optical depth, weights by transmittance.
    deltas = torch.cat([depths[:, 1:] - depths[:, :-1], (far[:, None] - depths[:, -1:]).clamp(min=0)], -1)
    alpha = 1 - torch.exp(-density * deltas)
    transmittance = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha[:, :-1] + 1e-10], -1), -1)
    weights = alpha * transmittance  # (R, n)
    opacity = weights.sum(-1, keepdim=True)
    background = torch.ones(3, device=device, dtype=dtype) if background is None else background.to(device, dtype)
    rgb = (weights[..., None] * colour).sum(1) + (1 - opacity) * background
    depth = (weights * depths).sum(-1, keepdim=True)

    b, h, w = len(views), views[0].camera.height, views[0].camera.width
    as_image = lambda x: x.view(b, h, w, -1).permute(0, 3, 1, 2)  # noqa: E731
    return Rendered(as_image(rgb), as_image(opacity), as_image(depth))


def _shade(field, points, albedo, shading, config, light, views, device) -> torch.Tensor:
    """Lit colour: albedo (or white) x (ambient + diffuse n·l), normals from the density's gradient."""
    step = config.normal_step * field.config.bound
    offsets = torch.eye(3, device=device, dtype=points.dtype) * step
    probes = torch.cat([points + o for o in offsets] + [points - o for o in offsets])
    sigma = field.density(probes).view(6, -1)
    gradient = torch.stack([sigma[k] - sigma[k + 3] for k in range(3)], -1) / (2 * step)
    normals = -torch.nn.functional.normalize(gradient, dim=-1)
    if light is None:  # above and behind the first camera
        light = torch.tensor(views[0].camera.eye) * 1.5 + torch.tensor([0.0, 2.0, 0.0])
    to_light = torch.nn.functional.normalize(light.to(device, points.dtype) - points, dim=-1)
    diffuse = (normals * to_light).sum(-1, keepdim=True).clamp(min=0)
    base = torch.ones_like(albedo) if shading == "textureless" else albedo
    return base * (config.ambient + (1 - config.ambient) * diffuse)
