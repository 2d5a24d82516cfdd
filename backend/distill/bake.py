"""A distilled mesh to a UV-textured result: the field's albedo baked over it (texture/surface_bake.py)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

from ..results import MeshResult, StepCallback
from ..texture.surface_bake import bake_albedo


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
