"""A distilled mesh to a UV-textured part: unwrap it (the project's xatlas unwrap) and fill each
texel with the field's albedo at the surface point the texel maps to.

Sampling the field itself at texel resolution keeps detail that vertex colours (one colour per
marching-cubes vertex) would blur, and the result looks right in Material Preview and in any
glTF viewer.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
import torch

from ..geometry.uv import ensure_part_uvs
from ..render.rasterize import uv_space_texels
from ..results import MeshPart, MeshResult, StepCallback
from ..texture.padding import pad_texture

SEAM_PADDING = 8  # texels grown past each chart's edge, so mipmaps and filtering find no background


@torch.no_grad()
def bake_albedo(albedo: Callable[[torch.Tensor], torch.Tensor], vertices: np.ndarray, faces: np.ndarray,
                texture_size: int = 1024, chunk: int = 262144) -> tuple[MeshPart, np.ndarray, str]:
    """Unwrap a mesh and bake a colour function over its surface into one texture.

    Args:
        albedo: (N, 3) points → (N, 3) colours in [0, 1] (a field's albedo, on its device).
        vertices, faces: The mesh, (V, 3) float and (F, 3) int.
        texture_size: Texels per side.
        chunk: Points per albedo query.

    Returns:
        (the part with UVs, its vertices split at seams; the (S, S, 3) uint8 texture, row 0 at
        v = 0 as glTF reads it; a sentence on the unwrap).
    """
    part, note = ensure_part_uvs([MeshPart("mesh", np.asarray(vertices, np.float32), np.asarray(faces, np.int64))],
                                 texture_size)
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


@torch.no_grad()
def textured_result(field, vertices: np.ndarray, faces: np.ndarray, placement, texture_size: int,
                    metadata: dict[str, Any], callback: Optional[StepCallback] = None) -> MeshResult:
    """A mesh in the field's frame as a result: put back at the draft's place and size (when
    `placement`), unwrapped, with the field's albedo baked.

    Args:
        field: The RadianceField whose albedo colours the surface.
        vertices, faces: The mesh, in the field's frame.
        placement: distill.init.Placement of a draft, or None.
        texture_size: Texels per side.
        metadata: The result's metadata; the unwrap's note is added to its "notes".
        callback: ("mesh", 1 and 2, 2) around the bake, when given.
    """
    device = next(field.parameters()).device
    if placement is not None:  # back where the draft was, at its size
        vertices = placement.to_shape(vertices).astype("float32")
    if callback:
        callback("mesh", 1, 2)
    in_field = (lambda points: points) if placement is None else (
        lambda points: torch.from_numpy(placement.to_field(points.numpy())).float())
    part, texture, uv_note = bake_albedo(lambda points: field(in_field(points).to(device))[1], vertices, faces,
                                         texture_size)
    if callback:
        callback("mesh", 2, 2)
    return MeshResult(parts=[part], texture=texture, metadata={**metadata, "notes": [uv_note]})


@torch.no_grad()
def surface_result(field, placement, params: dict[str, Any], metadata: dict[str, Any],
                   callback: Optional[StepCallback] = None) -> MeshResult:
    """The field's surface (marching cubes at params["grid_size"]) as a `textured_result`."""
    from .mesh import extract_mesh

    vertices, faces, _ = extract_mesh(field, resolution=int(params["grid_size"]))
    return textured_result(field, vertices, faces, placement, int(params["texture_size"]), metadata, callback)
