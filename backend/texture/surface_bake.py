"""Bake a colour function over a mesh's surface into a UV texture: unwrap the mesh (the project's
xatlas unwrap) and fill each texel with the function's colour at the surface point it maps to.

Sampling a field itself at texel resolution keeps detail that vertex colours (one colour per
marching-cubes vertex) would blur, and the result looks right in Material Preview and in any
glTF viewer. Used by score distillation and by feed-forward reconstruction.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..geometry.uv import ensure_part_uvs
from ..render.rasterize import uv_space_texels
from ..results import MeshPart
from .padding import pad_texture

SEAM_PADDING = 8  # texels grown past each chart's edge, so mipmaps and filtering find no background


@torch.no_grad()
def bake_albedo(albedo: Callable[[torch.Tensor], torch.Tensor], vertices: np.ndarray, faces: np.ndarray,
                texture_size: int = 1024, chunk: int = 262144) -> tuple[MeshPart, np.ndarray, str]:
    """Unwrap a mesh and bake a colour function over its surface into one texture.

    Args:
        albedo: (N, 3) points → (N, 3) colours in [0, 1] (a field's albedo, on its device).
        vertices, faces: The mesh, (V, 3) float and (F, 3) int: an extracted surface, so its charts
            skip xatlas's straight-seam preference (`geometry/xatlas_charts.chart`).
        texture_size: Texels per side.
        chunk: Points per albedo query.

    Returns:
        (the part with UVs, its vertices split at seams; the (S, S, 3) uint8 texture, row 0 at
        v = 0 as glTF reads it; a sentence on the unwrap).
    """
    # An isosurface: charts free of xatlas's straight-seam preference are half the work (uv.unwrap).
    part, note = ensure_part_uvs([MeshPart("mesh", np.asarray(vertices, np.float32), np.asarray(faces, np.int64))],
                                 texture_size, straight_seams=False)
    part = part[0]
    faces_t = torch.from_numpy(np.asarray(part.faces, np.int64))
    corners = torch.from_numpy(np.asarray(part.vertices, np.float32))[faces_t]  # (F, 3, 3)
    texel, _, points = uv_space_texels(torch.from_numpy(np.asarray(part.uv, np.float32)), faces_t, texture_size,
                                       texture_size, values=corners)  # points (N, 3) on the surface
    colour = torch.zeros(texture_size * texture_size, 3)
    colour[texel] = torch.cat([albedo(p).float().cpu() for p in points.split(chunk)]).clamp(0, 1)
    filled = torch.zeros(texture_size * texture_size, dtype=torch.bool)
    filled[texel] = True
    colour, _ = pad_texture(colour.view(texture_size, texture_size, 3), filled.view(texture_size, texture_size),
                            max_distance=SEAM_PADDING)
    return part, (colour * 255).round().byte().numpy(), note
