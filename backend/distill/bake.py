"""A distilled mesh to a UV-textured result: the field's albedo baked over it (texture/surface_bake.py)."""

from __future__ import annotations

from dataclasses import replace
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


@torch.no_grad()
def particles_result(fields: list, placement, params: dict[str, Any], metadata: dict[str, Any],
                     callback: Optional[StepCallback] = None) -> MeshResult:
    """The surfaces of one or several fields (VSD's particles) as one result: a single field's as
    `surface_result` gives it; several side by side (`side_by_side`), parts "particle 1", ...;
    callback ("mesh", k, n) after each."""
    if len(fields) == 1:
        return surface_result(fields[0], placement, params, metadata, callback)
    results = []
    for k, field in enumerate(fields, 1):
        results.append(surface_result(field, placement, params, metadata))
        if callback:
            callback("mesh", k, len(fields))
    return side_by_side(results, [f"particle {k}" for k in range(1, len(fields) + 1)])


def side_by_side(results: list[MeshResult], names: list[str]) -> MeshResult:
    """Textured one-part results as one, so an artist sees them all at once: each part named
    from `names`, each result moved along +X to stand beside the one before (a gap of a tenth of
    the widest), the textures joined left to right into one (every UV's u squeezed into its
    own strip). The metadata is the first result's, with every note once."""
    widest = max(float(np.ptp(r.parts[0].vertices[:, 0])) for r in results)
    if len({r.texture.shape for r in results}) != 1:  # (one job's texture_size: never in practice)
        raise ValueError("the results' textures differ in size")
    parts, strips, notes, x = [], [], [], 0.0
    for k, (result, name) in enumerate(zip(results, names)):
        part = result.parts[0]
        vertices = part.vertices.copy()
        if k:  # stands beside the one before, its lowest x a gap past that one's highest
            vertices[:, 0] += x + 0.1 * widest - vertices[:, 0].min()
        x = float(vertices[:, 0].max())
        uv = part.uv.copy()
        uv[:, 0] = (k + uv[:, 0]) / len(results)
        strips.append(result.texture)
        parts.append(replace(part, name=name, vertices=vertices, uv=uv))
        notes += [n for n in result.metadata.get("notes", []) if n not in notes]
    return MeshResult(parts=parts, texture=np.concatenate(strips, axis=1),
                      metadata={**results[0].metadata, "notes": notes})
