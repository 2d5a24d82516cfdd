"""A radiance field to a triangle mesh: its density's isosurface (PyMCubes), coloured by albedo."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import GenerationFailed
from ..geometry.isosurface import outer_surface
from .field import RadianceField


@torch.no_grad()
def extract_mesh(field: RadianceField, resolution: int = 128, threshold: float = 10.0,
                 chunk: int = 262144) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The surface where the density crosses `threshold`, in the field's coordinates.

    Args:
        field: The trained field.
        resolution: Grid points per axis over the field's cube; queried in chunks, so memory
            does not grow with it.
        threshold: Density at the surface. A ray crossing a grid cell of size s at density d
            loses 1 - exp(-d s) of its light: 10 is about half over a 128-cell cube of side 2.
        chunk: Points per query.

    Returns:
        The surface seen from outside (pockets inside are filled):
        vertices (V, 3) float32, faces (F, 3) int64 counter-clockwise seen from outside, and
        colours (V, 3) float32 albedo in [0, 1].

    Raises:
        GenerationFailed: the field has no surface at that threshold.
    """
    device, bound = next(field.parameters()).device, field.config.bound
    axis = torch.linspace(-bound, bound, resolution, device=device)
    points = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).view(-1, 3)
    density = torch.cat([field.density(p) for p in points.split(chunk)]).view(resolution, resolution, resolution)
    try:
        vertices, faces = outer_surface(density.cpu().numpy(), bound, threshold)
    except GenerationFailed:
        raise GenerationFailed("the optimised field has no surface: try more steps, another seed or prompt") from None
    colours = torch.cat([field(torch.from_numpy(v).to(device))[1] for v in np.array_split(vertices, max(1, len(vertices) // chunk))])
    return vertices, faces, colours.float().cpu().numpy()
