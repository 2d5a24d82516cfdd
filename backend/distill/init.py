"""Start distillation from an existing shape (Magic3D and Fantasia3D start from a coarse shape):
fit the field's density to the shape's occupancy, and its albedo to the shape's colours, so the
guidance refines a draft (a built-in or Shap-E result, the artist's mesh) instead of a blob.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch

from ..results import StepCallback, no_progress
from .field import RadianceField


@dataclass
class InitConfig:
    """Parameters of `fit_to_mesh`.

    Attributes:
        extent: Half-size the shape is scaled to inside the field's cube (room for the guidance
            to grow it).
        grid: Side of the occupancy grid the shape is voxelised on.
        steps, batch, lr: The fit's Adam steps, points per step and learning rate.
        inside_density, outside_density: Density targets inside and outside the shape: opaque
            over a few grid cells, and transparent.
    """

    extent: float = 0.7
    grid: int = 64
    steps: int = 200
    batch: int = 8192
    lr: float = 1e-2
    inside_density: float = 50.0
    outside_density: float = 0.0


@dataclass
class Placement:
    """How a shape was placed in the field's cube: field = (shape - centre) * scale."""

    centre: np.ndarray
    scale: float

    def to_field(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, np.float64) - self.centre) * self.scale

    def to_shape(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, np.float64) / self.scale + self.centre

    def checkpoint_state(self) -> dict[str, Any]:
        return {"centre": [float(c) for c in self.centre], "scale": float(self.scale)}

    @classmethod
    def from_checkpoint(cls, state: Optional[dict[str, Any]]) -> Optional["Placement"]:
        """The placement `checkpoint_state` kept (None: the run had no draft)."""
        if state is None:
            return None
        centre, scale = np.asarray(state["centre"], np.float64), float(state["scale"])
        if centre.shape != (3,) or not (np.isfinite(centre).all() and np.isfinite(scale) and scale > 0):
            raise ValueError("a placement that is not a finite centre and a positive scale")
        return cls(centre, scale)


def place(vertices: np.ndarray, extent: float) -> Placement:
    """Centre a shape's bounding box and scale its largest side to 2 * extent."""
    low, high = np.asarray(vertices, np.float64).min(0), np.asarray(vertices, np.float64).max(0)
    return Placement(centre=(low + high) / 2, scale=2 * extent / max(float((high - low).max()), 1e-9))


def fit_to_mesh(field: RadianceField, vertices: np.ndarray, faces: np.ndarray, colours: Optional[np.ndarray] = None,
                config: InitConfig = InitConfig(), seed: int = 0, callback: StepCallback = no_progress) -> Placement:
    """Train `field` to the shape: high density inside, none outside, its colours on the surface.

    Args:
        field: The field to initialise (trained in place).
        vertices, faces: The shape, (V, 3) and (F, 3), in its own frame.
        colours: Optional (V, 3) colours in [0, 1]; grey when None.
        config: See InitConfig.
        seed: Draws the training points.
        callback: ("init", step, steps) after each step; raises JobCancelled to stop.

    Returns:
        Where the shape went in the field's cube (to put a result back in the shape's frame).
    """
    import trimesh
    from scipy.spatial import cKDTree

    placement = place(vertices, config.extent)
    mesh = trimesh.Trimesh(placement.to_field(vertices), np.asarray(faces), process=False)
    inside = _occupancy(mesh, config.grid, field.config.bound)
    tree = cKDTree(mesh.vertices)
    colours = np.full((len(vertices), 3), 0.5) if colours is None else np.asarray(colours, np.float64)[:, :3]
    device = next(field.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(field.parameters(), lr=config.lr,
                                 fused=device.type in ("cpu", "cuda"))  # one kernel: half the step on a CPU
    bound = field.config.bound
    for step in range(1, config.steps + 1):
        # Half the points near the surface, where the shape's outline and colours are decided.
        uniform = (torch.rand(config.batch // 2, 3, generator=generator) * 2 - 1) * bound
        near = torch.from_numpy(mesh.sample(config.batch // 2, seed=int(torch.randint(1 << 30, (1,), generator=generator)))
                                ).float() + torch.randn(config.batch // 2, 3, generator=generator) * 0.02
        points = torch.cat([uniform, near]).clamp(-bound, bound)
        cell = ((points / bound + 1) / 2 * config.grid).long().clamp(0, config.grid - 1)
        target_inside = torch.from_numpy(inside[cell[:, 0], cell[:, 1], cell[:, 2]]).float()
        density, albedo = field(points.to(device))
        goal = target_inside * config.inside_density + (1 - target_inside) * config.outside_density
        # Densities compared in log space: from 0 to 50 is a wide range, and a blob starts at e^10.
        loss = (torch.log1p(density) - torch.log1p(goal.to(device))).pow(2).mean()
        nearest = torch.from_numpy(colours[tree.query(points.numpy())[1]]).float().to(device)
        loss = loss + ((albedo - nearest).pow(2).sum(-1) * target_inside.to(device)).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        callback("init", step, config.steps)
    return placement


def _occupancy(mesh, grid: int, bound: float) -> np.ndarray:
    """(grid, grid, grid) bool: the cells the surface passes through, with what they enclose
    filled. Works for open meshes too (scans, results with small holes: closed first), and needs
    no ray casting."""
    from scipy import ndimage

    surface = np.zeros((grid, grid, grid), bool)
    cells = ((mesh.sample(max(200000, 50 * grid * grid), seed=0) / bound + 1) / 2 * grid).astype(int).clip(0, grid - 1)
    surface[cells[:, 0], cells[:, 1], cells[:, 2]] = True
    return ndimage.binary_fill_holes(ndimage.binary_closing(surface, iterations=1))


@dataclass
class Draft:
    """An uploaded draft, merged into one mesh and fitted into a field.

    Attributes:
        vertices: (V, 3) in the field's frame; faces: (F, 3).
        placement: How it was placed there (to put results back at its place and size).
    """

    vertices: np.ndarray
    faces: np.ndarray
    placement: Placement


def fit_to_upload(field: RadianceField, glb: bytes, seed: int = 0, callback: StepCallback = no_progress) -> Draft:
    """Fit `field` to an uploaded draft (a GLB: all its parts, coloured by their vertex colours,
    else by their base-colour texture at the vertices' UVs, else their material's colour, else grey)."""
    from ..geometry.glb import read_glb_meshes

    parts, _ = read_glb_meshes(glb)
    offsets = np.cumsum([0] + [len(part.vertices) for part in parts[:-1]])
    vertices = np.concatenate([part.vertices for part in parts])
    faces = np.concatenate([part.faces + offset for part, offset in zip(parts, offsets)])
    textured = _texture_colours(glb, [len(part.vertices) for part in parts])
    colours = np.concatenate([part.vertex_colors[:, :3] / 255.0 if part.vertex_colors is not None
                              else textured[i] if textured[i] is not None
                              else np.tile(np.asarray(part.material.base_color[:3]), (len(part.vertices), 1))
                              if part.material is not None else np.full((len(part.vertices), 3), 0.5)
                              for i, part in enumerate(parts)])
    placement = fit_to_mesh(field, vertices, faces, colours, seed=seed, callback=callback)
    return Draft(placement.to_field(vertices).astype(np.float32), faces.astype(np.int64), placement)


def _texture_colours(glb: bytes, counts: list[int]) -> list[Optional[np.ndarray]]:
    """Per part, (V, 3) sRGB colours in [0, 1] of its base-colour texture at its vertices' UVs
    (nearest texel; the texture repeats), or None without one (or for parts that do not match)."""
    from formats.glb import read_glb

    from ..errors import InputError
    from ..images import read_image

    scene = read_glb(glb)
    out: list[Optional[np.ndarray]] = [None] * len(counts)
    if len(scene.parts) != len(counts):
        return out
    decoded: dict[int, np.ndarray] = {}
    for i, part in enumerate(scene.parts):
        if part.image is None or part.uv is None or len(part.uv) != counts[i] or not scene.images[part.image].data:
            continue
        if part.image not in decoded:
            try:  # PNG or JPEG only, sized from its header first, as every uploaded image
                decoded[part.image] = np.asarray(read_image(scene.images[part.image].data, "the draft's texture").convert("RGB"))
            except InputError:
                continue
        image = decoded[part.image]
        uv = np.nan_to_num(part.uv) % 1.0
        rows = np.minimum((uv[:, 1] * image.shape[0]).astype(int), image.shape[0] - 1)  # glTF: v runs down
        cols = np.minimum((uv[:, 0] * image.shape[1]).astype(int), image.shape[1] - 1)
        out[i] = image[rows, cols] / 255.0
    return out
